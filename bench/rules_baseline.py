"""The answer rules as they stood before the fitted scorer: a frozen copy kept only as a baseline.

``qa train --extract`` records, beside each candidate's features, the score these
hand-set rules gave it and whether they quoted it, so ``qa train`` can print the
rules' answer@ on the very same candidates as the fitted scorer's. Nothing in
the library imports this module.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qa.records import AnswerSentence, Passage
from qa.text import Unit, collapse, content_stems, fold, search_terms, stem, units

__all__ = ["AnswerSettings", "Candidate", "asks_for", "candidates", "choose", "fold", "split_sentences"]


@dataclass(frozen=True)
class AnswerSettings:
    """How answer sentences are found, scored and how many are quoted."""

    max_sentences: int = 4
    max_items: int = 8  # list items quoted when a list answers
    from_passages: int = 3
    margin: float = 0.10  # sentences within this of the best are quoted too
    lexical_weight: float = 0.15
    kind_weight: float = 0.10  # supplies what the question asks for
    restate_penalty: float = 0.10  # adds (almost) nothing to the question's own words
    lead_weight: float = 0.5  # a list item's closeness is this share of its list's best, the rest its own
    max_candidates: int = 24  # sentences embedded per question, chosen by shared words
    title_weight: float = 0.8  # a unit is also read with its document's title: this share of the title's vector added
    max_sentence_chars: int = 400


@dataclass(frozen=True)
class Candidate:
    """An answer unit: its text (whitespace folded), passage ranks, kind and lead-in text."""

    text: str
    passages: tuple[int, ...]
    kind: str = "sentence"  # "sentence" or "item"
    lead: str = ""  # an item's lead-in sentence
    group: int = -1  # items of one list share a group
    heading: str = ""  # the heading the unit stands under in its passage, if any
    title: str = ""  # the title of the document it is quoted from


_HEADING_MARK = re.compile(r"^#+\s*|^\d{1,2}(?:\.\d{1,2})*\.?\s+")
_BOILERPLATE = re.compile(
    r"sample briefing|not an official publication|official report to consult|crown copyright|"
    r"open[ -]government[ -]licence|to view this licen[cs]e|in a different format|subscribe to our \w* ?newsletter|"
    r"this publication is (?:available|licensed)|any enquiries regarding|"
    r"\bisbn\b|all rights reserved|follow us on|download this (?:report|publication)|"
    r"^(?:contents|references|bibliography)\b|page \d+ of \d+",
    re.I,
)


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


def split_sentences(text: str) -> list[str]:
    """Whole sentences and list items of a passage, whitespace collapsed (no headings or fragments)."""
    return [collapse(u.text) for u in _with_fields(units(text)) if _answer_unit(u)]


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


_FOOTNOTE = re.compile(r"\s*(?:\d{1,2} (?=[A-Z]))?")  # a footnote's number is not part of its field


# A row of an inspection's judgement table ("Overall effectiveness Outstanding",
# "1. Children who need help and protection Requires improvement"): an aspect, then its grade.
_JUDGEMENT = re.compile(r"^(?:\d{1,2}(?:\.\d{1,2})*\.? )?((?:[\w,\u2019'-]+ ){2,14})"
                        r"(?:Outstanding|Good|Requires improvement(?: to be good)?|Inadequate)$")


def _judgement(u: Unit) -> Unit | None:
    """A heading or fragment that is a judgement table's row, as a "field" without its number."""
    match = _JUDGEMENT.match(collapse(u.text))
    if match is None:
        return None
    lead = len(u.text) - len(u.text.lstrip())
    number = _HEADING_MARK.match(u.text[lead:])  # "1. ", "2.1 ": the row's number
    lead += number.end() if number else 0
    return Unit(u.start + lead, u.end, u.text[lead:].strip(), "field")


