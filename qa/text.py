"""Words and sentences of the corpus's text, in one place.

Retrieval, the "is it answered" test, the answer sentences and the evaluation
all compare text; they must agree on what a word, a stem, a sentence and a
folded string are. This module is that agreement:

* ``query_terms`` / ``stem`` / ``stems``: content words and a light stemmer;
* ``search_terms``: a question's content words plus the report words for its plain ones;
* ``fold``: curly quotes straightened, whitespace collapsed, lower case;
* ``units``: a passage cut into headings, sentences, list lead-ins and list
  items, each an exact span of the passage, with sentence boundaries from pysbd
  (a maintained rule-based splitter that keeps "Dr.", "No. 3" and "e.g." whole).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING

from .profiles import load_profile
from .records import Unit

if TYPE_CHECKING:  # pysbd is imported on first use: it is slow to import
    from pysbd import Segmenter

# Common English words that carry no topic; FTS5 matches them everywhere.
STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further
    had has have having he her here hers herself him himself his how i if in into is it its itself
    just me more most my myself no nor not now of off on once only or other our ours ourselves out
    over own same she should so some such than that the their theirs them themselves then there
    these they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours yourself yourselves tell show give find
    please know want need get got say said does did many much also use used using way ways
    """.split()
)
WORD = re.compile(r"\w+", re.UNICODE)
TOKEN = re.compile(r"\w+(?:['\u2019]\w+)*", re.UNICODE)
_WS = re.compile(r"\s+")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
                         "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"'})
_SUFFIXES = (("ies", "y"), ("sses", "ss"), ("ing", ""), ("ed", ""), ("es", ""), ("s", ""), ("ly", ""))


def fold(text: str) -> str:
    """Curly quotes straightened, whitespace collapsed, lower case: how texts are compared."""
    return _WS.sub(" ", text.translate(_QUOTES)).strip().lower()


def query_terms(text: str) -> list[str]:
    """Lower-cased content words of a text, in order, without repeats."""
    seen: dict[str, None] = {}
    for word in WORD.findall(text.lower().translate(_QUOTES)):
        if word not in STOPWORDS and (len(word) > 1 or word.isdigit()):
            seen.setdefault(word, None)
    return list(seen)


def search_terms(text: str, thesaurus: dict[str, str] | None = None) -> list[str]:
    """A question's content words, then the report words ``thesaurus`` gives for its plain ones.

    The thesaurus is the profile's ``plain_words`` unless given (``qa.profiles``:
    "kids" children, "in care" looked after: words people type and the words the
    reports use, which only fit one collection and so are data, not code).
    Single words are looked up among the content words; phrases ("in care") in
    the lower-cased text. The question's own words come first and none repeats.
    """
    terms = query_terms(text)
    table = load_profile().plain_words if thesaurus is None else thesaurus
    if not table:
        return terms
    low = " " + " ".join(WORD.findall(text.lower().translate(_QUOTES))) + " "
    have = set(terms)
    for plain, words in table.items():
        if (f" {plain} " in low) if " " in plain else plain in have:
            for word in query_terms(words):
                if word not in have:
                    have.add(word)
                    terms.append(word)
    return terms


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light suffix-stripping stem, enough to match 'plans' with 'plan' or 'inspected' with 'inspect'."""
    word = word.lower()
    for suffix, repl in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: len(word) - len(suffix)] + repl
    return word


def stems(text: str) -> set[str]:
    """Stems of every word of a text (stop words included)."""
    return {stem(w) for w in WORD.findall(text.lower())}


@lru_cache(maxsize=65536)
def content_stems(text: str) -> frozenset[str]:
    """Stems of a text's content words (cached: the same units are compared with every question)."""
    return frozenset(stem(w) for w in query_terms(text))


_SENTENCE_END = re.compile(r"[.?!;:]\s+")


def key_terms(question: str) -> list[str]:
    """Names and numbers of a question: capitalised words not opening a sentence, and numbers.

    "What did Ofsted find in Leeds in 2018?" gives ofsted, leeds, 2018.
    """
    keys: dict[str, None] = {}
    for sentence in _SENTENCE_END.split(question):
        for i, token in enumerate(TOKEN.findall(sentence)):
            word = re.sub(r"['\u2019]s$", "", token)
            for part in WORD.findall(word):
                if part.isdigit() or (i > 0 and part[:1].isupper() and part.lower() not in STOPWORDS):
                    keys.setdefault(part.lower(), None)
    return list(keys)


