"""A page's structure, read once at ingest: its headings, sentences, list items and fields.

``page_units`` cuts a page's cleaned text into units (``qa.records.Unit``):
headings, sentences (pysbd), list lead-ins and items, "label: value" fields,
judgement-table rows and footnotes without their numbers. Ingest stores them
with the page (``units_to_json`` / ``units_from_json``); at question time a
passage takes the stored units that lie inside it (``within``), so nothing
splits text into sentences while a question is answered: the answer, the
cards and the exports all read the same units. Ingest also embeds every
``quotable`` unit once (``embedding_text``: the unit read under its heading,
an item after its lead-in), so a question embeds only itself.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache

from .profiles import load_profile
from .records import Passage, Unit
from .text import collapse, units

log = logging.getLogger(__name__)

HEADING_MARK = re.compile(r"^#+\s*|^\d{1,2}(?:\.\d{1,2})*\.?\s+")
KINDS = ("heading", "sentence", "leadin", "item", "field", "fragment")


QUOTABLE_CHARS = 400  # a longer unit is never quoted (nor embedded at ingest)


def page_units(text: str) -> tuple[Unit, ...]:
    """The units of one page's text, in reading order, each ``text[start:end]`` with no outer whitespace.

    An item's ``lead`` is the index of its lead-in in the returned sequence;
    each unit knows its heading trail and, for an item, its lead-in's text.
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
    return annotate([Unit(u.start, u.end, u.text, u.kind, moved.get(u.lead) if u.lead is not None else None)
                     for u in out])


def annotate(found: Sequence[Unit]) -> tuple[Unit, ...]:
    """Units with the heading trail they stand under and, for items, their lead-in's text.

    The trail keeps the last two levels of the headings met so far on the page
    ("2 Findings: 2.3 Caseloads" reads "Findings: Caseloads"); a unit is read
    and embedded with it, as "people were nervous" answers "why were they slow?"
    only under "Why they were slow to start".
    """
    out: list[Unit] = []
    trail: list[tuple[int, str]] = []
    heading = ""
    for u in found:
        if u.kind == "heading":
            level = _level(u.text)
            while trail and trail[-1][0] >= level:
                trail.pop()
            trail.append((level, HEADING_MARK.sub("", HEADING_MARK.sub("", collapse(u.text)))))
            heading = ": ".join(t for _, t in trail[-2:])
            out.append(replace(u, heading="", lead_in=""))
            continue
        lead_in = ""
        if u.kind == "item" and u.lead is not None and 0 <= u.lead < len(found):
            lead_in = collapse(found[u.lead].text)
        out.append(replace(u, heading=heading, lead_in=lead_in))
    return tuple(out)


def quotable(u: Unit) -> bool:
    """Whether a unit may be quoted (``answer_unit``) and is short enough to be."""
    return len(u.text) <= QUOTABLE_CHARS and answer_unit(u)


def embedding_text(u: Unit) -> str:
    """What is embedded for a unit: with the heading it stands under and, for a list item, its lead-in.

    "people were nervous about taking part" answers "why did they need more
    time?" only read under "Why they were slow to start" and "gave two reasons".
    """
    lead = u.lead_in if u.kind == "item" and len(u.lead_in) <= 120 else ""  # a long lead-in drowns the item
    parts = [u.heading + ":" if u.heading else "", lead, collapse(u.text)]
    return " ".join(p for p in parts if p)


def units_to_json(found: Sequence[Unit], offset: int = 0) -> str:
    """A page's units as compact JSON for the store: ``[start, end, kind, lead, vector]`` each, trailing nulls dropped.

    ``offset`` is added to each vector row (a document's rows are numbered from 0).
    """
    rows = []
    for u in found:
        row: list[object] = [u.start, u.end, u.kind, u.lead, None if u.vector is None else u.vector + offset]
        while len(row) > 3 and row[-1] is None:
            row.pop()
        rows.append(row)
    return json.dumps(rows, separators=(",", ":"))


def units_from_json(data: str, text: str) -> tuple[Unit, ...]:
    """The units stored with a page, their text taken from the page itself (headings and lead-ins read again)."""
    out: list[Unit] = []
    for row in json.loads(data or "[]"):
        start, end, kind = int(row[0]), int(row[1]), str(row[2])
        lead = int(row[3]) if len(row) > 3 and row[3] is not None else None
        vector = int(row[4]) if len(row) > 4 and row[4] is not None else None
        out.append(Unit(start, end, text[start:end], kind, lead, vector=vector))
    return annotate(out)


def within(found: Sequence[Unit], start: int, end: int, *, clip: bool = False) -> tuple[Unit, ...]:
    """The units inside ``start:end`` of their text, with offsets from ``start`` (a passage's own units).

    A unit the span cuts is left out, as a sentence cut by a passage's edge is
    not quoted; with ``clip`` (for showing an excerpt) its part inside the span
    is kept as a "fragment". Units keep their page's heading trail, lead-in
    and stored vector.
    """
    out = []
    for u in found:
        if u.end <= start or u.start >= end or not (clip or (u.start >= start and u.end <= end)):
            continue
        a, b = max(u.start, start), min(u.end, end)
        if (a, b) == (u.start, u.end):
            out.append(replace(u, start=a - start, end=b - start))
        else:
            out.append(Unit(a - start, b - start, u.text[a - u.start:b - u.start], "fragment", heading=u.heading))
    return tuple(out)


# A page number between two titles, as a table of contents runs them together ("... complaints 85 Fourteen day ...").
_CONTENTS_ENTRY = re.compile(r"\b([a-z]+)[,)]? \d{1,3} (?:Chapter \d+:? )?[A-Z]")
_BEFORE_A_COUNT = {"in", "and", "of", "to", "by", "for", "from", "with", "than", "about", "over", "under", "around",
                   "were", "was", "are", "is", "had", "have", "has", "all", "at", "on", "or", "nearly", "almost"}


def _contents_line(text: str) -> bool:
    """Whether a unit is a run of table-of-contents entries rather than a sentence."""
    return sum(1 for m in _CONTENTS_ENTRY.finditer(text) if m.group(1) not in _BEFORE_A_COUNT) >= 3


def _level(heading: str) -> int:
    """Depth of a heading: '##' is 2, '2.1' is 2, an unnumbered heading 1."""
    text = heading.strip()
    if text.startswith("#"):
        return len(text) - len(text.lstrip("#"))
    number = re.match(r"\d{1,2}((?:\.\d{1,2})*)", text)
    return 1 + number.group(1).count(".") if number else 1


def answer_unit(u: Unit) -> bool:
    """Whether a unit may be quoted as an answer: a whole sentence, list item or field, never a heading,
    a question, a lead-in alone, a contents line or the profile's boilerplate."""
    if load_profile().boilerplate.search(u.text) or _contents_line(collapse(u.text)):
        return False
    if u.kind == "field":
        return len(u.text.split()) >= 3
    if u.kind not in ("sentence", "item") or u.text.rstrip().endswith("?"):
        return False  # a question in the text (a heading put as a question) asks, it does not answer
    if u.text.rstrip().endswith(":") and not re.search(r"[.!?]\s", u.text.strip()):
        return False  # a lead-in alone, even inside a list ("Usability & Performance:"), says what follows, not what is
    return len(u.text.split()) >= (5 if u.kind == "sentence" else 2)


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