# A footnote's number before its text ("14 In the East Midlands two authorities ...", "3 The case was heard ...").
# Only before a word that opens a sentence: "12 Local authorities took part" gives a count, not a note number.
_NOTE_NUMBER = re.compile(r"^\s*\d{1,3} (?=(?:The|This|That|These|Those|It|Its|In|On|At|As|A|An|For|From|See|Please|"
                          r"Within|Where|When|If|There|During|Since|Under|By|With|Following|Data|Figures?|Source)\b)")
# A footnote that defines a term, often printed without a full stop ("4 Alternatively qualified staff is
# the term used for ... staff who are not social work qualified").
_DEFINING_NOTE = re.compile(r"^\s*\d{1,3} (?=[A-Z])(?=.{30,}$)(?=.*\b(?:is|are|means|refers to)\b)", re.S)


def _footnote(u: Unit) -> Unit | None:
    """A footnote's sentence without its number; a defining footnote without a full stop counts as a sentence."""
    if u.kind == "sentence" and (match := _NOTE_NUMBER.match(u.text)):
        return Unit(u.start + match.end(), u.end, u.text[match.end():], "sentence")
    if u.kind == "fragment" and len(u.text.split()) >= 8 and (match := _DEFINING_NOTE.match(u.text)):
        return Unit(u.start + match.end(), u.end, u.text[match.end():].strip(), "sentence")
    return None


def _with_fields(found: Sequence[Unit]) -> list[Unit]:
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
                lead = m.end() if (m := _FOOTNOTE.match(line)) else 0
                out.append(Unit(offset + lead, offset + len(line.rstrip()), line[lead:].strip(), "field"))
            offset += len(line)
    return out


def _answer_unit(u: Unit) -> bool:
    if _BOILERPLATE.search(u.text) or _contents_line(collapse(u.text)):
        return False
    if u.kind == "field":
        return len(u.text.split()) >= 3
    if u.kind not in ("sentence", "item") or u.text.rstrip().endswith("?"):
        return False  # a question in the text (a heading put as a question) asks, it does not answer
    if u.text.rstrip().endswith(":") and not re.search(r"[.!?]\s", u.text.strip()):
        return False  # a lead-in alone, even inside a list ("Usability & Performance:"), says what follows, not what is
    return len(u.text.split()) >= (5 if u.kind == "sentence" else 2)


def candidates(passages: Sequence[Passage], settings: AnswerSettings, question: str = "") -> list[Candidate]:
    """Distinct answer units of the first passages, each with every passage rank it appears in.

    With a question, about ``max_candidates`` are kept: those sharing the most
    of its content words (with their heading and lead-in), in reading order,
    and every item of a list one of whose items is kept; each is embedded at
    question time.
    """
    seen: dict[str, Candidate] = {}
    group = 0
    for passage in passages[: settings.from_passages]:
        found = units(passage.chunk.text)
        group += 1
        heading = ""
        trail: list[tuple[int, str]] = []
        for u in _with_fields(found):
            if u.kind == "heading":
                level = _level(u.text)
                while trail and trail[-1][0] >= level:
                    trail.pop()
                trail.append((level, _HEADING_MARK.sub("", _HEADING_MARK.sub("", collapse(u.text)))))
                heading = ": ".join(t for _, t in trail[-2:])
                continue
            if not _answer_unit(u) or len(u.text) > settings.max_sentence_chars:
                continue
            text = collapse(u.text)
            key = fold(text)
            if key in seen:
                continue
            lead = collapse(found[u.lead].text) if u.kind == "item" and u.lead is not None else ""
            seen[key] = Candidate(text, (), u.kind, lead, group * 1000 + (u.lead if u.lead is not None else -1)
                                  if u.kind == "item" else -1, heading, passage.document.title)
    if question and len(seen) > settings.max_candidates:
        terms = {stem(t) for t in search_terms(question)}  # with the reports' words for plain ones ("due in": deadline)
        graded = asks_for(question) == "grade"
        overlap = {k: len(terms & (content_stems(c.text) | content_stems(c.lead) | content_stems(c.heading)))
                   + (len(terms) if graded and c.kind == "field" and _JUDGEMENT.match(c.text) else 0)
                   for k, c in seen.items()}
        order = sorted(seen, key=lambda k: -overlap[k])  # stable: reading order among equals
        keep = set(order[: settings.max_candidates])
        lists = {seen[k].group for k in keep if seen[k].kind == "item"}
        keep |= {k for k, c in seen.items() if c.kind == "item" and c.group in lists}  # a list is kept whole
        seen = {k: v for k, v in seen.items() if k in keep}
    folded = [fold(p.chunk.text) for p in passages]
    out = []
    for key, cand in seen.items():
        ranks = tuple(p.rank for p, text in zip(passages, folded, strict=True) if key in text)
        out.append(Candidate(cand.text, ranks, cand.kind, cand.lead, cand.group, cand.heading, cand.title))
    return out


