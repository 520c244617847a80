"""What is known about one candidate answer unit, as numbers: the inputs of the fitted answer scorer.

A pure function of the question, the candidate units and their closeness to
the question: no model, no index, no state. The answer scorer (``qa.scorer``)
weighs these columns with weights fitted on the development questions
(``qa train``); nothing here decides on its own which unit is quoted.

What a question asks for (a figure, a count of the asked thing, a date, a
name, a reason, advice, a definition, a grade) against what a unit holds is one
column per asked kind and sign: the unit plainly supplies it (+) or plainly
does not (-). The rest say how close the unit is to the question (alone and
read with its report's title), how many of the question's words it shares and
how rare they are among the candidates, what kind of unit it is and how long,
its passage's rank and scores, whether it leans on the sentence before ("It",
"This", "also"), how much it adds beyond the question's words and whether it
only points elsewhere ("see below").
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np

from .profiles import load_profile
from .text import acronyms, content_stems, key_terms, names_series, search_terms, series, stem, stems

if TYPE_CHECKING:
    from .answer import Candidate

__all__ = ["ANSWER_FEATURES", "ASKED_KINDS", "FEATURES", "SCORER_FORMAT", "Asked", "Scorer", "asked", "asks_for",
           "features", "leans", "list_question", "load_scorer", "scorer_sha256", "supplied"]


@lru_cache(maxsize=4)
def _asks(bodies: tuple[str, ...], inspectorates: tuple[str, ...]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    """The question kinds and their patterns; "which <body>" asks for names, "<inspectorate> result" for a grade
    (bodies and inspectorates come from the profile)."""
    which = "|".join(bodies) or "(?!)"
    inspector = "|".join(["inspect\\w*", *(re.escape(i) for i in inspectorates)])
    return (
        ("number", re.compile(r"\b(how (?:much|many|long|often|big|large|far|quickly)|what (?:proportion|percentage|"
                              r"share|number|amount|rate|fraction|level|size|cost|sum)|how many|what (?:was|is) the "
                              r"(?:cost|total|rate|number|figure|budget)|what (?:is|was|are|were) the "
                              r"(?:average|median|mean|typical|total|usual))\b|\b(?:cost|percentage|proportion|rate)s?\b.*\?$",
                              re.I)),
        ("grade", re.compile(r"\b(?:grades?|graded|ratings?|rated|judgements?|judged|"
                             rf"(?:{inspector}) (?:result|verdict|outcome)s?|"
                             rf"how (?:good|well) (?:is|was|are|were|did)\b.*\b(?:{inspector}))\b", re.I)),
        ("when", re.compile(r"^\s*(?:when|what (?:year|date|month))\b|\bwhat year\b|\bsince when\b|"
                            r"\b(?:by when|deadline|closing date|submission window|what dates?)\b", re.I)),
        ("why", re.compile(r"\bwhy\b|\bwhat (?:was|were|is|are) the reasons?\b|\breasons? (?:for|why)\b|\bwhat caused\b",
                           re.I)),
        ("who", re.compile(r"^\s*(?:who|whom|whose)\b|\bwhat (?:is|was|are|were) (?:\S+ ){0,5}(?:name[sd]?|called)\b|"
                           rf"\bwhat (?:do|does|did) (?:\S+ ){{1,4}}call\b|\bwhich (?:\w+ )?(?:{which})\b|\bwho\b", re.I)),
        ("recommend", re.compile(r"\b(?:recommend\w*|advi[sc]e\w*|suggest\w*|propos\w*|call(?:ed)? for)\b", re.I)),
        # "What is Family Safeguarding?": a short thing named, nothing more asked.
        ("define", re.compile(r"^\s*what(?:'s|\u2019s| is| are) (?:an? |the )?(?:[\w'\u2019-]+ ){0,5}[\w'\u2019-]+\s*\??\s*$|"
                              r"\bwhat (?:does|do) .* mean\b|\bdefin(?:e|ition)\b|\bmeaning of\b", re.I)),
    )


# The kinds a "number" question is read as, then the other kinds: one pair of feature columns each.
ASKED_KINDS = ("money", "share", "duration", "count", "number", "grade", "when", "why", "who", "recommend", "define",
               "open")

_NUMBER_WORDS = r"two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|hundred|" \
                r"thousand|million|billion|half|third|quarter|fifth|tenth|dozen|majority|minority|one in \w+"
_FIGURE_WORDS = frozenset(_NUMBER_WORDS.split("|")[:-1]) | {"£", "$", "€", "%", "percent", "cent"}
_MONEY_WORDS = frozenset(stem(w) for w in """money funding funded fund cost costs costing spend spent spending save saved
    saving savings budget invest invested investment paid pay worth price grant allowance bursary bursaries fee fees
    salary salaries wage wages""".split())
_NOT_AMOUNT = frozenset("""more less longer shorter faster slower quicker sooner earlier later better worse of time hour
    hours day days week weeks month months year years""".split())  # "how much faster": a ratio or a time, not money
_AMOUNT_NOUNS = frozenset("cost budget price amount sum value saving savings spend".split())
_AUXILIARIES = frozenset("did does do is was were are should would will could can has have had must might".split())
_SHARE_NOUNS = frozenset("proportion percentage share fraction".split())
_COUNT_SKIP = frozenset("more new different separate other".split())
_TIME_UNITS = frozenset("hour hours day days week weeks month months year years minute minutes".split())
_MONTHS = frozenset("january february march april may june july august september october november december".split())
_WEEKDAYS = frozenset("monday tuesday wednesday thursday friday saturday sunday".split())
_SHARE_WORDS = frozenset("% percent per cent half third quarter fifth tenth majority minority most few".split())
# Words that give a reason, a consequence, advice or a definition. Plain English, not this corpus's vocabulary.
_REASON_WORDS = ("because", "since", "due to", "owing to", "as a result", "reason", "reasons", "so that", "in order to",
                 "led to", "caused", "meant that", "therefore", "thus", "given that", "lack of", "too little", "too few",
                 "too much", "too many")
_CONSEQUENCE_OPENINGS = ("because of this", "as a result", "therefore", "thus", "so ", "consequently", "hence")
_ADVICE_WORDS = ("should", "must", "recommend that", "recommended that", "recommends that", "recommend to",
                 "recommended to", "advise", "advised", "urge", "urged", "call for", "called for", "calls for",
                 "asked for", "ought to", "need to", "needs to", "needed to")
_DEFINITION_WORDS = ("is", "are", "means", "mean", "refers to", "refer to", "describes", "involves", "consists of",
                     "is defined as")
# A sentence that leans on the one before it opens with one of these (or says "also" in its first words).
_LEAN_OPENINGS = frozenset("""it its this these those that they their them such he she his her here also however but and
    both similarly additionally furthermore moreover again likewise instead otherwise nevertheless one another other
    others""".split())
_LEAN_PAIRS = frozenset(("the second", "the third", "the fourth", "the latter", "the former", "the same", "the other",
                         "the next", "the remaining", "the rest", "in addition", "in contrast", "by contrast",
                         "as a", "as such", "as well", "for example", "for instance", "in turn", "in particular",
                         "in this", "there it", "there they"))
# Sentences that point elsewhere instead of saying something ("They are grouped below under three headings.").
_POINTERS = ("below", "above", "as follows", "the following", "can be found in", "can be found at", "can be found on",
             *(f"{a} {b} {c}" for a in ("this", "the next", "the previous")
               for b in ("section", "chapter", "briefing", "report", "table")
               for c in ("sets out", "describes", "covers", "summarises", "lists", "includes", "explains", "provides")))
_LIST_WORDS = frozenset("which list way ways practices reasons".split())
_FINDINGS = frozenset("recommend suggest find".split())
_TOKENS = re.compile(r"[a-z]+|\d[\d,.]*|[£$€%]", re.I)


def asks_for(question: str) -> str:
    """What kind of thing the question wants: grade, number, when, why, who, recommend, define or '' (anything)."""
    profile = load_profile()
    for kind, pattern in _asks(profile.bodies, profile.inspectorates):
        if pattern.search(question.strip()):
            return kind
    return ""


def _words(text: str) -> list[str]:
    """Lower-case words, figures and currency signs of a text, in order."""
    return [t.lower() for t in _TOKENS.findall(text)]


# "The first is ...", "The second was ...": an ordinal standing for a thing the sentence before announced.
_ORDINAL_SUBJECTS = frozenset("first second third fourth fifth last".split())
_BE = frozenset("is was are were".split())


def leans(text: str) -> bool:
    """Whether a sentence leans on the one before it ("It projected ...", "These were ...", "X also ...",
    "The first is ...")."""
    words = _words(text)
    if len(words) >= 3 and words[0] == "the" and words[1] in _ORDINAL_SUBJECTS and words[2] in _BE:
        return True
    return bool(words) and (words[0] in _LEAN_OPENINGS or " ".join(words[:2]) in _LEAN_PAIRS or "also" in words[1:5])


def list_question(question: str) -> bool:
    """Whether a whole list answers the question ("which practices ...", "why ...", "what did they recommend")."""
    if asks_for(question) in ("why", "recommend", "who"):
        return True
    words = _words(question)
    if set(words) & _LIST_WORDS or _has(question, ("what are", "what were")):
        return True
    if "what" not in words:
        return False
    rest = words[words.index("what") + 1:]
    verb = next((i for i, w in enumerate(rest[:4]) if w in ("did", "do", "does")), None)
    return verb is not None and bool(set(rest[verb + 1:]) & _FINDINGS)


@dataclass(frozen=True)
class Asked:
    """What a question asks for, read once per question: one of ``ASKED_KINDS``, and what is counted."""

    kind: str
    counted: frozenset[str] = frozenset()  # "how many projects": stems of the thing counted
    year: bool = False  # "what year": a bare year answers "when"
    low: str = ""  # the question, lower case
    q_stems: frozenset[str] = frozenset()


def asked(question: str) -> Asked:
    """Read what a question asks for (the last "how many" decides: a follow-up comes after its question)."""
    kind = asks_for(question) or "open"
    low = question.lower()
    q_stems = frozenset(content_stems(question))
    year = bool(re.search(r"\b(?:what|which|in what) year\b|\bsince when\b", low))
    if kind != "number":
        return Asked(kind, year=year, low=low, q_stems=q_stems)
    words = _words(question)
    text = " ".join(words)
    much = [i for i, w in enumerate(words[:-1]) if w == "how" and words[i + 1] == "much"]
    amount = any(i + 2 >= len(words) or words[i + 2] not in _NOT_AMOUNT for i in much) or any(
        words[i:i + 2] in (["what", a] for a in ("was", "is", "were", "are")) and (
            set(words[i + 3:i + 5]) & _AMOUNT_NOUNS) and words[i + 2:i + 3] == ["the"] for i in range(len(words)))
    money = {stem(w) for w in words} & _MONEY_WORDS or "£" in question or any(
        i + 2 < len(words) and words[i + 2] in _AUXILIARIES for i in much)
    if amount and money:
        return Asked("money", low=low, q_stems=q_stems)
    if any(w in _SHARE_NOUNS and i > 0 and words[i - 1] == "what" for i, w in enumerate(words)) or \
            " how many of the " in f" {text} " or " how many of them " in f" {text} " or \
            " how many of those " in f" {text} " or " what per cent " in f" {text} " or " what percent " in f" {text} ":
        return Asked("share", low=low, q_stems=q_stems)
    if _has(question, ("how long", "how soon", "within how")) or any(
            words[i:i + 2] in (["how", "quickly"], ["how", "fast"]) and words[i + 2] in
            ("should", "must", "do", "does", "will", "can") for i in range(len(words) - 2)):
        return Asked("duration", low=low, q_stems=q_stems)
    counted = [i + 2 for i, w in enumerate(words[:-2]) if w == "how" and words[i + 1] == "many"]
    if counted:
        i = counted[-1]  # the last "how many" decides: a follow-up is searched after its question
        if words[i:i + 1] == ["of"] and i + 1 < len(words) and words[i + 1] in ("the", "them", "those", "these"):
            i += 2
        if i < len(words) and words[i] in _COUNT_SKIP:
            i += 1
        word = words[i] if i < len(words) else ""
        if word and content_stems(word):
            return Asked("count", frozenset({stem(word)} | {stem(w) for w in search_terms(word)[1:]}), low=low,
                         q_stems=q_stems)
    return Asked("number", low=low, q_stems=q_stems)


def _has(text: str, phrases: Sequence[str]) -> bool:
    """Whether one of the phrases stands in the text as whole words."""
    padded = " " + " ".join(_TOKENS.findall(text.lower())) + " "
    return any(f" {p.strip()} " in padded for p in phrases)


def _numbers_beyond(text: str, ask: Asked) -> list[str]:
    """Figures of the unit that the question does not already hold."""
    return [w for w in _words(text) if (w[:1].isdigit() or w in _FIGURE_WORDS) and w.strip(".,") not in ask.low]


def supplies(ask: Asked, cand: Candidate) -> float:
    """1 when the unit plainly supplies what is asked, -1 when it plainly does not, 0 when it cannot be told."""
    text = cand.text
    kind = ask.kind
    tokens = [t.lower() for t in _TOKENS.findall(text)]
    if cand.kind == "field" and kind in ("open", "why", "recommend", "define") and not (
            kind == "open" and len(content_stems(text.split(":", 1)[0]) & ask.q_stems) >= 2):
        return -1.0  # "Lead inspector: ..." names who and when, not a reason or advice, unless its label names what is asked
    if kind in ("money", "share", "duration", "count", "number"):
        figures = _numbers_beyond(text, ask)
        after = {tokens[i + 1] for i, t in enumerate(tokens[:-1]) if t[:1].isdigit() or t in _NUMBER_WORDS.split("|")}
        if kind == "duration" and after & _TIME_UNITS:
            return 1.0
        if not figures:
            return -1.0
        if kind == "money":
            return 1.0 if re.search(r"[£$€]\s?\d|\d\s?(?:million|billion|bn|m|k)\b|\bpounds?\b", text, re.I) else 0.0
        if kind == "share":
            return 1.0 if set(tokens) & _SHARE_WORDS or re.search(r"\bper ?cent\b|\bone in \w+|\bout of\b", text, re.I) \
                else 0.0
        if kind == "count":
            near = {stem(tokens[j]) for i, t in enumerate(tokens) if t[:1].isdigit() or t in _NUMBER_WORDS.split("|")
                    for j in range(i + 1, min(i + 5, len(tokens)))}
            return 1.0 if near & ask.counted else 0.0
        return 0.0 if kind == "duration" else 1.0
    if kind == "grade":  # a grade of the profile's scale, in a judgement row or a sentence
        grades = load_profile().grade_words
        return 1.0 if grades and re.search(rf"\b(?:{grades})\b", text, re.I) else 0.0
    if kind == "when":
        dates = [t for t in tokens if (t.isdigit() and len(t) == 4 and t[:2] in ("19", "20")) or t in _MONTHS]
        if not [d for d in dates if d not in ask.low]:
            return -0.5
        day = any(t in _MONTHS and ((i > 0 and tokens[i - 1].isdigit() and len(tokens[i - 1]) <= 2)
                                    or (i + 1 < len(tokens) and tokens[i + 1].isdigit() and len(tokens[i + 1]) <= 2))
                  for i, t in enumerate(tokens))
        return 1.0 if day or ask.year else 0.5
    if kind == "why":
        if cand.kind == "item" and _has(cand.lead, _REASON_WORDS):
            return 1.0
        if text.lower().startswith(_CONSEQUENCE_OPENINGS):
            return -0.5
        return 1.0 if _has(text, _REASON_WORDS) else -0.5
    if kind == "who":
        if cand.kind == "item":
            return 1.0
        raw = text.split()
        names = [w for i, w in enumerate(raw) if i > 0 and w[:1].isupper() and w[1:2].islower()
                 and not raw[i - 1].endswith((".", "!", "?")) and not content_stems(w) <= ask.q_stems
                 and w.lower().strip(".,;:") not in _MONTHS and w.lower().strip(".,;:") not in _WEEKDAYS]
        return 1.0 if names else 0.0
    if kind == "recommend":
        if cand.kind == "item" and _has(cand.lead, _ADVICE_WORDS):
            return 1.0
        return 1.0 if _has(text, _ADVICE_WORDS) else -0.5
    if kind == "define":
        return 1.0 if _has(text, _DEFINITION_WORDS) and ask.q_stems & content_stems(text) else 0.0
    return 0.0


_BASE = ("own", "near", "near_gap", "own_gap", "near_order", "list_best", "item", "field", "words", "lexical",
         "lexical_gap", "lexical_rare", "heading_lexical", "keys", "novelty", "restates", "pointer", "leans", "rank",
         "passages", "passage_score", "passage_dense", "figure")
FEATURES: tuple[str, ...] = _BASE + tuple(f"{k}{sign}" for k in ASKED_KINDS for sign in ("+", "-"))


def features(question: str, cands: Sequence[Candidate], near: np.ndarray, own: np.ndarray,
             unit_text: Sequence[str]) -> np.ndarray:
    """One row of ``FEATURES`` per candidate unit.

    ``near`` is each unit's closeness read with its report's title, ``own`` its
    own cosine, ``unit_text`` what was embedded for it (with its heading and,
    for an item, its lead-in).
    """
    n = len(cands)
    out = np.zeros((n, len(FEATURES)), dtype=np.float64)
    if not n:
        return out
    col = {name: i for i, name in enumerate(FEATURES)}
    ask = asked(question)
    q_stems = set(ask.q_stems)
    owned = [content_stems(t) for t in unit_text]
    df: dict[str, int] = {}
    for s in owned:
        for t in s & q_stems:
            df[t] = df.get(t, 0) + 1
    rare = {t: math.log((1 + n) / (1 + df.get(t, 0))) + 1.0 for t in q_stems}
    rare_total = sum(rare.values()) or 1.0
    near = np.asarray(near, dtype=np.float64)
    own = np.asarray(own, dtype=np.float64)
    best_near, best_own = float(near.max()), float(own.max())
    order = np.argsort(-near, kind="stable")
    place = np.empty(n)
    place[order] = np.arange(n)
    # The question's names and numbers, read as the evidence test reads them: "wave 1" is that pair (stated
    # also as "first wave"), not a bare "1"; an acronym counts when spelled out ("CIN": "Children in Need").
    named_series = series(question)
    paired = {str(n) for _, n in named_series}
    keys = {stem(k) for k in key_terms(question) if k not in paired}
    spelled = {stem(k): v for k, v in acronyms(question).items() if stem(k) in keys}
    wanted = len(keys) + len(named_series)
    shares = [len(s & q_stems) / len(q_stems) if q_stems else 0.0 for s in owned]
    lists: dict[int, float] = {}
    for c, v in zip(cands, near, strict=True):
        if c.kind == "item":
            lists[c.group] = max(lists.get(c.group, -1.0), float(v))
    for i, c in enumerate(cands):
        row = out[i]
        text = c.text
        row[col["own"]] = own[i]
        row[col["near"]] = near[i]
        row[col["near_gap"]] = near[i] - best_near
        row[col["own_gap"]] = own[i] - best_own
        row[col["near_order"]] = math.log1p(place[i])
        row[col["list_best"]] = lists[c.group] if c.kind == "item" else near[i]
        row[col["item"]] = float(c.kind == "item")
        row[col["field"]] = float(c.kind == "field")
        row[col["words"]] = math.log1p(len(text.split()))
        shared = owned[i] & q_stems
        row[col["lexical"]] = shares[i]
        row[col["lexical_gap"]] = shares[i] - max(shares)
        named = stems(text) | stems(c.heading) | stems(c.title)
        named |= {k for k, v in spelled.items() if v.search(text) or v.search(c.heading) or v.search(c.title)}
        whole = f"{text} {c.heading} {c.title}"
        held = len(keys & named) + sum(names_series(whole, w, n) for w, n in named_series)
        row[col["keys"]] = held / wanted if wanted else 1.0
        row[col["lexical_rare"]] = sum(rare[t] for t in shared) / rare_total if q_stems else 0.0
        row[col["heading_lexical"]] = len(content_stems(c.heading) & q_stems) / len(q_stems) if q_stems else 0.0
        mine = content_stems(text)
        novelty = len(mine - q_stems) / len(mine) if mine else 0.0
        row[col["novelty"]] = novelty
        row[col["restates"]] = float(novelty < 0.34)
        row[col["pointer"]] = float(_has(text, _POINTERS))
        row[col["leans"]] = float(leans(text))
        row[col["rank"]] = math.log(min(c.passages)) if c.passages else math.log(10)
        row[col["passages"]] = len(c.passages)
        row[col["passage_score"]] = c.score
        row[col["passage_dense"]] = c.dense
        row[col["figure"]] = float(bool(_numbers_beyond(text, ask)))
        value = supplies(ask, c)
        if value > 0:
            row[col[f"{ask.kind}+"]] = value
        elif value < 0:
            row[col[f"{ask.kind}-"]] = -value
    return out


# --- the fitted scorer -------------------------------------------------------------------------

SCORER_FORMAT = 2
SCORER_FILE = "scorer.json"
# What the answer model reads of a question once its units are scored: the evidence of its passages (best cosine,
# the share of its names found together, the share of its words absent; ``qa.abstain.Evidence``) and of the unit
# most likely to answer (its probability, whether it states the question's numbers, the share of its names it
# holds, whether it supplies what is asked), whether any quoted unit states the question's numbers, and the best
# own cosine of any unit.
ANSWER_FEATURES = ("dense", "together", "absent", "evidence", "probability", "best_own", "numbers", "block_numbers",
                   "keys", "supplies")


def supplied(row: Sequence[float]) -> float:
    """How plainly a unit's feature row supplies what its question asks: its "+" column less its "-" column."""
    return float(sum(row[i] for i, n in enumerate(FEATURES) if n.endswith("+"))
                 - sum(row[i] for i, n in enumerate(FEATURES) if n.endswith("-")))


