"""A page's structure, read once at ingest: its headings, sentences, list items and fields.

``page_units`` cuts a page's cleaned text into units (``qa.records.Unit``):
headings, sentences (pysbd), list lead-ins and items, "label: value" fields,
judgement-table rows and footnotes without their numbers. Ingest stores them
with the page (``units_to_json`` / ``units_from_json``); at question time a
passage takes the stored units that lie inside it (``within``), so nothing
splits text into sentences while a question is answered: the answer, the
cards and the exports all read the same units.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from functools import lru_cache

from .profiles import load_profile
from .records import Passage, Unit
from .text import collapse, units

log = logging.getLogger(__name__)

HEADING_MARK = re.compile(r"^#+\s*|^\d{1,2}(?:\.\d{1,2})*\.?\s+")
KINDS = ("heading", "sentence", "leadin", "item", "field", "fragment")


def page_units(text: str) -> tuple[Unit, ...]:
    """The units of one page's text, in reading order, each ``text[start:end]`` with no outer whitespace.

    An item's ``lead`` is the index of its lead-in in the returned sequence.
    """
    found = units(text)
    out: list[Unit] = []
    moved: dict[int, int] = {}  # index in ``found`` -> index in ``out``, for the lead-ins items point to
    for index, unit in enumerate(found):
        for piece in with_fields([unit]):
            start, end = piece.start, piece.end
            while start < end and text[start].isspace():
                start += 1
            while end > start and text[end - 1].isspace():
                end -= 1
            if start >= end:
                continue
            moved.setdefault(index, len(out))
            out.append(Unit(start, end, text[start:end], piece.kind, piece.lead))
    return tuple(Unit(u.start, u.end, u.text, u.kind, moved.get(u.lead) if u.lead is not None else None)
                 for u in out)


def units_to_json(found: Sequence[Unit]) -> str:
    """A page's units as compact JSON for the store: ``[start, end, kind]`` or ``[start, end, kind, lead]`` each."""
    rows = [[u.start, u.end, u.kind] + ([u.lead] if u.lead is not None else []) for u in found]
    return json.dumps(rows, separators=(",", ":"))


def units_from_json(data: str, text: str) -> tuple[Unit, ...]:
    """The units stored with a page, their text taken from the page itself."""
    out: list[Unit] = []
    for row in json.loads(data or "[]"):
        start, end, kind = int(row[0]), int(row[1]), str(row[2])
        lead = int(row[3]) if len(row) > 3 else None
        out.append(Unit(start, end, text[start:end], kind, lead))
    return tuple(out)


def within(found: Sequence[Unit], start: int, end: int, *, clip: bool = False) -> tuple[Unit, ...]:
    """The units inside ``start:end`` of their text, with offsets from ``start`` (a passage's own units).

    A unit the span cuts is left out, as a sentence cut by a passage's edge is
    not quoted; with ``clip`` (for showing an excerpt) its part inside the span
    is kept as a "fragment". An item keeps its lead-in only when the lead-in is
    kept too.
    """
    inside = [i for i, u in enumerate(found) if u.end > start and u.start < end
              and (clip or (u.start >= start and u.end <= end))]
    index = {old: new for new, old in enumerate(inside)}
    out = []
    for i in inside:
        u = found[i]
        a, b = max(u.start, start), min(u.end, end)
        whole = (a, b) == (u.start, u.end)
        text = u.text if whole else u.text[a - u.start:b - u.start]
        lead = index.get(u.lead) if u.lead is not None and whole else None
        out.append(Unit(a - start, b - start, text, u.kind if whole else "fragment", lead))
    return tuple(out)


def units_of(passage: Passage) -> tuple[Unit, ...]:
    """A passage's units: those stored with its page, or, for a passage built without them, read from its text."""
    if passage.units or not passage.chunk.text.strip():
        return passage.units
    log.debug("passage %s p.%s has no stored units: reading them from its text", passage.chunk.doc_id, passage.chunk.page)
    return page_units(passage.chunk.text)


# A one-line "label: value" field of a report's front page or fact box ("Lead inspector: Matt Reed").
# A footnote number may open it ("2 Wave 1 case study areas: Dorset, ...").
_FIELD = re.compile(r"^(?:\d{1,2} )?(?!(?i:chapter|section|part|table|figure|chart|box|annex|appendix|page)\b)"
                    r"([A-Z][\w\u2019' ()&/-]{1,60}?): +[^:\n]{2,160}$")


