"""The extractive answer: the few units of the top passages most likely to state what was asked.

Nothing is written here: every answer sentence is a span of a retrieved
passage (whitespace folded), marked with the ranks of the passages it is in.
Only whole sentences, list items and "label: value" fields are candidates:
never a heading, a list's lead-in, a fragment cut by the passage's edge or
boilerplate. Each candidate is described by ``qa.features`` (closeness to the
question, shared words, what the question asks for against what the unit
holds, unit kind, passage rank, whether it leans on the sentence before, ...)
and scored by a logistic model fitted on the development questions
(``qa train``, stored in ``qa/data/scorer.json``): no weight here is set by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .features import asks_for, features, leans, list_question, load_scorer
from .records import AnswerSentence, Passage, Unit
from .structure import QUOTABLE_CHARS, answer_unit, embedding_text, judgement, page_units, units_of
from .text import collapse, content_stems, fold, search_terms, stem

__all__ = ["AnswerSettings", "Candidate", "Choice", "asks_for", "candidates", "choose", "fold", "pick", "select",
           "split_sentences"]


@dataclass(frozen=True)
class AnswerSettings:
    """How answer sentences are found, scored and how many are quoted."""

    max_sentences: int = 4
    max_items: int = 8  # list items quoted when a list answers
    from_passages: int = 3
    max_candidates: int = 24  # sentences embedded per question, chosen by shared words
    title_weight: float = 0.8  # a unit is also read with its document's title: this share of the title's vector added
    max_sentence_chars: int = QUOTABLE_CHARS  # longer units are not quoted (nor given a vector at ingest)


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
    score: float = 0.0  # the fused retrieval score of the first passage it is in
    dense: float = 0.0  # that passage's cosine with the question
    before: str = ""  # the sentence just before it in its passage, for a sentence that leans on it ("It ...")
    vector: int | None = None  # the row of its vector stored at ingest, if it has one


def split_sentences(text: str) -> list[str]:
    """Whole sentences and list items of a passage, whitespace collapsed (no headings or fragments)."""
    return [collapse(u.text) for u in page_units(text) if answer_unit(u)]


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
        found = units_of(passage)
        group += 1
        previous = ""
        # Ingest gave a vector to exactly the quotable units of an indexed page: no need to test them again.
        stored = any(u.vector is not None for u in found)
        for u in found:
            if u.kind == "heading":
                previous = ""
                continue
            ok = (u.vector is not None if stored else answer_unit(u)) and len(u.text) <= settings.max_sentence_chars
            before, previous = previous, collapse(u.text) if u.kind == "sentence" and ok else ""
            if not ok:
                continue
            text = collapse(u.text)
            key = fold(text)
            if key in seen:
                continue
            seen[key] = Candidate(text, (), u.kind, u.lead_in if u.kind == "item" else "",
                                  group * 1000 + (u.lead if u.lead is not None else -1) if u.kind == "item" else -1,
                                  u.heading, passage.document.title,
                                  before=before if u.kind == "sentence" and leans(text) else "", vector=u.vector)
    if question and len(seen) > settings.max_candidates:
        terms = {stem(t) for t in search_terms(question)}  # with the reports' words for plain ones ("due in": deadline)
        graded = asks_for(question) == "grade"
        overlap = {k: len(terms & (content_stems(c.text) | content_stems(c.lead) | content_stems(c.heading)))
                   + (len(terms) if graded and c.kind == "field" and judgement(c.text) else 0)
                   for k, c in seen.items()}
        order = sorted(seen, key=lambda k: -overlap[k])  # stable: reading order among equals
        keep = set(order[: settings.max_candidates])
        lists = {seen[k].group for k in keep if seen[k].kind == "item"}
        keep |= {k for k, c in seen.items() if c.kind == "item" and c.group in lists}  # a list is kept whole
        seen = {k: v for k, v in seen.items() if k in keep}
    folded = [fold(p.chunk.text) for p in passages]
    by_rank = {p.rank: p for p in passages}
    out = []
    for key, cand in seen.items():
        ranks = tuple(p.rank for p, text in zip(passages, folded, strict=True) if _holds(text, key))
        first = by_rank.get(min(ranks)) if ranks else None
        out.append(Candidate(cand.text, ranks, cand.kind, cand.lead, cand.group, cand.heading, cand.title,
                             first.score if first else 0.0, first.dense_score if first else 0.0, cand.before,
                             cand.vector))
    return out


def _holds(text: str, key: str) -> bool:
    """Whether folded ``text`` holds the folded unit ``key`` as whole words ("it projected" is not in "unit projected")."""
    at = text.find(key)
    while at >= 0:
        end = at + len(key)
        if (at == 0 or not text[at - 1].isalnum()) and (end == len(text) or not text[end].isalnum()
                                                         or not key[-1:].isalnum()):
            return True
        at = text.find(key, at + 1)
    return False


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


@dataclass(frozen=True)
class Choice:
    """What ``pick`` chose: the units quoted, the best own cosine among all units, and the most likely unit.

    ``top`` is the unit the scorer found most likely to state the answer (quoted,
    though a list is quoted in reading order): the unit the "answered" test reads,
    as ``qa train`` does when it chooses the answer threshold.
    """

    sentences: tuple[AnswerSentence, ...]
    best: float
    top: Candidate | None = None
    probability: float = 0.0
    top_features: tuple[float, ...] = ()  # the top unit's row of ``qa.features.FEATURES``
    chosen: tuple[Candidate, ...] = ()  # the units quoted, as chosen (before a leaning sentence's predecessor is added)


def pick(
    question: str,
    sentences: Sequence[Candidate],
    similarity: np.ndarray,
    settings: AnswerSettings,
    own: np.ndarray | None = None,
) -> Choice:
    """The answer units to quote, best first, with what abstention reads (see ``Choice``).

    ``similarity`` holds each unit's closeness to the question (an item embedded
    with its lead-in, see ``embed_text``; read with its title, see ``closeness``),
    ``own`` the units' own cosines (``similarity`` when not given). Each unit is
    described by ``qa.features`` and scored by the fitted scorer (``qa train``):
    the probability that it states the answer. Units whose probability is close
    to the best's (within the scorer's fitted margin, a share of it) are quoted too; when a list item wins, its list is
    quoted in reading order. A fact stated in several passages is quoted once, citing all.
    """
    if not sentences:
        return Choice((), 0.0)
    model = load_scorer()
    sims = np.asarray(similarity, dtype=np.float64)
    table = features(question, sentences, sims, sims if own is None else np.asarray(own, dtype=np.float64),
                     [embed_text(c) for c in sentences])
    probs = model.probability(table)
    chosen = select([float(p) for p in probs], [c.kind for c in sentences], [c.group for c in sentences],
                    list_question(question), settings, model.margin)
    top = int(np.argmax(probs))
    return Choice(_merged(_with_before([sentences[i] for i in chosen])), float(np.max(sims if own is None else own)),
                  sentences[top], float(probs[top]), tuple(float(v) for v in table[top]),
                  tuple(sentences[i] for i in chosen))


def choose(
    question: str,
    sentences: Sequence[Candidate],
    similarity: np.ndarray,
    settings: AnswerSettings,
    own: np.ndarray | None = None,
) -> tuple[tuple[AnswerSentence, ...], float]:
    """The answer units to quote, best first, and the best own cosine among the units (``pick`` without its top unit)."""
    choice = pick(question, sentences, similarity, settings, own)
    return choice.sentences, choice.best


def _with_before(units: Sequence[Candidate]) -> list[Candidate]:
    """A sentence that leans on the one before it ("It projected ...") quoted after that sentence, so it reads alone."""
    out: list[Candidate] = []
    quoted = {fold(u.text) for u in units}
    for unit in units:
        if unit.before and fold(unit.before) not in quoted:
            out.append(Candidate(unit.before, unit.passages, "sentence", title=unit.title))
            quoted.add(fold(unit.before))
        out.append(unit)
    return out


def select(probs: Sequence[float], kinds: Sequence[str], groups: Sequence[int], whole_list: bool,
           settings: AnswerSettings, margin: float) -> list[int]:
    """Which units to quote, by index, best first (a list's items in reading order).

    Units whose probability is at least ``1 - margin`` of the best's are quoted,
    up to ``max_sentences``; when the best is a list item, its list's items are quoted
    instead (all of them when ``whole_list``, else those within the margin).
    Shared by ``choose`` and ``qa train``, so the fitted margin is the one used.
    """
    if not probs:
        return []
    order = sorted(range(len(probs)), key=lambda i: -probs[i])
    first = probs[order[0]]
    if kinds[order[0]] == "item":
        items = [i for i in range(len(probs)) if kinds[i] == "item" and groups[i] == groups[order[0]]]
        if not whole_list:
            items = [i for i in items if probs[i] >= (1 - margin) * first]
        return items[: settings.max_items]
    chosen = [i for i in order if probs[i] >= (1 - margin) * first and kinds[i] != "item"]
    return chosen[: settings.max_sentences]


def _merged(units: Sequence[Candidate]) -> tuple[AnswerSentence, ...]:
    """The chosen units as answer sentences, a unit that repeats one already quoted merged into it.

    Several reports often state one fact in nearly the same words: it is
    quoted once, with the passages of every unit that states it.
    """
    out: list[tuple[str, set[str], list[int]]] = []
    for unit in units:
        words = set(fold(unit.text).split())
        for _text, seen, ranks in out:
            if len(words & seen) >= 0.8 * max(len(words), len(seen)):
                ranks.extend(r for r in unit.passages if r not in ranks)
                break
        else:
            out.append((unit.text, words, list(unit.passages)))
    return tuple(AnswerSentence(text=text, passages=tuple(sorted(ranks))) for text, _, ranks in out)


def embed_text(cand: Candidate) -> str:
    """What is embedded for a unit (``qa.structure.embedding_text``): its heading and lead-in, then its text."""
    return embedding_text(Unit(0, 0, cand.text, cand.kind, heading=cand.heading, lead_in=cand.lead))
