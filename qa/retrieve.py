"""Hybrid retrieval: dense (FAISS) and lexical (SQLite FTS5 BM25), fused, then diversified.

The functions here are pure: they take the hits the store returned and decide
the ranking. ``fts_query`` makes any user text safe to hand to FTS5.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .records import Chunk

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
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class FusionSettings:
    """How dense and lexical scores combine; chosen by measurement (see docs/benchmarks.md)."""

    method: str = "weighted"  # "weighted" or "rrf"
    dense_weight: float = 0.6
    rrf_k: int = 60
    candidates: int = 60
    per_page: int = 1
    max_overlap: float = 0.3


@dataclass(frozen=True)
class Candidate:
    """A chunk with its scores, before and after fusion."""

    chunk_id: int
    dense: float
    lexical: float
    score: float = 0.0


def query_terms(text: str) -> list[str]:
    """Lower-cased content words of a question, in order, without repeats."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.lower()):
        if word not in STOPWORDS and (len(word) > 1 or word.isdigit()):
            seen.setdefault(word, None)
    return list(seen)


def fts_query(text: str) -> str | None:
    """An FTS5 MATCH expression OR-ing the question's content words, each quoted.

    Quoting every term as a string means operators (AND, NEAR, -, *, ") in user
    text are read as words, so no input can be a syntax error. None when only
    stop words remain.
    """
    terms = query_terms(text)
    if not terms:
        return None
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms[:32])


def fuse(dense: dict[int, float], lexical: dict[int, float], settings: FusionSettings) -> list[Candidate]:
    """Combine two score maps into one ranking (best first).

    ``dense`` holds cosines for every candidate; ``lexical`` BM25 scores for those
    FTS5 matched. Weighted fusion scales BM25 by the best BM25 of this query, so a
    strong lexical match and a strong dense match count alike.
    """
    ids = set(dense) | set(lexical)
    if not ids:
        return []
    if settings.method == "rrf":
        dense_rank = {cid: r for r, cid in enumerate(sorted(dense, key=lambda c: -dense[c]))}
        lex_rank = {cid: r for r, cid in enumerate(sorted(lexical, key=lambda c: -lexical[c]))}
        w = settings.dense_weight
        scored = []
        for cid in ids:
            value = 0.0
            if cid in dense_rank:
                value += w / (settings.rrf_k + dense_rank[cid] + 1)
            if cid in lex_rank:
                value += (1 - w) / (settings.rrf_k + lex_rank[cid] + 1)
            scored.append(Candidate(cid, dense.get(cid, 0.0), lexical.get(cid, 0.0), value))
    else:
        top_lex = max(lexical.values(), default=0.0)
        w = settings.dense_weight
        scored = [
            Candidate(
                cid, dense.get(cid, 0.0), lexical.get(cid, 0.0),
                w * dense.get(cid, 0.0) + (1 - w) * (lexical.get(cid, 0.0) / top_lex if top_lex > 0 else 0.0),
            )
            for cid in ids
        ]
    scored.sort(key=lambda c: (-c.score, c.chunk_id))
    return scored


def _overlap(a: Chunk, b: Chunk) -> float:
    """Share of the shorter chunk covered by the other (same page only)."""
    if a.doc_id != b.doc_id or a.page != b.page:
        return 0.0
    inter = min(a.end, b.end) - max(a.start, b.start)
    if inter <= 0:
        return 0.0
    return inter / max(1, min(a.end - a.start, b.end - b.start))


def diversify(ranked: Sequence[Candidate], chunks: dict[int, Chunk], k: int, settings: FusionSettings) -> list[Candidate]:
    """Top ``k`` candidates with at most ``per_page`` per page and no heavy overlaps.

    When the limits leave fewer than ``k``, the best of the rest fill the list.
    """
    picked: list[Candidate] = []
    rest: list[Candidate] = []
    per_page: dict[tuple[str, int], int] = {}
    for cand in ranked:
        chunk = chunks.get(cand.chunk_id)
        if chunk is None:
            continue
        key = (chunk.doc_id, chunk.page)
        if len(picked) >= k:
            break
        if per_page.get(key, 0) >= settings.per_page or any(
            _overlap(chunk, chunks[p.chunk_id]) > settings.max_overlap for p in picked
        ):
            rest.append(cand)
            continue
        picked.append(cand)
        per_page[key] = per_page.get(key, 0) + 1
    for cand in rest:
        if len(picked) >= k:
            break
        if not any(_overlap(chunks[cand.chunk_id], chunks[p.chunk_id]) > 0.8 for p in picked):
            picked.append(cand)
    return picked


_FOLLOW_UP = re.compile(
    r"^(and|but|what about|how about|what of|also|then|so|same|and what|or)\b|\b(it|they|them|their|those|these|that one|this one|there)\b",
    re.I,
)


def contextualise(question: str, history: Sequence[str]) -> str:
    """The text to search for a question in a conversation.

    A question that leans on the one before ("what about for teenagers?") is
    searched together with the previous question; a self-contained one alone.
    """
    question = question.strip()
    if not history:
        return question
    previous = history[-1].strip()
    if not previous:
        return question
    short = len(query_terms(question)) <= 3
    if short or _FOLLOW_UP.search(question):
        return f"{previous} {question}"
    return question