# --- what the question asks for ------------------------------------------------------------------

_ASKS = (
    ("number", re.compile(r"\b(how (?:much|many|long|often|big|large|far|quickly)|what (?:proportion|percentage|share|"
                          r"number|amount|rate|fraction|level|size|cost|sum)|how many|what (?:was|is) the (?:cost|total|"
                          r"rate|number|figure|budget)|what (?:is|was|are|were) the "
                          r"(?:average|median|mean|typical|total|usual))\b|\b(?:cost|percentage|proportion|rate)s?\b.*\?$",
                          re.I)),
    ("grade", re.compile(r"\b(?:grades?|graded|ratings?|rated|judgements?|judged|ofsted (?:result|verdict|outcome)s?|"
                         r"how (?:good|well) (?:is|was|are|were|did)\b.*\b(?:ofsted|inspect\w*))\b", re.I)),
    ("when", re.compile(r"^\s*(?:when|what (?:year|date|month))\b|\bwhat year\b|\bsince when\b|"
                        r"\b(?:by when|deadline|closing date|submission window|what dates?)\b", re.I)),
    ("why", re.compile(r"\bwhy\b|\bwhat (?:was|were|is|are) the reasons?\b|\breasons? (?:for|why)\b|\bwhat caused\b", re.I)),
    ("who", re.compile(r"^\s*(?:who|whom|whose)\b|\bwhat (?:is|was|are|were) (?:\S+ ){0,5}(?:name[sd]?|called)\b|"
                       r"\bwhat (?:do|does|did) (?:\S+ ){1,4}call\b|"
                       r"\bwhich (?:\w+ )?(?:councils?|authorities|areas?|organi[sz]ations?|"
                       r"places|bodies|agencies|charities|local authorities|regions|towns|cities|counties)\b|\bwho\b", re.I)),
    ("recommend", re.compile(r"\b(?:recommend\w*|advi[sc]e\w*|suggest\w*|propos\w*|call(?:ed)? for)\b", re.I)),
    # "What is Family Safeguarding?", "what are edge of care services?": a short thing named, nothing more asked
    # ("what is the best way for a new analyst to learn ...?" asks for advice, not a definition).
    ("define", re.compile(r"^\s*what(?:'s|\u2019s| is| are) (?:an? |the )?(?:[\w'\u2019-]+ ){0,5}[\w'\u2019-]+\s*\??\s*$|"
                          r"\bwhat (?:does|do) .* mean\b|\bdefin(?:e|ition)\b|\bmeaning of\b", re.I)),
)
_GRADED = re.compile(r"\b(?:judged|rated|graded|judgement (?:is|was)|remains?|found to be) (?:to be |as )?"
                     r"(?:outstanding|good|requires improvement|inadequate)\b", re.I)
_NUMBER_WORDS = r"two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|hundred|" \
                r"thousand|million|billion|half|third|quarter|fifth|tenth|dozen|majority|minority|one in \w+"