# --- sentences ---------------------------------------------------------------------------------

_BULLET = re.compile(r"^\s*(?:[-*\u2022\u2023\u25aa\u25cf\u2013\u2014]|\(?[a-z0-9]{1,2}[.)])\s+")
_NUMBERED_HEADING = re.compile(r"^\s*(?:#{1,6}\s+|\d{1,2}(?:\.\d{1,2})*\.?\s+(?=[A-Z]))")
_END = re.compile(r"[.!?][\"'\u2019\u201d)\]]*\s*$")
_CLOSES = re.compile(r"[.!?;:][\"'\u2019\u201d)\]]*\s*$")
# Abbreviations after which pysbd may cut but a sentence goes on ("para. 4.2", "pp. 10-12").
_ABBREV_TAIL = re.compile(
    r"(?:\b(?:para|paras|p|pp|no|nos|fig|figs|sec|s|ss|ch|vol|art|reg|cf|e\.g|i\.e|dr|prof|mr|mrs|ms|st|vs|approx|ref)\.)\s*$",
    re.I,
)


_PER_THREAD = threading.local()


def _segmenter() -> Segmenter:
    """This thread's own pysbd segmenter.

    A ``pysbd.Segmenter`` keeps the text it was last given on the object, so one
    shared between threads can hand one question's sentences to another's answer:
    each thread (each app session's script run, each CLI worker) gets its own.
    """
    seg: Segmenter | None = getattr(_PER_THREAD, "segmenter", None)
    if seg is None:
        import pysbd

        seg = pysbd.Segmenter(language="en", clean=False, char_span=False)
        _PER_THREAD.segmenter = seg
    return seg


def split_spans(text: str) -> list[tuple[int, int]]:
    """Sentence spans of running text (no line structure): pysbd, with a few abbreviations re-joined."""
    if not text.strip():
        return []
    text = text.replace("\n", " ").replace("\r", " ")  # same length: PDF lines wrap mid-sentence
    pieces = _segmenter().segment(text)
    spans: list[tuple[int, int]] = []
    cursor = 0
    for piece in pieces:
        core = piece.strip()
        if not core:
            continue
        at = text.find(core, cursor)
        if at < 0:  # pysbd changed the text (it should not with clean=False): fall back to the rest
            at = cursor
            core = text[cursor:].strip()
        end = at + len(core)
        glued = bool(spans) and spans[-1][1] == at  # no space after the "end": "![image]", "e.g.x"
        if spans and (glued or _ABBREV_TAIL.search(text[spans[-1][0]:spans[-1][1]])
                      and (core[:1].isdigit() or core[:1].islower())):
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((at, end))
        cursor = end
        if end >= len(text):
            break
    return spans


def _lines(text: str) -> list[tuple[int, int]]:
    out, pos = [], 0
    for line in text.split("\n"):
        out.append((pos, pos + len(line)))
        pos += len(line) + 1
    return out


