"""Hybrid retrieval: dense (FAISS) and lexical (SQLite FTS5 BM25), fused, then diversified.

The functions here are pure: they take the hits the store returned and decide
the ranking and how far a passage reaches on its page (``qa.retriever`` runs
them against the store). ``fts_query`` makes any user text safe to hand to FTS5.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .records import Chunk
from .text import cut_points, query_terms


@dataclass(frozen=True)
class FusionSettings:
    """How dense and lexical scores combine; chosen by measurement (see docs/benchmarks.md)."""

    method: str = "weighted"  # "weighted" or "rrf"
    dense_weight: float = 0.6
    rrf_k: int = 60
    candidates: int = 60
    per_page: int = 1
    per_doc: int = 0  # at most this many passages of one document before others get a turn; 0 = no limit
    max_overlap: float = 0.3


@dataclass(frozen=True)
class Candidate:
    """A chunk with its scores, before and after fusion."""

    chunk_id: int
    dense: float
    lexical: float
    score: float = 0.0


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
    per_doc: dict[str, int] = {}
    for cand in ranked:
        chunk = chunks.get(cand.chunk_id)
        if chunk is None:
            continue
        key = (chunk.doc_id, chunk.page)
        if len(picked) >= k:
            break
        if per_page.get(key, 0) >= settings.per_page or (
            settings.per_doc and per_doc.get(chunk.doc_id, 0) >= settings.per_doc) or any(
            _overlap(chunk, chunks[p.chunk_id]) > settings.max_overlap for p in picked
        ):
            rest.append(cand)
            continue
        picked.append(cand)
        per_page[key] = per_page.get(key, 0) + 1
        per_doc[chunk.doc_id] = per_doc.get(chunk.doc_id, 0) + 1
    for cand in rest:
        if len(picked) >= k:
            break
        if not any(_overlap(chunks[cand.chunk_id], chunks[p.chunk_id]) > 0.8 for p in picked):
            picked.append(cand)
    return picked


def widen(chunk_id: int, chunk: Chunk, neighbours: Mapping[int, Chunk], scores: Mapping[int, float],
          limit: int, page_text: str | None = None) -> tuple[int, int]:
    """The page span of a passage: the chunk grown over its neighbours on the same page.

    Neighbours are added one at a time from either side, the better-scored side
    first, while the span stays within ``limit`` characters. Chunks are small
    so that vectors stay sharp; the reader needs the sentences around them.
    With ``page_text``, the budget whole chunks leave is then filled (see
    ``fill``), starting on the side of the better-scored chunk left out.
    """
    start, end = chunk.start, chunk.end
    lo = hi = chunk_id

    def same_page(i: int) -> Chunk | None:
        other = neighbours.get(i)
        if other is None or other.doc_id != chunk.doc_id or other.page != chunk.page:
            return None
        return other

    while True:
        options = []
        for i in (lo - 1, hi + 1):
            other = same_page(i)
            if other is not None and max(end, other.end) - min(start, other.start) <= limit:
                options.append((scores.get(i, float("-inf")), -i, i, other))
        if not options:
            break
        _, _, i, other = max(options)
        start, end = min(start, other.start), max(end, other.end)
        lo, hi = min(lo, i), max(hi, i)
    if page_text is None:
        return start, end
    before = scores.get(lo - 1, 0.0) if same_page(lo - 1) else None
    after = scores.get(hi + 1, 0.0) if same_page(hi + 1) else None
    before_first = after is None or (before is not None and before >= after)
    return fill(page_text, start, end, limit, before_first)


def fill(text: str, start: int, end: int, limit: int, before_first: bool) -> tuple[int, int]:
    """Spend what is left of a passage's ``limit`` on the page text around ``start:end``.

    Whole neighbouring chunks can leave hundreds of characters of the budget
    unused when the next one does not fit; the reader still wants the text just
    before and after. The span grows on the preferred side first, then the
    other, and only to a line or sentence boundary, so it never starts or ends
    mid-sentence when a boundary is in reach.
    """
    spare = limit - (end - start)
    for side in ((0, 1) if before_first else (1, 0)):
        if spare <= 0:
            break
        if side == 0 and start > 0:
            lo = max(0, start - spare)
            cut = next(iter(cut_points(text, lo, start, ends=False)), None) if lo > 0 else 0
            if cut is not None and cut < start:
                spare -= start - cut
                start = cut
        elif side == 1 and end < len(text):
            hi = min(len(text), end + spare)
            cuts = cut_points(text, end, hi, ends=True) if hi < len(text) else [hi]
            if cuts and cuts[-1] > end:
                spare -= cuts[-1] - end
                end = cuts[-1]
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end