_NUMBER = re.compile(rf"\d|£|\$|%|\b(?:{_NUMBER_WORDS})\b|\bper ?cent\b", re.I)
_MONEY_QUESTION = re.compile(r"\b(?:money|funding|funded|fund|cost|costs|costing|spend|spent|spending|save|saved|"
                             r"saving|savings|budget|invest\w*|paid|pay|worth|price|grant|allowance|"
                             r"bursar\w*|fees?|salar\w*|wages?|£)", re.I)
_HOW_MUCH = re.compile(r"\bhow much\b|\bwhat (?:was|is|were|are) the (?:\w+ )?(?:cost|budget|price|amount|sum|value|"
                       r"savings?|spend)\b", re.I)
_NOT_MONEY = re.compile(r"\bhow much (?:more|less|longer|shorter|faster|slower|quicker|sooner|earlier|later|"
                        r"better|worse|of|time|hours?|days?|weeks?|months?|years?)\b", re.I)
_HOW_MUCH_VERB = re.compile(r"\bhow much (?:did|does|do|is|was|were|are|should|would|will|could|can|has|have|had|"
                            r"must|might)\b", re.I)


def _asks_money(question: str) -> bool:
    """"How much did X save?", "what was the cost?": the answer is an amount of money, not a count or a time.

    "How much should a council give ...?" asks for money too, with no money word: "how much" followed
    by its verb. "How much time / faster / more likely ...?" asks for a time or a ratio.
    """
    if not _HOW_MUCH.search(question) or _NOT_MONEY.search(question):
        return False
    return bool(_MONEY_QUESTION.search(question) or _HOW_MUCH_VERB.search(question))


# "How long should it take?", "how quickly must they reply?" (not "how quickly have applications grown?").
_HOW_LONG = re.compile(r"\bhow (?:long|soon)\b|\bwithin how\b|\bhow (?:quickly|fast) (?:should|must|do|does|will|can)\b",
                       re.I)
_DURATION = re.compile(rf"(?:\d[\d,.]*|\b(?:{_NUMBER_WORDS}|one)\b|\b(?:within|after|for|up to|under|over) an?)"
                       r"(?:[ -](?:working|calendar|school|full|more))?[ -](?:hours?|days?|weeks?|months?|years?|minutes?)\b",
                       re.I)
_MONEY = re.compile(r"£\s?\d|\$\s?\d|€\s?\d|\d\s?(?:million|billion|bn|m|k)\b|\bpounds?\b", re.I)
_SHARE_QUESTION = re.compile(r"\bwhat (?:proportion|percentage|share|fraction)\b|\bhow many of (?:the|them|those)\b|"
                             r"\bwhat per ?cent\b", re.I)
_SHARE = re.compile(r"%|\bper ?cent\b|\b(?:half|third|quarter|fifth|tenth|majority|minority|most|few)\b|"
                    r"\bone in \w+|\b\w+ (?:out )?of (?:the |every )?\d", re.I)
# "how many projects ...": the thing counted, and a number standing just before a word for it in the text.
_HOW_MANY = re.compile(r"\bhow many (?:of (?:the|them|those|these) )?(?:(?:more|new|different|separate|other) )?([a-z][\w-]*)",
                       re.I)
_COUNT = re.compile(rf"(?:\d[\d,.]*|\b(?:{_NUMBER_WORDS}|one)\b)((?:\s+[\w-]+){{1,4}})", re.I)


def _counted(question: str) -> set[str]:
    """Stems of what a "how many" question counts, with the reports' words for a plain one ("councils").

    The last "how many" decides: a follow-up searched with its previous question comes last.
    """
    found = list(_HOW_MANY.finditer(question))
    match = found[-1] if found else None
    if not match or not content_stems(match.group(1)):
        return set()
    word = match.group(1).lower()
    return {stem(word)} | {stem(w) for w in search_terms(word)[1:]}


