"""Retrieval quality on a question file: recall@k, MRR@10 and how well ``found`` is judged.

Question file: JSON Lines, ``{"id", "question", "gold": [{"doc", "pages", "contains"}]}``.
An empty ``gold`` means the corpus cannot answer the question. A passage is a
hit when it is from that document, on one of those (physical, 1-based) pages
and contains the phrase, whitespace and case folded.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .clean import normalise
from .errors import DocumentError, QAError
from .records import Answer, Chunk, Citation, DocMeta, Document, Passage

log = logging.getLogger(__name__)

ASK_K = 10  # passages asked per question; recall is judged at 1, 5 and 10

_WS = re.compile(r"\s+")


@dataclass(frozen=True)
class Gold:
    doc: str
    pages: tuple[int, ...]
    contains: str


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    gold: tuple[Gold, ...]

    @property
    def answerable(self) -> bool:
        return bool(self.gold)


@dataclass(frozen=True)
class Scores:
    """Metrics of one configuration over one question set."""

    recall_at_1: float
    recall_at_5: float
    recall_at_10: float
    mrr_at_10: float
    found_answerable: float
    flagged_unanswerable: float
    missed: tuple[str, ...]
    wrongly_found: tuple[str, ...]
    answerable: int
    unanswerable: int
    seconds: float = 0.0

    def as_json(self) -> dict[str, object]:
        return {
            "recall@1": round(self.recall_at_1, 4), "recall@5": round(self.recall_at_5, 4),
            "recall@10": round(self.recall_at_10, 4), "mrr@10": round(self.mrr_at_10, 4),
            "found_answerable": round(self.found_answerable, 4),
            "flagged_unanswerable": round(self.flagged_unanswerable, 4),
            "missed": list(self.missed), "wrongly_found": list(self.wrongly_found),
            "answerable": self.answerable, "unanswerable": self.unanswerable,
        }


def fold(text: str) -> str:
    """Text as compared by the judge: normalised like the index, whitespace and case folded."""
    return _WS.sub(" ", normalise(text)).strip().lower()


def load_questions(path: Path) -> list[Question]:
    """Read a question file; a malformed line names its number and the fix."""
    questions: list[Question] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise QAError(f"cannot read question file {path}: {exc.strerror or exc}") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if not isinstance(data, dict):
                raise TypeError(f"a JSON {type(data).__name__}, not an object")
            gold = tuple(
                Gold(doc=str(g["doc"]), pages=tuple(int(p) for p in g["pages"]), contains=str(g["contains"]))
                for g in data.get("gold", [])
            )
            questions.append(Question(id=str(data["id"]), question=str(data["question"]), gold=gold))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise QAError(
                f"{path}, line {number}: not a question object ({exc}); expected "
                '{"id", "question", "gold": [{"doc", "pages", "contains"}]}'
            ) from exc
    return questions


def is_hit(passage: Passage, gold: Sequence[Gold]) -> bool:
    """Whether a retrieved passage answers by the gold's document, page and phrase."""
    text = fold(passage.chunk.text)
    return any(
        passage.chunk.doc_id == g.doc and passage.chunk.page in g.pages and fold(g.contains) in text for g in gold
    )


def first_hit(passages: Sequence[Passage], gold: Sequence[Gold]) -> int | None:
    """1-based rank of the first hit, or None."""
    for i, passage in enumerate(passages, start=1):
        if is_hit(passage, gold):
            return i
    return None


def score(questions: Sequence[Question], answers: Sequence[Answer], seconds: float = 0.0) -> Scores:
    """Metrics from answers given in the same order as the questions (10 passages each)."""
    answerable = [(q, a) for q, a in zip(questions, answers) if q.answerable]
    unanswerable = [(q, a) for q, a in zip(questions, answers) if not q.answerable]
    ranks = [first_hit(a.passages, q.gold) for q, a in answerable]
    n = max(1, len(answerable))

    def recall(k: int) -> float:
        return sum(1 for r in ranks if r is not None and r <= k) / n

    mrr = sum(1.0 / r for r in ranks if r is not None and r <= 10) / n
    missed = tuple(q.id for (q, _), r in zip(answerable, ranks) if r is None or r > 5)
    wrongly = tuple(q.id for q, a in unanswerable if a.found)
    return Scores(
        recall_at_1=recall(1), recall_at_5=recall(5), recall_at_10=recall(10), mrr_at_10=mrr,
        found_answerable=sum(1 for _, a in answerable if a.found) / n,
        flagged_unanswerable=(sum(1 for _, a in unanswerable if not a.found) / len(unanswerable)) if unanswerable else 1.0,
        missed=missed, wrongly_found=wrongly, answerable=len(answerable), unanswerable=len(unanswerable),
        seconds=seconds,
    )


def evaluate(questions: Sequence[Question], ask: Callable[[str], Answer]) -> Scores:
    """Ask every question (10 passages each) and score the answers."""
    started = time.perf_counter()
    answers = [ask(q.question) for q in questions]
    return score(questions, answers, time.perf_counter() - started)


def format_table(results: dict[str, Scores]) -> str:
    """A plain-text table of configurations and their metrics."""
    header = f"{'config':<10} {'R@1':>6} {'R@5':>6} {'R@10':>6} {'MRR@10':>7} {'found':>6} {'flagged':>8}"
    rows = [header, "-" * len(header)]
    for name, s in results.items():
        rows.append(
            f"{name:<10} {s.recall_at_1:6.3f} {s.recall_at_5:6.3f} {s.recall_at_10:6.3f} {s.mrr_at_10:7.3f} "
            f"{s.found_answerable:6.3f} {s.flagged_unanswerable:8.3f}"
        )
    for name, s in results.items():
        if s.missed:
            rows.append(f"{name}: missed in top 5: {', '.join(s.missed)}")
        if s.wrongly_found:
            rows.append(f"{name}: answered though unanswerable: {', '.join(s.wrongly_found)}")
    return "\n".join(rows)


