"""The extractive answer: the few sentences of the top passages that best answer the question.

Nothing is written here: every answer sentence is a span of a retrieved
passage (whitespace folded), marked with the ranks of the passages it is in.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .records import AnswerSentence, Passage
from .retrieve import query_terms, stem, stems

_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9£])|\n\s*\n|\n(?=\s*(?:[-*]|\d+[.)])\s)")
_WS = re.compile(r"\s+")


@dataclass(frozen=True)
class AnswerSettings:
    """How many sentences, from how many passages, and how close to the best they must score."""

    max_sentences: int = 4
    from_passages: int = 3
    min_score: float = 0.48  # below this the best sentence does not answer: the corpus lacks it
    margin: float = 0.12
    lexical_weight: float = 0.15
    max_candidates: int = 24  # sentences embedded per question, chosen by shared words
    max_sentence_chars: int = 400


def fold(text: str) -> str:
    """Whitespace and case folded: how sentences are compared with passages."""
    return _WS.sub(" ", text).strip().lower()


def split_sentences(text: str) -> list[str]:
    """Sentences of a passage, whitespace collapsed; fragments and headings dropped."""
    out: list[str] = []
    for piece in _BOUNDARY.split(text):
        sentence = _WS.sub(" ", piece).strip(" -*")
        if len(sentence) < 25 or len(sentence.split()) < 5:
            continue
        if sentence[0].islower():  # the tail of a sentence cut at the chunk's start
            continue
        out.append(sentence)
    return out


def candidates(passages: Sequence[Passage], settings: AnswerSettings,
               question: str = "") -> list[tuple[str, tuple[int, ...]]]:
    """Distinct sentences of the first passages, each with every passage rank it appears in.

    With a question, at most ``max_candidates`` are kept: those sharing the most
    of its content words, in reading order (each is embedded at question time).
    """
    seen: dict[str, tuple[str, list[int]]] = {}
    for passage in passages[: settings.from_passages]:
        for sentence in split_sentences(passage.chunk.text):
            key = fold(sentence)
            if len(sentence) > settings.max_sentence_chars:  # a run-on list or table, not an answer sentence
                continue
            if key not in seen:
                seen[key] = (sentence, [])
    if question and len(seen) > settings.max_candidates:
        terms = {stem(t) for t in query_terms(question)}
        overlap = {key: len(terms & stems(sentence)) for key, (sentence, _) in seen.items()}
        order = sorted(seen, key=lambda k: -overlap[k])  # stable: reading order among equals
        keep = set(order[: settings.max_candidates])
        seen = {k: v for k, v in seen.items() if k in keep}
    folded = [fold(p.chunk.text) for p in passages]
    for key, (_, ranks) in seen.items():
        ranks.extend(p.rank for p, text in zip(passages, folded) if key in text)
    return [(sentence, tuple(sorted(set(ranks)))) for sentence, ranks in seen.values()]


def choose(
    question: str,
    sentences: Sequence[tuple[str, tuple[int, ...]]],
    similarity: np.ndarray,
    settings: AnswerSettings,
) -> tuple[AnswerSentence, ...]:
    """Pick up to ``max_sentences`` sentences scoring near the best, best first.

    ``similarity`` holds each sentence's cosine with the question; a share of the
    question's content words found in the sentence adds a little.
    """
    if not sentences:
        return ()
    terms = set(query_terms(question))
    scores = []
    for (sentence, _), sim in zip(sentences, similarity):
        words = set(query_terms(sentence))
        lexical = len(terms & words) / len(terms) if terms else 0.0
        scores.append(float(sim) + settings.lexical_weight * lexical)
    best = max(scores)
    if best < settings.min_score:
        return ()
    order = sorted(range(len(sentences)), key=lambda i: -scores[i])
    chosen = [i for i in order if scores[i] >= best - settings.margin][: settings.max_sentences]
    return tuple(AnswerSentence(text=sentences[i][0], passages=sentences[i][1]) for i in chosen)
