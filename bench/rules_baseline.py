"""The answer rules' scoring as it stood before the fitted scorer: a frozen copy kept only as a baseline.

Only the score is kept; the candidates it scores come from ``qa.answer.candidates``.

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

from qa.text import content_stems, search_terms, stem

__all__ = ["AnswerSettings", "Candidate", "asks_for", "rule_scores"]


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


# A row of an inspection's judgement table ("Overall effectiveness Outstanding",
# "1. Children who need help and protection Requires improvement"): an aspect, then its grade.
_JUDGEMENT = re.compile(r"^(?:\d{1,2}(?:\.\d{1,2})*\.? )?((?:[\w,\u2019'-]+ ){2,14})"
                        r"(?:Outstanding|Good|Requires improvement(?: to be good)?|Inadequate)$")


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


def _supplies(asked: _Asked, cand: Candidate, question: str, q_stems: frozenset[str] | set[str]) -> float:
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


def _novelty(text: str, q_stems: frozenset[str] | set[str]) -> float:
    """Share of a unit's content words the question does not already hold."""
    own = content_stems(text)
    if not own:
        return 0.0
    return len(own - q_stems) / len(own)


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