def _counts(text: str, counted: frozenset[str]) -> bool:
    """Whether a number in the text counts the thing asked about ("57 innovation projects")."""
    return any(stem(w.lower()) in counted for m in _COUNT.finditer(text) for w in m.group(1).split())


_YEAR_OR_DATE = re.compile(r"\b(?:19|20)\d\d\b|\b(?:january|february|march|april|may|june|july|august|september|"
                           r"october|november|december)\b", re.I)
_DAY_DATE = re.compile(r"\b\d{1,2}(?:st|nd|rd|th)? (?:january|february|march|april|may|june|july|august|september|"
                       r"october|november|december)\b|\b(?:january|february|march|april|may|june|july|august|"
                       r"september|october|november|december) \d{1,2}\b", re.I)
_ASKS_YEAR = re.compile(r"\b(?:what|which) year\b|\bsince when\b|\bin what year\b", re.I)
_WEEKDAYS = {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}
_REASON = re.compile(r"\b(?:because|since|due to|owing to|as a result|reasons?|so that|in order to|led to|caused|"
                     r"meant that|therefore|thus|given that|nervous|lack of|too (?:little|few|much|many))\b", re.I)
_DEFINITION = re.compile(r"\b(?:is|are|means?|refers? to|describes?|involves?|consists? of|is defined as|"
                         r"is a|is an|is the)\b", re.I)
_ADVICE = re.compile(r"\b(?:should|must|recommend(?:ed|s)? (?:that|to)|advised?|urged?|call(?:ed|s)? for|asked (?:for|the)|"
                     r"ought to|need(?:s|ed)? to)\b", re.I)
_CONSEQUENCE = re.compile(r"^(?:because of this|as a result|therefore|thus|so|consequently|hence)\b", re.I)
# Sentences that point elsewhere instead of saying something ("They are grouped below under three headings.").
_POINTER = re.compile(r"\b(?:below|above|as follows|the following|can be found (?:in|at|on)|(?:this|the next|the previous) "
                      r"(?:section|chapter|briefing|report|table) (?:sets out|describes|covers|summarises|lists|includes|"
                      r"explains|provides))\b", re.I)
_LIST_QUESTION = re.compile(r"\bwhich\b|\bwhat (?:are|were)\b|\blist\b|\bwhat (?:\w+ ){0,3}(?:did|do|does) .* "
                            r"(?:recommend|suggest|find)\b|\bways?\b|\bpractices\b|\breasons\b", re.I)
_NAME = re.compile(r"(?<!^)(?<![.!?]\s)\b[A-Z][a-z]+(?:[ -][A-Z][a-z]+)*")


def asks_for(question: str) -> str:
    """What kind of thing the question wants: grade, number, when, why, who, recommend, define or '' (anything)."""
    for kind, pattern in _ASKS:
        if pattern.search(question.strip()):
            return kind
    return ""


@dataclass(frozen=True)
class _Asked:
    """What a question asks for, read once per question: its kind and, for a number, which number."""

    kind: str
    money: bool = False  # "how much money": an amount
    share: bool = False  # "what proportion": a share
    how_long: bool = False  # "how long": a stretch of time
    counted: frozenset[str] = frozenset()  # "how many projects": stems of the thing counted


def _asked(question: str) -> _Asked:
    kind = asks_for(question)
    if kind != "number":
        return _Asked(kind)
    return _Asked(kind, _asks_money(question), bool(_SHARE_QUESTION.search(question)),
                  bool(_HOW_LONG.search(question)), frozenset(_counted(question)))


_FIELDLESS = {"", "why", "recommend", "define"}


