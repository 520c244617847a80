"""The question-answering engine: a loaded index plus its model, ready to ask.

One ``Engine`` serves many threads (the app's browser sessions, the CLI's
batch mode): the model and vectors load once, and ``refresh`` switches to a
newer index generation after an ingest without a restart.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from . import answer as answering
from .cite import make_citation
from .embed import Embedder, load_embedder
from .errors import IndexMismatchError, IndexMissingError
from .records import Answer, Chunk, Document, IndexInfo, Page, Passage
from .chunking import file_words
from .retrieve import (FoundSettings, FusionSettings, contextualise, diversify, fts_query, fuse, is_answered,
                       query_terms, widen)
from .store import IndexStore, current_generation

log = logging.getLogger(__name__)

DEFAULT_CORPUS = "corpus"
DEFAULT_INDEX = "index"


def corpus_dir(value: str | os.PathLike[str] | None = None) -> Path:
    """The corpus folder: the argument, else QA_CORPUS_DIR, else ``corpus/``."""
    return Path(value or os.environ.get("QA_CORPUS_DIR") or DEFAULT_CORPUS)


def index_dir(value: str | os.PathLike[str] | None = None) -> Path:
    """The index folder: the argument, else QA_INDEX_DIR, else ``index/``."""
    return Path(value or os.environ.get("QA_INDEX_DIR") or DEFAULT_INDEX)


@dataclass(frozen=True)
class AskSettings:
    """Retrieval and answer settings used at question time (not stored in the index)."""

    fusion: FusionSettings = field(default_factory=FusionSettings)
    answer: answering.AnswerSettings = field(default_factory=answering.AnswerSettings)
    found_threshold: float = 0.30  # best dense cosine below this: the corpus does not answer (see FoundSettings)
    mode: str = "hybrid"  # "hybrid", "dense" or "lexical"
    passage_chars: int = 2400  # a passage is its chunk widened by same-page neighbours up to this size


class Engine:
    """Ask questions of one index folder."""

    def __init__(self, index: str | os.PathLike[str] | None = None, embedder: Embedder | None = None,
                 settings: AskSettings | None = None) -> None:
        self.index_dir = index_dir(index)
        self.settings = settings or AskSettings()
        self._lock = threading.Lock()
        store = IndexStore(self.index_dir)
        if embedder is None:
            embedder = load_embedder(store.manifest.model, from_index=True)  # never fetched from a hub
        self.embedder = embedder
        self._check(store)
        self._store = store

    def _check(self, store: IndexStore) -> None:
        m = store.manifest
        if (m.model, m.model_hash, m.dimension) != (self.embedder.name, self.embedder.fingerprint, self.embedder.dimension):
            raise IndexMismatchError(
                f"the index in {self.index_dir} was built with model {m.model!r} ({m.dimension} dimensions), "
                f"not {self.embedder.name!r}; rebuild with `qa ingest --rebuild --model {self.embedder.name}` "
                f"or ask with `--model {m.model}`"
            )

    @property
    def store(self) -> IndexStore:
        return self._store

    def refresh(self) -> bool:
        """Switch to a newer generation if an ingest finished since loading; True when switched."""
        name = current_generation(self.index_dir)
        if not name or name == self._store.generation:
            return False
        with self._lock:
            if name == self._store.generation:
                return False
            store = IndexStore(self.index_dir)
            self._check(store)
            self._store = store
            log.info("switched to index generation %s", name)
            return True

    # --- questions -------------------------------------------------------------------------

    def ask(
        self,
        question: str,
        *,
        top_k: int = 5,
        docs: Sequence[str] | None = None,
        year_from: int | None = None,
        year_to: int | None = None,
        history: Sequence[str] = (),
        with_answer: bool = True,
    ) -> Answer:
        """Retrieve the best passages for a question and build the extractive answer.

        If the generation this engine holds was pruned by later ingests, the
        engine switches to the current one and asks again.
        """
        args = (question, top_k, docs, year_from, year_to, history, with_answer)
        try:
            return self._ask(*args)
        except IndexMissingError:
            if self.refresh():
                return self._ask(*args)
            raise

    def _ask(self, question: str, top_k: int, docs: Sequence[str] | None, year_from: int | None,
             year_to: int | None, history: Sequence[str], with_answer: bool) -> Answer:
        store = self._store
        query = contextualise(question, history)
        if not query.strip():
            return Answer(question=question, query=query, found=False, sentences=(), passages=())
        allowed = store.filtered_ids(docs, year_from, year_to)
        query_vec = self.embedder.embed([query])[0]
        passages = self._retrieve(store, query, query_vec, top_k, allowed)
        best_dense = max((p.dense_score for p in passages), default=0.0)
        found = is_answered(
            query, [(p.chunk.text, f"{p.document.title} {file_words(p.chunk.doc_id)}") for p in passages], best_dense,
            lambda term: store.matches_any(fts_query(term)),
            replace(FoundSettings(), min_dense=self.settings.found_threshold),
        )
        sentences: tuple = ()
        if found and with_answer:
            sentences = self._answer_sentences(query, query_vec, passages)
            found = bool(sentences)
        return Answer(question=question, query=query, found=found, sentences=sentences, passages=tuple(passages))

    def _retrieve(self, store: IndexStore, query: str, query_vec: np.ndarray, top_k: int,
                  allowed: np.ndarray | None) -> list[Passage]:
        fs = self.settings.fusion
        mode = self.settings.mode
        n = max(fs.candidates, top_k * 4)
        dense_hits = dict(store.search_dense(query_vec, n, allowed)) if mode != "lexical" else {}
        lexical_hits = dict(store.search_terms(query_terms(query), n, allowed)) if mode != "dense" else {}
        # Every candidate gets an exact cosine, so fusion and `found` see both signals.
        missing = [cid for cid in lexical_hits if cid not in dense_hits]
        if missing:
            vecs = store.vectors.reconstruct_batch(np.array(missing, dtype=np.int64))
            dense_all = {**dense_hits, **{cid: float(s) for cid, s in zip(missing, vecs @ query_vec)}}
        else:
            dense_all = dense_hits
        if mode == "lexical":
            ranked = fuse({}, lexical_hits, FusionSettings(method="weighted", dense_weight=0.0))
            ranked = [c.__class__(c.chunk_id, dense_all.get(c.chunk_id, 0.0), c.lexical, c.score) for c in ranked]
        elif mode == "dense":
            ranked = fuse(dense_hits, {}, FusionSettings(method="weighted", dense_weight=1.0))
        else:
            ranked = fuse(dense_all, lexical_hits, fs)
        head = ranked[: n]
        chunks = store.chunks([c.chunk_id for c in head])
        picked = diversify(head, chunks, top_k, fs)
        passages = []
        for rank, cand in enumerate(picked, start=1):
            chunk = self._expand(store, cand.chunk_id, chunks[cand.chunk_id], dense_all, query_vec)
            document = store.documents[chunk.doc_id]
            passages.append(
                Passage(rank=rank, chunk_id=cand.chunk_id, chunk=chunk, document=document, score=round(cand.score, 4),
                        dense_score=round(cand.dense, 4), lexical_score=round(cand.lexical, 4),
                        citation=make_citation(document, chunk))
            )
        return passages

    def _expand(self, store: IndexStore, chunk_id: int, chunk: Chunk, scores: dict[int, float],
                query_vec: np.ndarray | None = None) -> Chunk:
        """Widen a chunk with its neighbours on the same page, up to ``passage_chars``.

        Chunks are small so that vectors stay sharp; a reader (and the answer)
        needs the sentences around them. Whole neighbours come first, then the
        budget left is filled to sentence or line boundaries. The passage stays
        an exact page span.
        """
        limit = self.settings.passage_chars
        if limit <= len(chunk.text):
            return chunk
        reach = 2 * (limit // max(1, len(chunk.text))) + 2  # overlapping neighbours add less than a chunk each
        near = store.chunks([i for i in range(chunk_id - reach, chunk_id + reach + 1) if i != chunk_id and i >= 0])
        unscored = [i for i in near if i not in scores]
        if unscored and query_vec is not None:  # exact cosines, so the passage grows towards the closer text
            vecs = store.vectors.reconstruct_batch(np.array(unscored, dtype=np.int64))
            scores = {**scores, **{i: float(s) for i, s in zip(unscored, vecs @ query_vec)}}
        page = store.page(chunk.doc_id, chunk.page)
        if page is None:
            return chunk
        start, end = widen(chunk_id, chunk, near, scores, limit, page.text)
        if (start, end) == (chunk.start, chunk.end):
            return chunk
        return replace(chunk, start=start, end=end, text=page.text[start:end])

    def _answer_sentences(self, query: str, query_vec: np.ndarray, passages: Sequence[Passage]) -> tuple:
        cands = answering.candidates(passages, self.settings.answer, query)
        if not cands:
            return ()
        # Small batches: the encoder sorts by length, so short sentences are not padded to the longest.
        vecs = self.embedder.embed([s for s, _ in cands], batch_size=8)
        return answering.choose(query, cands, vecs @ query_vec, self.settings.answer)

    # --- the corpus ------------------------------------------------------------------------

    def documents(self) -> list[Document]:
        return list(self._store.documents.values())

    def page(self, doc_id: str, page: int) -> Page | None:
        return self._store.page(doc_id, page)

    def context(self, passage: Passage, chars: int = 500) -> tuple[str, str]:
        """Text just before and after a passage on its page."""
        page = self._store.page(passage.chunk.doc_id, passage.chunk.page)
        if page is None:
            return "", ""
        start, end = passage.chunk.start, passage.chunk.end
        return page.text[max(0, start - chars) : start], page.text[end : end + chars]

    def source_path(self, doc_id: str) -> Path | None:
        """The original file of a document, if it is still inside the corpus it was built from."""
        root = Path(self._store.manifest.corpus_dir)
        path = (root / doc_id).resolve()
        if path.is_relative_to(root.resolve()) and path.is_file():
            return path
        return None

    def info(self) -> IndexInfo:
        s = self._store
        m = s.manifest
        return IndexInfo(
            index_dir=str(self.index_dir), corpus_dir=m.corpus_dir, built_at=m.built_at, model=m.model,
            model_hash=m.model_hash, dimension=m.dimension, documents=len(s.documents),
            pages=s.count("pages"), chunks=s.count("chunks"), chunking=dict(m.chunking), generation=s.generation,
        )
