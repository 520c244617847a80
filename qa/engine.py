"""The question-answering engine: a loaded index plus its model, ready to ask.

One ``Engine`` serves many threads at once (the app's browser sessions, the
CLI's batch mode): the model and vectors load once, and ``refresh`` switches to
a newer index generation after an ingest without a restart.

What the threads share, and why no question's state reaches another's:

* the index generation (``IndexStore``): read-only once loaded. FAISS, the
  BM25 arrays and the units' vectors are only read; each thread opens its own
  SQLite connection (and its own temporary table for tokenising query words);
  the pages last read are kept as frozen records under a lock. ``refresh``
  puts a new store in place, and a question keeps the store it started with;
* the embedder: its weights are only read, and ``qa.embed`` lets one thread
  encode at a time, since the model's tokenizer keeps per-call settings;
* the title vectors: each document title's vector, embedded alone (so its value
  does not depend on which question first needed it), kept read-only, and
  read, added and pruned under ``_titles_lock``;
* the settings (frozen dataclasses), constant word tables and ``lru_cache`` of
  pure functions returning immutable values (``qa.text.stem``,
  ``qa.text.content_stems``).

A question splits no text into sentences (each page's units are stored at
ingest); where text is split (ingest, a passage built by hand), pysbd keeps
state on its segmenter, so each thread has its own (``qa.text``). Everything else a question uses (retriever, candidates,
scores, the answer) is made for that question alone. Anything added here that
outlives a question must be read-only, per thread or locked, and is tested by
asking from many threads at once (tests/test_concurrency.py).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from . import abstain, reports
from . import answer as answering
from .answer import AnswerSettings
from .chunking import file_words
from .cite import make_citation
from .embed import Embedder, load_embedder
from .errors import IndexMismatchError, IndexMissingError, QAError
from .features import load_scorer
from .followup import Turn, contextualise
from .records import Answer, Document, EvidenceTable, IndexInfo, Page, Passage
from .retrieve import FusionSettings, fts_query
from .retriever import Retriever, RetrieverSettings
from .store import IndexStore, current_generation
from .text import collapse, query_terms

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class AskSettings:
    """Question-time settings: retrieval, abstention and the answer (not stored in the index).

    ``abstain`` None means the thresholds recorded with the index's model (see ``qa.abstain``).
    """

    fusion: FusionSettings = field(default_factory=FusionSettings)
    answer: AnswerSettings = field(default_factory=AnswerSettings)
    abstain: abstain.AbstainPolicy | None = None
    mode: str = "hybrid"  # "hybrid", "dense" or "lexical"
    passage_chars: int = 2400  # a passage is its chunk widened by same-page neighbours up to this size
    plain_words: bool = True  # lexical search adds the reports' words for plain ones (qa.text.PLAIN_WORDS)

    @property
    def retriever(self) -> RetrieverSettings:
        return RetrieverSettings(fusion=self.fusion, mode=self.mode, passage_chars=self.passage_chars,
                                 plain_words=self.plain_words)


class Engine:
    """Ask questions of one index folder."""

    def __init__(self, index: str | os.PathLike[str], embedder: Embedder | None = None,
                 settings: AskSettings | None = None) -> None:
        self.index_dir = Path(index)
        self.settings = settings or AskSettings()
        self._lock = threading.Lock()
        store = IndexStore(self.index_dir)
        if embedder is None:
            embedder = load_embedder(store.manifest.model, from_index=True)  # never fetched from a hub
        self.embedder = embedder
        self._check(store)
        self._store = store
        self._titles: dict[str, np.ndarray] = {}  # document titles' vectors, embedded once each
        self._titles_lock = threading.Lock()  # questions add titles while a refresh prunes them
        self.policy()  # an index whose model has no thresholds stops here, with the fix
        try:
            fitted = load_scorer().models
        except QAError:  # a scorer being refitted (`qa train --extract` asks without it); a question says the fix
            fitted = ()
        if fitted and store.manifest.model not in fitted:
            log.warning("the answer scorer was fitted on the cosines of %s, and %s was built with %r: quoted "
                        "answers and 'not covered' decisions may be off; refit it with `qa train --extract` on "
                        "indexes built with that model", " and ".join(fitted), self.index_dir, store.manifest.model)

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
            # Keep only the titles the new generation still has: a long-running server
            # that sees many ingests would otherwise hold every title it ever met.
            titles = {doc.title for doc in store.documents.values()}
            with self._titles_lock:
                self._titles = {t: v for t, v in self._titles.items() if t in titles}
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
        history: Sequence[str | Turn | Answer] = (),
        with_answer: bool = True,
    ) -> Answer:
        """Retrieve the best passages for a question and build the extractive answer.

        ``history`` holds the conversation's earlier turns, oldest first: their
        questions, or better their ``Answer``s (a follow-up is never merged onto
        a turn that was not answered). If the generation this engine holds was
        pruned by later ingests, the engine switches to the current one and asks again.
        """
        args = (question, top_k, docs, year_from, year_to, history, with_answer)
        try:
            return self._ask(*args)
        except IndexMissingError:
            if self.refresh():
                return self._ask(*args)
            raise

    def warm_up(self) -> None:
        """Ask one throwaway question, so the first real question pays no first-call costs.

        The encoder initialises lazily: a local model may be read from disk only on
        its first encode, and torch sets up its kernels on the first forward pass;
        the first search and answer also bring the chunk store's tables into the
        page cache. A server calls this while it starts, so its first visitor does
        not wait for that. Errors are raised as ``ask`` raises them.
        """
        self.ask("warm up", top_k=1)
        log.debug("engine for %s warmed up", self.index_dir)

    def policy(self) -> abstain.AbstainPolicy:
        """The abstention thresholds in force: the settings', else those recorded with the index's model."""
        if self.settings.abstain is not None:
            return self.settings.abstain
        m = self._store.manifest
        return abstain.policy_for(m.model, m.abstain, str(self.index_dir))

    def _ask(self, question: str, top_k: int, docs: Sequence[str] | None, year_from: int | None,
             year_to: int | None, history: Sequence[str | Turn | Answer], with_answer: bool) -> Answer:
        store = self._store
        policy = self.policy()
        turns = [Turn(h.query, h.joinable) if isinstance(h, Answer) else h for h in history]
        query, merged = contextualise(question, turns)
        if merged and self._off_topic(question.strip(), store, policy):
            query, merged = question.strip(), False  # an off-topic question is not a follow-up
        if not query.strip():
            return Answer(question=question, query=query, found=False, sentences=(), passages=(), merged=merged)
        allowed = store.filtered_ids(docs, year_from, year_to)
        query_vec = self.embedder.embed([query])[0]
        passages = Retriever(store, self.settings.retriever).search(query, query_vec, top_k, allowed)
        best_dense = max((p.dense_score for p in passages), default=0.0)
        weighed = abstain.weigh_evidence(query, [(p.chunk.text, self._label(p)) for p in passages], best_dense,
                                         self.in_corpus, policy)
        found = weighed.ok  # without an answer, the evidence test alone decides
        sentences: tuple = ()
        if passages and with_answer:
            choice = self._answer_sentences(query, query_vec, passages)
            top = choice.top
            found = False
            if top is not None and choice.sentences:
                by_rank = {p.rank: p for p in passages}

                def states(unit: answering.Candidate) -> bool:
                    """Whether a unit states the question's numbers, read with its own passage's labels only
                    (as `qa train` reads it): a year named by another quoted unit is not this unit's year."""
                    labels = [self._label(by_rank[r]) for r in unit.passages[:1] if r in by_rank]
                    return abstain.states_numbers(query, [unit.text, *labels])

                found, _ = abstain.answers(weighed, choice.probability, choice.best, states(top),
                                           any(states(u) for u in choice.chosen), choice.top_features)
            if found:
                sentences = choice.sentences
                passages = [self._cited_where_quoted(p, [s.text for s in sentences if p.rank in s.passages])
                            for p in passages]
        return Answer(question=question, query=query, found=found, sentences=sentences, passages=tuple(passages),
                      merged=merged, on_topic=weighed.ok)

    def ask_by_report(
        self,
        question: str,
        *,
        sort: str = "score",
        docs: Sequence[str] | None = None,
        year_from: int | None = None,
        year_to: int | None = None,
        table: reports.TableSettings | None = None,
    ) -> EvidenceTable:
        """The question answered report by report: per document, its best answering unit (see ``qa.reports``).

        The question is embedded once; each document (of the filters, when
        given) is then searched on its own, exactly as ``docs=[doc]`` restricts
        a single question. Nothing of the question is kept on the engine.
        """
        args = (question, sort, docs, year_from, year_to, table or reports.TableSettings())
        try:
            return self._ask_by_report(*args)
        except IndexMissingError:
            if self.refresh():
                return self._ask_by_report(*args)
            raise

    def _ask_by_report(self, question: str, sort: str, docs: Sequence[str] | None, year_from: int | None,
                       year_to: int | None, table: reports.TableSettings) -> EvidenceTable:
        if sort not in reports.SORTS:
            raise ValueError(f"sort must be one of {', '.join(reports.SORTS)}, not {sort!r}")
        store = self._store
        query = question.strip()
        if not query:
            return EvidenceTable(question=question, query=query, rows=(), searched=0, sort=sort)
        wanted = [d for d in dict.fromkeys(docs) if d in store.documents] if docs else list(store.documents)
        query_vec = self.embedder.embed([query])[0]
        retriever = Retriever(store, self.settings.retriever)
        per_doc: dict[str, list[Passage]] = {}
        for doc_id in wanted:
            allowed = store.filtered_ids([doc_id], year_from, year_to)
            if allowed is not None and len(allowed):
                per_doc[doc_id] = retriever.search(query, query_vec, table.passages, allowed)
        table_ = reports.evidence_table(
            question, query, per_doc, query_vec,
            vectors=self._unit_vectors,
            title_vectors=self._title_vectors,
            in_corpus=self.in_corpus,
            label=self._label, policy=self.policy(),
            settings=reports.answer_settings(self.settings.answer, table), sort=sort,
        )
        rows = tuple(replace(r, passage=self._cited_where_quoted(r.passage, r.units)) for r in table_.rows)
        return replace(table_, rows=rows)

    def in_corpus(self, term: str) -> bool:
        """Whether a word occurs anywhere in the index (asked about question words the passages lack)."""
        return self._store.matches_any(fts_query(term))

    @staticmethod
    def _label(p: Passage) -> str:
        """What names a passage besides its text: section, document title and file name."""
        return f"{p.chunk.section} {p.document.title} {file_words(p.chunk.doc_id)}"

    def _off_topic(self, question: str, store: IndexStore, policy: abstain.AbstainPolicy) -> bool:
        """Whether a question that looks like a follow-up is about something the corpus does not hold.

        Most of its own content words unknown to the corpus, or, for a question
        with a topic of its own (three content words or more), nothing in the
        corpus close to it by itself. "and the second stage?" has no topic of its
        own and is never judged alone.
        """
        terms = query_terms(question)
        if not terms:
            return False
        absent = [t for t in terms if not store.matches_any(fts_query(t))]
        if len(absent) >= policy.absent_terms and len(absent) / len(terms) >= policy.absent_share:
            return True
        if len(terms) < 3:
            return False
        best = store.search_dense(self.embedder.embed([question])[0], 1)
        return not best or best[0][1] < policy.min_dense

    def _cited_where_quoted(self, passage: Passage, quoted: Sequence[str]) -> Passage:
        """The passage cited to the section of the first unit it is quoted for.

        A passage is its hit chunk widened over the page, so it can reach back
        into the section before; a quote from there is cited to that section, as
        stored with the chunk that holds the quote (page and label are the same).
        """
        if not quoted:
            return passage
        chunk = passage.chunk
        unit = next((u for text in quoted for u in passage.units if collapse(u.text) == text), None)
        if unit is None:
            return passage
        holder = self._store.chunk_at(chunk.doc_id, chunk.page, chunk.start + unit.start)
        if holder is None or holder.section == chunk.section:
            return passage
        cited = replace(chunk, section=holder.section)
        return replace(passage, chunk=cited, citation=make_citation(passage.document, cited))

    def _answer_sentences(self, query: str, query_vec: np.ndarray, passages: Sequence[Passage]) -> answering.Choice:
        cands, own, near = self.answer_units(query, query_vec, passages)
        if not cands:
            return answering.Choice((), 0.0)
        return answering.pick(query, cands, near, self.settings.answer, own=own)

    def answer_units(self, query: str, query_vec: np.ndarray, passages: Sequence[Passage]
                     ) -> tuple[list[answering.Candidate], np.ndarray, np.ndarray]:
        """The candidate answer units of the passages, their own cosines and their closeness read with titles.

        What the answer scorer sees; ``qa train --extract`` reads it here too, so the
        scorer is fitted on exactly the units and closeness the engine computes.
        """
        settings = self.settings.answer
        cands = answering.candidates(passages, settings, query)
        if not cands:
            return [], np.zeros(0), np.zeros(0)
        vecs = self._unit_vectors(cands)
        own = vecs @ query_vec
        if settings.title_weight <= 0:
            return cands, own, own
        titles = self._title_vectors([c.title for c in cands])
        near = answering.closeness(vecs, np.stack([titles[c.title] for c in cands]), query_vec, settings.title_weight)
        return cands, own, near

    def _unit_vectors(self, cands: Sequence[answering.Candidate]) -> np.ndarray:
        """The candidates' vectors: those stored at ingest, and any unit without one embedded now.

        Every quotable unit of an index gets its vector at ingest, so a question
        only embeds itself; a unit without one (a passage built by hand) is
        embedded here, in small batches: the encoder sorts by length, so short
        sentences are not padded to the longest.
        """
        out = np.zeros((len(cands), self.embedder.dimension), dtype=np.float32)
        rows = {i: c.vector for i, c in enumerate(cands) if c.vector is not None}
        if rows:
            out[list(rows)] = self._store.unit_vectors_for(list(rows.values()))
        missing = [i for i, c in enumerate(cands) if c.vector is None]
        if missing:
            out[missing] = self.embedder.embed([answering.embed_text(cands[i]) for i in missing], batch_size=8)
        return out

    def _title_vectors(self, titles: Sequence[str]) -> dict[str, np.ndarray]:
        """Vectors of document titles, embedded on first use (a title does not change within an index).

        Each title is embedded alone: a batch pads its texts to the longest, which
        moves a vector in its last digits, so a title embedded beside others would
        keep a value that depends on the question that first asked for it.
        """
        wanted = list(dict.fromkeys(titles))
        with self._titles_lock:
            found = {t: self._titles[t] for t in wanted if t in self._titles}
        for title in wanted:
            if title not in found:
                vec = self.embedder.embed([title])[0]  # outside the lock: other questions need not wait
                vec.setflags(write=False)  # shared by every question from now on
                with self._titles_lock:
                    found[title] = self._titles.setdefault(title, vec)
        return {t: found[t] for t in titles}

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