def _supplies(asked: _Asked, cand: Candidate, question: str, q_stems: set[str]) -> float:
    """1 when the unit supplies what is asked, -1 when it plainly does not, 0 when unknown."""
    text = cand.text
    kind = asked.kind
    if cand.kind == "field" and kind in _FIELDLESS and not (kind == "" and len(content_stems(
            text.split(":", 1)[0]) & q_stems) >= 2):
        # "Lead inspector: Nigel Parkes" names who and when, not a reason, a problem or advice; a field whose
        # label names what is asked ("Wave 1 case study areas: ...") still answers "what were the ... areas?".
        return -1.0
    if kind == "number":
        if asked.how_long and _DURATION.search(text):
            return 1.0  # "within a month" answers "how long" without a digit
        new = [m.group(0) for m in _NUMBER.finditer(text) if stem(m.group(0).lower()) not in q_stems]
        digits = [d for d in re.findall(r"\d[\d,.]*", text) if d.strip(".,") not in question]
        if not (digits or new):
            return -1.0
        # A figure of another kind than the one asked for neither helps nor counts against.
        if asked.money:
            return 1.0 if any(m.group(0).lower() not in question.lower() for m in _MONEY.finditer(text)) else 0.0
        if asked.share:
            return 1.0 if _SHARE.search(text) else 0.0
        if asked.how_long:
            return 0.0
        if asked.counted:
            return 1.0 if _counts(text, asked.counted) else 0.0
        return 1.0
    if kind == "grade":  # an inspection's grade: a judgement row, or a sentence giving one
        return 1.0 if (cand.kind == "field" and _JUDGEMENT.match(text)) or _GRADED.search(text) else 0.0
    if kind == "when":
        if not any(m.group(0).lower() not in question.lower() for m in _YEAR_OR_DATE.finditer(text)):
            return -0.5
        if not _DAY_DATE.search(text) and not _ASKS_YEAR.search(question):
            return 0.5  # "when is it due?" wants a day ("31 July 2024"); a year may only be part of a name
        return 1.0
    if kind == "why":
        if cand.kind == "item" and _REASON.search(cand.lead):
            return 1.0
        if _CONSEQUENCE.search(text):
            return -0.5  # what followed, not why
        return 1.0 if _REASON.search(text) else -0.5
    if kind == "who":
        if cand.kind == "item":
            return 1.0
        names = [n for n in _NAME.findall(text) if not (content_stems(n) <= q_stems) and not _YEAR_OR_DATE.fullmatch(n)
                 and n.lower() not in _WEEKDAYS]
        return 1.0 if names else 0.0
    if kind == "recommend":
        if cand.kind == "item" and _ADVICE.search(cand.lead):
            return 1.0
        return 1.0 if _ADVICE.search(text) else -0.5
    if kind == "define":  # says what the thing asked about is, not just any "is"
        return 1.0 if _DEFINITION.search(text) and q_stems & content_stems(text) else 0.0
    return 0.0


def _novelty(text: str, q_stems: set[str]) -> float:
    """Share of a unit's content words the question does not already hold."""
    own = content_stems(text)
    if not own:
        return 0.0
    return len(own - q_stems) / len(own)


def closeness(vectors: np.ndarray, title_vectors: np.ndarray, query_vec: np.ndarray, weight: float) -> np.ndarray:
    """Each unit's closeness to the question: its own cosine, or read with its document's title if that is closer.

    A sentence rarely repeats the place, year or body its report is about
    ("the service that care leavers receive is outstanding"); its title does
    ("Ofsted inspection of Hertfordshire children's services, 2018"). The title
    can only raise a unit's closeness, never lower it.
    """
    own = vectors @ query_vec
    if weight <= 0 or not len(vectors):
        return own
    mixed = vectors + weight * title_vectors
    norms = np.linalg.norm(mixed, axis=1)
    read = (mixed @ query_vec) / np.where(norms > 0, norms, 1.0)
    return np.maximum(own, read)