def _field_line(line: str) -> bool:
    text = collapse(line)
    match = _FIELD.match(text)
    if match is None or len(match.group(1).split()) > 6:
        return False
    label, value = match.group(1).split(), text[match.end(1) + 1:].split()
    figure = any(ch.isdigit() for ch in "".join(value))
    if text[:1].isdigit() and not figure and not any(w[:1].isupper() for w in value):
        return False  # "2 Theme 1: rethinking children's social work": a numbered section title, not a footnote's fact
    # "National Framework: Key Concepts" names a chapter: a label of several words and a value, all capitalised.
    return figure or len(label) < 2 or not all(w[:1].isupper() for w in label + value if w[:1].isalpha())


def _note_number(line: str) -> int:
    """Length of a footnote's number opening a line ("2 Wave 1 case study areas: ..."): not part of its field."""
    body = line.lstrip()
    digits = len(body) - len(body.lstrip("0123456789"))
    if 1 <= digits <= 2 and body[digits:digits + 1] == " " and body[digits + 1:digits + 2].isupper():
        return len(line) - len(body) + digits + 1
    return 0


# A row of an inspection's judgement table ("Overall effectiveness Outstanding",
# "1. Children who need help and protection Requires improvement"): an aspect, then its grade.
@lru_cache(maxsize=4)
def _judgement_row(grades: str) -> re.Pattern[str] | None:
    """A judgement table's row for the profile's grade scale (None when the profile has none)."""
    if not grades:
        return None
    return re.compile(rf"^(?:\d{{1,2}}(?:\.\d{{1,2}})*\.? )?((?:[\w,\u2019'-]+ ){{2,14}})(?:{grades})$")


def judgement(text: str) -> bool:
    """Whether a line is a row of an inspection's judgement table ("Overall effectiveness Good")."""
    row = _judgement_row(load_profile().grade_words)
    return row is not None and row.match(collapse(text)) is not None


def _judgement(u: Unit) -> Unit | None:
    """A heading or fragment that is a judgement table's row, as a "field" without its number."""
    if not judgement(u.text):
        return None
    lead = len(u.text) - len(u.text.lstrip())
    number = HEADING_MARK.match(u.text[lead:])  # "1. ", "2.1 ": the row's number
    lead += number.end() if number else 0
    return Unit(u.start + lead, u.end, u.text[lead:].strip(), "field")


# A footnote that defines a term, often printed without a full stop ("4 Alternatively qualified staff is
# the term used for ... staff who are not social work qualified").
_DEFINING_WORDS = (" is ", " are ", " means ", " refers to ")


def _defining_note(text: str) -> int:
    """Length of the number of a footnote that says what a term is or means (0 when it is not one)."""
    body = text.lstrip()
    digits = len(body) - len(body.lstrip("0123456789"))
    if not (1 <= digits <= 3 and body[digits:digits + 1] == " " and body[digits + 1:digits + 2].isupper()):
        return 0
    rest = " " + " ".join(body[digits + 1:].split()) + " "
    if len(body) - digits - 1 < 30 or not any(w in rest for w in _DEFINING_WORDS):
        return 0
    return len(text) - len(body) + digits + 1


def _footnote(u: Unit) -> Unit | None:
    """A footnote's sentence without its number; a defining footnote without a full stop counts as a sentence.

    The number goes only before a word that opens a sentence (the profile's
    ``footnote_openings``): "14 In the East Midlands ..." is a note, "12 Local
    authorities took part" gives a count.
    """
    if u.kind == "sentence" and (match := load_profile().footnote_openings.match(u.text)):
        return Unit(u.start + match.end(), u.end, u.text[match.end():], "sentence")
    if u.kind == "fragment" and len(u.text.split()) >= 8 and (cut := _defining_note(u.text)):
        return Unit(u.start + cut, u.end, u.text[cut:].strip(), "sentence")
    return None


def with_fields(found: Sequence[Unit]) -> list[Unit]:
    """Units with the fields that headings and fragments hold made into units of kind "field".

    A heading or fragment made only of "label: value" lines gives one field per
    line; one that is a judgement table's row gives one field. Such lines state
    facts, unlike the headings and fragments they are taken for. A footnote's
    sentence loses its number (see ``_footnote``).
    """
    out: list[Unit] = []
    for u in found:
        if u.kind in ("heading", "fragment") and (row := _judgement(u)) is not None:
            out.append(row)
            continue
        if (note := _footnote(u)) is not None:
            out.append(note)
            continue
        lines = [line for line in u.text.strip().splitlines() if line.strip()]
        if u.kind not in ("heading", "fragment") or not lines or not all(_field_line(line) for line in lines):
            out.append(u)
            continue
        offset = u.start
        for line in u.text.splitlines(keepends=True):
            if line.strip():
                lead = _note_number(line)
                out.append(Unit(offset + lead, offset + len(line.rstrip()), line[lead:].strip(), "field"))
            offset += len(line)
    return out