@dataclass(frozen=True)
class Scorer:
    """The fitted models of question time: the unit scorer and the answer model, with their settings.

    ``weights`` / ``intercept``: the unit scorer, a logistic regression over ``FEATURES`` (raw units).
    ``margin``: units whose probability is within this share of the best's are quoted too.
    ``min_closeness``: the best own cosine among the units that the hand-set "answered" test needs (kept for
    the evidence table, which asks it per report).
    ``answer_weights`` / ``answer_intercept``: the answer model, a logistic regression over ``ANSWER_FEATURES``:
    the probability that the corpus answers a question whose units were scored.
    ``answer_threshold``: below this probability "not covered" is said (chosen on held-out questions).
    ``models``: the embedding models whose cosines the models were fitted on; another model's cosines
    run on another scale (see ``qa.engine.Engine``, which warns).
    """

    features: tuple[str, ...]
    weights: tuple[float, ...]
    intercept: float
    margin: float
    min_closeness: float
    answer_weights: tuple[float, ...] = ()
    answer_intercept: float = 0.0
    answer_threshold: float = 0.5
    models: tuple[str, ...] = ()  # the embedding models whose cosines both were fitted on

    def probability(self, table: np.ndarray) -> np.ndarray:
        """Each row's probability of stating the answer: a dot product and a logistic, nothing more."""
        z = np.asarray(table, dtype=np.float64) @ np.asarray(self.weights, dtype=np.float64) + self.intercept
        return 1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))

    def answers(self, row: Sequence[float]) -> float:
        """The answer model's probability for one question's ``ANSWER_FEATURES`` row."""
        z = float(np.asarray(row, dtype=np.float64) @ np.asarray(self.answer_weights, dtype=np.float64))
        return float(1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, z + self.answer_intercept)))))

    @classmethod
    def from_json(cls, text: str, where: str) -> Scorer:
        """Read a scorer file; one written for other features or another format is refused with the fix."""
        from .errors import QAError

        try:
            data = json.loads(text)
            if data.get("format") != SCORER_FORMAT:
                raise ValueError(f"format {data.get('format')!r}, this version reads {SCORER_FORMAT}")
            names = tuple(data["features"])
            if names != FEATURES:
                raise ValueError("its features are not the ones this version computes")
            weights = tuple(float(data["weights"][n]) for n in names)
            model = data["answer_model"]
            if tuple(model["features"]) != ANSWER_FEATURES:
                raise ValueError("its answer model reads other features than this version computes")
            return cls(names, weights, float(data["intercept"]), float(data["margin"]), float(data["min_closeness"]),
                       tuple(float(model["weights"][n]) for n in ANSWER_FEATURES), float(model["intercept"]),
                       float(model["threshold"]), tuple(str(m) for m in data.get("models", ())))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise QAError(f"{where} is not an answer scorer this version can use ({exc}); "
                          "refit it with `qa train`") from exc


def _scorer_text() -> str:
    return resources.files("qa").joinpath("data", SCORER_FILE).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def load_scorer() -> Scorer:
    """The scorer shipped in the package (read once; it never changes while running)."""
    return Scorer.from_json(_scorer_text(), f"qa/data/{SCORER_FILE}")


def scorer_sha256() -> str:
    """The sha256 of the shipped scorer file: recorded in an index's manifest under ``scorer``."""
    return hashlib.sha256(_scorer_text().encode("utf-8")).hexdigest()