def choose(
    question: str,
    sentences: Sequence[Candidate],
    similarity: np.ndarray,
    settings: AnswerSettings,
    own: np.ndarray | None = None,
) -> tuple[tuple[AnswerSentence, ...], float]:
    """The answer units to quote, best first, and the best score.

    ``similarity`` holds each unit's closeness to the question (an item embedded
    with its lead-in, see ``embed_text``; read with its title, see ``closeness``).
    An item also counts a share of its list's best closeness; when a list wins,
    its items are quoted together, in reading order. The best score returned is
    computed from ``own`` when given (the units' own cosines), the scale the
    abstention threshold was chosen on.
    """
    if not sentences:
        return (), 0.0
    q_stems = content_stems(question)
    asked = _asked(question)
    kind = asked.kind
    bonus = []
    for cand in sentences:
        lexical = len(q_stems & content_stems(embed_text(cand))) / len(q_stems) if q_stems else 0.0
        extra = settings.lexical_weight * lexical + settings.kind_weight * _supplies(asked, cand, question, q_stems)
        if _novelty(cand.text, q_stems) < 0.34 or _POINTER.search(cand.text):
            extra -= settings.restate_penalty
        bonus.append(extra)
    scores = _scores(sentences, similarity, bonus, settings)
    best = max(_scores(sentences, own, bonus, settings)) if own is not None else max(scores)
    order = sorted(range(len(sentences)), key=lambda i: -scores[i])
    top = sentences[order[0]]
    first = scores[order[0]]
    if top.kind == "item":
        items = [i for i in range(len(sentences)) if sentences[i].group == top.group]
        if not (kind in ("why", "recommend", "who") or _LIST_QUESTION.search(question)):
            items = [i for i in items if scores[i] >= first - settings.margin]  # one entry of a list answers
        chosen = items[: settings.max_items]
    else:
        chosen = [i for i in order if scores[i] >= first - settings.margin and sentences[i].kind != "item"]
        chosen = chosen[: settings.max_sentences]
    return tuple(AnswerSentence(text=sentences[i].text, passages=sentences[i].passages) for i in chosen), best


def _scores(sentences: Sequence[Candidate], similarity: np.ndarray, bonus: Sequence[float],
            settings: AnswerSettings) -> list[float]:
    """Each unit's score: its closeness (an item's shared with its list's best) plus its bonuses."""
    sims = [float(x) for x in similarity]
    list_sim: dict[int, float] = {}
    for cand, sim in zip(sentences, sims, strict=True):
        if cand.kind == "item":
            list_sim[cand.group] = max(list_sim.get(cand.group, -1.0), sim)
    return [(sim if cand.kind != "item" else settings.lead_weight * list_sim[cand.group]
             + (1 - settings.lead_weight) * sim) + extra
            for cand, sim, extra in zip(sentences, sims, bonus, strict=True)]


def embed_text(cand: Candidate) -> str:
    """What is embedded for a unit: with the heading it stands under and, for a list item, its lead-in.

    "people were nervous about taking part" answers "why did they need more
    time?" only read under "Why they were slow to start" and "gave two reasons".
    """
    lead = cand.lead if cand.kind == "item" and len(cand.lead) <= 120 else ""  # a long lead-in drowns the item
    parts = [cand.heading + ":" if cand.heading else "", lead, cand.text]
    return " ".join(p for p in parts if p)


def rule_scores(question: str, sentences: Sequence[Candidate], similarity: np.ndarray,
                settings: AnswerSettings | None = None) -> list[float]:
    """Each unit's score under these rules (closeness, an item's shared with its list's best, plus the bonuses)."""
    settings = settings or AnswerSettings()
    q_stems = content_stems(question)
    asked = _asked(question)
    bonus = []
    for cand in sentences:
        lexical = len(q_stems & content_stems(embed_text(cand))) / len(q_stems) if q_stems else 0.0
        extra = settings.lexical_weight * lexical + settings.kind_weight * _supplies(asked, cand, question, q_stems)
        if _novelty(cand.text, q_stems) < 0.34 or _POINTER.search(cand.text):
            extra -= settings.restate_penalty
        bonus.append(extra)
    return _scores(sentences, similarity, bonus, settings)