# --- the common baseline ---------------------------------------------------------------------

class Baseline:
    """The common way, for comparison: pypdf text per page, split into 1000-character pieces
    with 200 characters of overlap (RecursiveCharacterTextSplitter), the same model, a flat
    FAISS index, dense search only, no cleaning, no widening and no abstention.
    """

    CHUNK_CHARS = 1000
    OVERLAP_CHARS = 200

    def __init__(self, corpus_dir: Path, embedder: object, *, batch_size: int = 32) -> None:
        import faiss
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        from .ingest import discover

        if not corpus_dir.is_dir():
            raise QAError(f"the corpus folder {corpus_dir} the index was built from is gone; "
                          "--compare needs it to build the baseline (re-ingest from where the corpus now is)")
        self.embedder = embedder
        splitter = RecursiveCharacterTextSplitter(chunk_size=self.CHUNK_CHARS, chunk_overlap=self.OVERLAP_CHARS)
        self.chunks: list[Chunk] = []
        self.documents: dict[str, Document] = {}
        files, _ = discover(corpus_dir)
        for path, rel in files:
            try:
                pages = _plain_pages(path, rel)
            except DocumentError as exc:
                log.info("baseline skips %s", exc)
                continue
            kind = "pdf" if path.suffix.lower() == ".pdf" else "txt"
            self.documents[rel] = Document(rel, DocMeta(title=Path(rel).name), "", kind, len(pages))
            for number, text in enumerate(pages, start=1):
                cursor = 0
                for piece in splitter.split_text(text):
                    start = max(0, text.find(piece, cursor))
                    cursor = start + 1
                    self.chunks.append(Chunk(rel, number, str(number), "", start, start + len(piece), piece))
        vectors = embedder.embed([c.text for c in self.chunks], batch_size=batch_size)  # type: ignore[attr-defined]
        self.index = faiss.IndexFlatIP(int(vectors.shape[1]) if len(vectors) else 1)
        if len(vectors):
            self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))

    def ask(self, question: str, top_k: int = ASK_K) -> Answer:
        """The ``top_k`` nearest pieces; always 'found', as the common way has no abstention."""
        if not self.chunks:
            return Answer(question, question, False, (), ())
        vec = self.embedder.embed([question])  # type: ignore[attr-defined]
        scores, ids = self.index.search(np.ascontiguousarray(vec, dtype=np.float32), min(top_k, len(self.chunks)))
        passages = []
        for rank, (cid, s) in enumerate(zip(ids[0], scores[0]), start=1):
            if cid < 0:
                continue
            chunk = self.chunks[int(cid)]
            passages.append(Passage(rank, int(cid), chunk, self.documents[chunk.doc_id], float(s), float(s), 0.0,
                                    Citation("", "")))
        return Answer(question, question, bool(passages), (), tuple(passages))


def _plain_pages(path: Path, rel: str) -> list[str]:
    """Raw text per page: pypdf's extraction for a PDF, the whole file for text."""
    if path.suffix.lower() != ".pdf":
        from .readers import decode_text

        return [decode_text(path.read_bytes(), rel)]
    import pypdf

    try:
        reader = pypdf.PdfReader(str(path), strict=False)
        return [page.extract_text() or "" for page in reader.pages]
    except Exception as exc:  # noqa: BLE001 - a file pypdf cannot read is left out of the baseline
        raise DocumentError(rel, f"pypdf cannot read it ({exc})") from exc


# --- the `qa eval` command -------------------------------------------------------------------

def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``qa eval``."""
    parser.add_argument("questions", type=Path, help="JSON Lines question file")
    parser.add_argument("--index", default=None, help="index folder (default: $QA_INDEX_DIR or index/)")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    parser.add_argument("--compare", action="store_true",
                        help="also measure lexical-only, dense-only and the common baseline "
                             "(pypdf pages, 1000/200-character splits, dense only; built from the index's corpus)")


def run(args: argparse.Namespace) -> int:
    """``qa eval``: score the index (and with --compare the alternatives) on a question file."""
    from .engine import Engine

    questions = load_questions(Path(args.questions))
    if not questions:
        raise QAError(f"{args.questions} holds no questions")
    engine = Engine(args.index)
    results = compare(engine, questions, with_others=bool(args.compare))
    if args.json:
        print(json.dumps({"configs": {name: s.as_json() for name, s in results.items()}}, indent=2))
    else:
        print(format_table(results))
    return 0


def compare(engine: object, questions: Sequence[Question], *, with_others: bool = False) -> dict[str, Scores]:
    """Scores of the engine's hybrid search, and with ``with_others`` of lexical, dense and the baseline."""
    from .engine import Engine

    assert isinstance(engine, Engine)
    results: dict[str, Scores] = {}
    modes = ("hybrid", "lexical", "dense") if with_others else ("hybrid",)
    for mode in modes:
        settings = replace(engine.settings, mode=mode)
        runner = Engine(engine.index_dir, embedder=engine.embedder, settings=settings)
        log.info("asking %d questions (%s)", len(questions), mode)
        results[mode] = evaluate(questions, lambda q, r=runner: r.ask(q, top_k=ASK_K))
    if with_others:
        corpus = Path(engine.store.manifest.corpus_dir)
        log.info("building the baseline from %s (embeds the corpus again)", corpus)
        baseline = Baseline(corpus, engine.embedder)
        results["baseline"] = evaluate(questions, lambda q: baseline.ask(q, ASK_K))
    return results