def units(text: str) -> list[Unit]:
    """A passage cut into headings, sentences, list lead-ins, list items and fragments.

    Lines are read first: a Markdown heading, a numbered section title ("2.3
    Savings") or a short line that does not end a sentence and is followed by a
    capitalised line is a heading; a line opening with a bullet or "1." starts
    a list item that runs over its wrapped lines. Everything else is running
    text, re-joined over line breaks (PDF text wraps every line) and split into
    sentences by pysbd.
    """
    lines = [(s, e) for s, e in _lines(text)]
    width = max((e - s for s, e in lines), default=0)
    short = max(40, int(0.7 * width))
    blocks: list[tuple[str, int, int]] = []  # (kind, start, end); kind: heading, item, para
    para: list[int] = []  # [start, end] of the running paragraph
    item: list[int] = []

    def close_para() -> None:
        if para:
            blocks.append(("para", para[0], para[1]))
            para.clear()

    def close_item() -> None:
        if item:
            blocks.append(("item", item[0], item[1]))
            item.clear()

    title_like = False
    for i, (s, e) in enumerate(lines):
        raw = text[s:e]
        line = raw.strip()
        if not line:
            close_item()
            close_para()
            continue
        ls = s + (len(raw) - len(raw.lstrip()))
        le = ls + len(line)
        nxt = next((text[a:b].strip() for a, b in lines[i + 1:] if text[a:b].strip()), "")
        ends = _CLOSES.search(line) is not None
        dash = line[:1] in "-*\u2022\u2023\u25aa\u25cf\u2013\u2014" and _BULLET.match(line) is not None
        if not dash and (line.startswith("#") or (_NUMBERED_HEADING.match(line) and not ends and len(line) <= short)):
            close_item()
            close_para()
            blocks.append(("heading", ls, le))
            continue
        if dash or _BULLET.match(line):
            close_item()
            close_para()
            item[:] = [ls, le]
            continue
        if item:
            # A wrapped item goes on unless it closed and a capitalised line starts running text.
            if _CLOSES.search(text[item[0]:item[1]]) and line[:1].isupper():
                close_item()
            else:
                item[1] = le
                continue
        # A short unpunctuated capitalised line after a finished sentence (PDF text often has no blank
        # line between a paragraph and the next heading) and before a capitalised line is a heading.
        after_sentence = not para or _END.search(text[para[0]:para[1]]) is not None
        if (not ends and len(line) < short and after_sentence and (not nxt or nxt[:1].isupper() or _BULLET.match(nxt))
                and line[:1].isupper() and len(line.split()) <= 12):
            close_para()
            blocks.append(("heading", ls, le))
            continue
        if para and title_like and line[:1].isupper():  # short unpunctuated lines before text: a title
            blocks.append(("heading", para[0], para[1]))
            para.clear()
        if para:
            para[1] = le
            title_like = title_like and not ends and len(line) < short
        else:
            para[:] = [ls, le]
            title_like = not ends and len(line) < short and len(line.split()) <= 12
    close_item()
    close_para()

    out: list[Unit] = []
    lead: int | None = None
    for kind, s, e in blocks:
        if kind == "heading":
            out.append(Unit(s, e, text[s:e], "heading"))
            lead = None
            continue
        spans: list[tuple[int, int]] | None = None
        if kind == "item":
            body = _BULLET.sub("", text[s:e], count=1)
            bs = e - len(body)
            if _may_be_running_text(text[s:e], body, lead is not None):
                spans = split_spans(body)
            if spans is None or len(spans) < 2:
                out.append(Unit(bs, e, text[bs:e], "item", lead))
                continue
            s = bs  # a paragraph of running text: its sentences, each quotable on its own
        lead = None
        for a, b in split_spans(text[s:e]) if spans is None else spans:
            piece = text[s + a:s + b]
            if _CLOSES.search(piece) and piece.rstrip().endswith(":"):
                kind_ = "leadin"
            elif _END.search(piece) and (piece[:1].isupper() or piece[:1].isdigit() or piece[:1] in "\"'\u2018\u201c(£$"):
                kind_ = "sentence"
            else:
                kind_ = "fragment"
            out.append(Unit(s + a, s + b, piece, kind_))
        if out and out[-1].kind == "leadin":
            lead = len(out) - 1
    return out


_LONG_ITEM = 400  # characters: longer than any list entry worth quoting whole


def _may_be_running_text(block: str, body: str, has_lead: bool) -> bool:
    """Whether a block that opens like a list item may be a paragraph (it is one when it holds several sentences).

    Reports number their paragraphs ("12. The number of care leavers ... Currently,
    79% ..."): such a block, with no lead-in before it, holds sentences that each
    answer something; so does any entry too long to quote whole.
    """
    return len(body) > _LONG_ITEM or (block[:1].isdigit() and not has_lead)


_BREAK = re.compile(r"(?<=[.!?:;])\s+|\n")


def cut_points(text: str, lo: int, hi: int, *, ends: bool) -> list[int]:
    """Where a passage may start (``ends=False``) or end (``ends=True``) within ``text[lo:hi]``.

    A line break or a sentence end; not after an abbreviation such as "para." or
    "No.", which pysbd's rules would not cut at either. Cheap enough for every
    passage of every search (no full segmentation).
    """
    out = []
    for m in _BREAK.finditer(text, lo, hi):
        if m.group(0) != "\n" and _ABBREV_TAIL.search(text[max(0, m.start() - 8):m.start()]):
            continue
        out.append(m.start() if ends else m.end())
    return out


# Where a sentence may start: after a sentence's end or a blank line (a single line break may wrap one).
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])[\"'\u2019\u201d)\]]*\s+|\n[ \t]*\n")


