"""Question-time retrieval: dense and lexical search, fused, diversified and widened into passages.

The pure ranking functions live in ``qa.retrieve``; this class holds the one
settings object and talks to the store (never to FAISS directly).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .cite import make_citation
from .records import Chunk, Page, Passage
from .retrieve import Candidate, FusionSettings, diversify, fuse, widen
from .store import IndexStore
from .structure import within
from .text import query_terms, search_terms, sentence_start


@dataclass(frozen=True)
class RetrieverSettings:
    """How passages are found: fusion, mode and how far a passage reaches on its page."""

    fusion: FusionSettings = field(default_factory=FusionSettings)
    mode: str = "hybrid"  # "hybrid", "dense" or "lexical"
    passage_chars: int = 2400  # a passage is its chunk widened by same-page neighbours up to this size
    sentence_start: int = 300  # and moved back by up to this much so it does not open inside a sentence
    plain_words: bool = True  # lexical search adds the reports' words for plain ones ("kids": children)


class Retriever:
    """Finds the passages of one index generation for a question."""

    def __init__(self, store: IndexStore, settings: RetrieverSettings) -> None:
        self.store = store
        self.settings = settings

    def search(self, query: str, query_vec: np.ndarray, top_k: int, allowed: np.ndarray | None) -> list[Passage]:
        """The ``top_k`` passages for a query, best first, at most one per page and none twice."""
        store = self.store
        fs = self.settings.fusion
        mode = self.settings.mode
        n = max(fs.candidates, top_k * 4)
        dense_hits = dict(store.search_dense(query_vec, n, allowed)) if mode != "lexical" else {}
        lexical_hits: dict[int, float] = {}
        if mode != "dense":
            words = search_terms(query) if self.settings.plain_words else query_terms(query)
            lexical_hits = dict(store.search_terms(words, n, allowed))
        # Every candidate gets an exact cosine, so fusion and abstention see both signals.
        missing = [cid for cid in lexical_hits if cid not in dense_hits]
        dense_all = {**dense_hits, **self._cosines(missing, query_vec)}
        if mode == "lexical":
            ranked = fuse({}, lexical_hits, FusionSettings(method="weighted", dense_weight=0.0))
            ranked = [Candidate(c.chunk_id, dense_all.get(c.chunk_id, 0.0), c.lexical, c.score) for c in ranked]
        elif mode == "dense":
            ranked = fuse(dense_hits, {}, FusionSettings(method="weighted", dense_weight=1.0))
        else:
            ranked = fuse(dense_all, lexical_hits, fs)
        head = ranked[:n]
        chunks = store.chunks([c.chunk_id for c in head])
        picked = diversify(head, chunks, top_k, fs)
        passages: list[Passage] = []
        spans: list[tuple[str, int, int, int]] = []
        pages: dict[tuple[str, int], Page | None] = {}
        for cand in picked:
            chunk = self._expand(cand.chunk_id, chunks[cand.chunk_id], dense_all, query_vec, pages)
            # Widening can make two picks cover the same text: keep the first only.
            if any(d == chunk.doc_id and p == chunk.page and min(e, chunk.end) - max(s, chunk.start) >
                   0.5 * min(e - s, chunk.end - chunk.start) for d, p, s, e in spans):
                continue
            spans.append((chunk.doc_id, chunk.page, chunk.start, chunk.end))
            document = store.documents[chunk.doc_id]
            page = self._page(chunk.doc_id, chunk.page, pages)
            passages.append(
                Passage(rank=len(passages) + 1, chunk_id=cand.chunk_id, chunk=chunk, document=document,
                        score=round(cand.score, 4), dense_score=round(cand.dense, 4),
                        lexical_score=round(cand.lexical, 4), citation=make_citation(document, chunk),
                        units=within(page.units, chunk.start, chunk.end) if page is not None else ())
            )
        return passages

    def _page(self, doc_id: str, number: int, pages: dict[tuple[str, int], Page | None]) -> Page | None:
        """A page of the store, read once per search (``pages`` is that search's own memo)."""
        key = (doc_id, number)
        if key not in pages:
            pages[key] = self.store.page(doc_id, number)
        return pages[key]

    def _cosines(self, ids: list[int], query_vec: np.ndarray) -> dict[int, float]:
        if not ids:
            return {}
        vecs = self.store.vectors_for(ids)
        return {cid: float(s) for cid, s in zip(ids, vecs @ query_vec, strict=True)}

    def _expand(self, chunk_id: int, chunk: Chunk, scores: dict[int, float], query_vec: np.ndarray,
                pages: dict[tuple[str, int], Page | None]) -> Chunk:
        """Widen a chunk with its neighbours on the same page, up to ``passage_chars``.

        Chunks are small so that vectors stay sharp; a reader (and the answer)
        needs the sentences around them. Whole neighbours come first, then the
        budget left is filled to sentence or line boundaries, and a start that
        cuts a sentence at a wrapped line moves back to that sentence's start.
        The passage stays an exact page span.
        """
        store = self.store
        limit = self.settings.passage_chars
        if limit <= len(chunk.text):
            return chunk
        reach = 2 * (limit // max(1, len(chunk.text))) + 2  # overlapping neighbours add less than a chunk each
        near = store.chunks([i for i in range(chunk_id - reach, chunk_id + reach + 1) if i != chunk_id and i >= 0])
        unscored = [i for i in near if i not in scores]
        scores = {**scores, **self._cosines(unscored, query_vec)}  # the passage grows towards the closer text
        page = self._page(chunk.doc_id, chunk.page, pages)
        if page is None:
            return chunk
        start, end = widen(chunk_id, chunk, near, scores, limit, page.text)
        start = sentence_start(page.text, start, self.settings.sentence_start)
        if (start, end) == (chunk.start, chunk.end):
            return chunk
        return replace(chunk, start=start, end=end, text=page.text[start:end])