def sentence_start(text: str, start: int, reach: int) -> int:
    """Move a passage's start back by up to ``reach`` characters to the start of the sentence it cuts.

    A line break is a cut point (see ``cut_points``), but in a PDF a wrapped line
    often breaks a sentence: the passage then opens with "a line break and goes
    on" and its first sentence can be neither read nor quoted. The start moves
    back only when it falls on a lower-case letter after text that does not end
    a sentence, and only to a sentence start within ``reach``; a page that opens
    mid-sentence (it continues the page before) stays as it is.
    """
    if start <= 0 or not text[start:start + 1].islower():
        return start
    lo = max(0, start - reach)
    if _CLOSES.search(text, lo, start):
        return start
    starts = [m.end() for m in _SENTENCE_BREAK.finditer(text, lo, start)
              if "\n" in m.group(0) or not _ABBREV_TAIL.search(text[max(0, m.start() - 8):m.start()])]
    return starts[-1] if starts else start


def find_spans(text: str, sentences: Iterable[str]) -> list[tuple[int, int]]:
    """Where quoted sentences occur in ``text`` (whitespace and case folded), merged and sorted.

    For highlighting an answer's sentences in the passage they were quoted from:
    a sentence was collapsed to single spaces, the passage may wrap it over lines.
    """
    spans: list[tuple[int, int]] = []
    for sentence in sentences:
        parts = sentence.split()
        if not parts:
            continue
        pattern = re.compile(r"\s+".join(re.escape(w) for w in parts), re.IGNORECASE)
        spans.extend((m.start(), m.end()) for m in pattern.finditer(text))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def collapse(text: str) -> str:
    """Whitespace collapsed to single spaces, case kept: how an answer sentence is shown."""
    return _WS.sub(" ", text).strip()


def words(texts: Iterable[str]) -> set[str]:
    """Every content stem of some texts."""
    out: set[str] = set()
    for t in texts:
        out |= content_stems(t)
    return out


_LINKS = r"(?:(?:of|for|and|the|&|in|on|to)[\s-]+)?"


def acronyms(question: str) -> dict[str, re.Pattern[str]]:
    """A question's acronyms of three or more letters ("NAO", "DfE"), each with a pattern for its spelled-out name.

    The name's words start with the acronym's letters in order, small linking
    words may stand between them, and its first and last words are capitalised:
    "National Audit Office", "Department for Education", "Children in Need".
    """
    out: dict[str, re.Pattern[str]] = {}
    for token in WORD.findall(question):
        if not 3 <= len(token) <= 6 or not token.isalpha() or not token[0].isupper() or sum(ch.isupper() for ch in token) < 2:
            continue
        letters = list(token)
        words = [(rf"[{ch.upper()}]" if i in (0, len(letters) - 1) else rf"[{ch.upper()}{ch.lower()}]") + r"[\w'\u2019]*"
                 for i, ch in enumerate(letters)]
        out[token.lower()] = re.compile(r"\b" + rf"[\s-]+{_LINKS}".join(words) + r"\b")
    return out


# Words that number one of a series ("wave 2", "phase 9", "round 1"; the profile's ``series``): the pair names a
# thing, the number alone does not.
_NUMBER_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")
_ORDINALS = ("zeroth", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
             "eleventh", "twelfth")


def series(question: str) -> list[tuple[str, int]]:
    """The numbered parts of a series a question names: "wave 2" gives ("wave", 2)."""
    words = "|".join(re.escape(w) for w in load_profile().series) or "(?!)"
    return [(m.group(1).lower(), int(m.group(2))) for m in re.finditer(rf"\b({words})s? (\d{{1,2}})\b", question, re.I)]


def names_series(text: str, word: str, number: int) -> bool:
    """Whether a text names part ``number`` of ``word``: "wave 2", "Waves 1 and 2", "wave two", "2nd / second wave"."""
    forms = [str(number)]
    if number < len(_NUMBER_NAMES):
        forms.append(_NUMBER_NAMES[number])
    numeral = "|".join(forms)
    listed = rf"(?:(?:\d{{1,2}}|{'|'.join(_NUMBER_NAMES)})\s*(?:,|and|&|to|or|-|\u2013)\s*)*"
    pattern = rf"\b{word}s?\s*{listed}(?:{numeral})\b"
    ordinals = [rf"{number}(?:st|nd|rd|th)"] + ([_ORDINALS[number]] if number < len(_ORDINALS) else [])
    pattern += rf"|\b(?:{'|'.join(ordinals)})[ -](?:\w+ )?{word}"
    return re.search(pattern, text, re.I) is not None
