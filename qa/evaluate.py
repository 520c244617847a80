"""Quality on a question file: recall@k, MRR@10, whether the answer states the fact, and abstention.

Question file: JSON Lines, ``{"id", "question", "gold": [{"doc", "pages", "contains"}], "answer": [phrases]}``
(``answer`` optional). An empty ``gold`` means the corpus cannot answer the
question. A passage is a hit when it is from that document, on one of those
(physical, 1-based) pages, or any page when ``pages`` is empty, and contains
the phrase; an answer is right when its quoted sentences contain one of the
``answer`` phrases. Both sides are folded first: curly quotes straightened,
whitespace collapsed, lower case.

Conversation file: ``{"id", "turns": [{"question", "gold", "answer", "follow_up"?}, ...]}``. The
second turn is asked after the first with the first's answer as history; it
must be merged when it is a follow-up and left alone otherwise, and scored like
a question (an empty gold: it must not be found).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from .clean import normalise
from .errors import DocumentError, QAError
from .records import Answer, Chunk, Citation, DocMeta, Document, Passage
from .settings import Settings
from .text import fold as fold_text

if TYPE_CHECKING:
    from .embed import Embedder
    from .engine import Engine

log = logging.getLogger(__name__)
T = TypeVar("T")

ASK_K = 10  # passages asked per question; recall is judged at 1, 5 and 10



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
    answers: tuple[str, ...] = ()  # phrases any of which a right answer quotes
    follow_up: bool | None = None  # for a conversation's later turn: must it be merged with the one before?

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
    answer_at: float = 0.0  # share of questions with answer phrases whose quoted answer states one
    answer_missed: tuple[str, ...] = ()
    with_answers: int = 0

    def as_json(self) -> dict[str, object]:
        return {
            "answer@": round(self.answer_at, 4), "answer_missed": list(self.answer_missed),
            "with_answers": self.with_answers,
            "recall@1": round(self.recall_at_1, 4), "recall@5": round(self.recall_at_5, 4),
            "recall@10": round(self.recall_at_10, 4), "mrr@10": round(self.mrr_at_10, 4),
            "found_answerable": round(self.found_answerable, 4),
            "flagged_unanswerable": round(self.flagged_unanswerable, 4),
            "missed": list(self.missed), "wrongly_found": list(self.wrongly_found),
            "answerable": self.answerable, "unanswerable": self.unanswerable,
        }


def fold(text: str) -> str:
    """Text as compared by the judge: normalised like the index, quotes, whitespace and case folded."""
    return fold_text(normalise(text))


def _json_lines(path: Path, kind: str, expected: str, parse: Callable[[dict], T]) -> list[T]:
    """Parse each non-blank line of a JSON Lines file with ``parse``.

    One reader for question and conversation files, so both name the file and the
    line of a malformed entry, and what was expected, the same way.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise QAError(f"cannot read {kind} file {path}: {exc.strerror or exc}") from exc
    out: list[T] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if not isinstance(data, dict):
                raise TypeError(f"a JSON {type(data).__name__}, not an object")
            out.append(parse(data))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise QAError(f"{path}, line {number}: not a {kind} object ({exc}); expected {expected}") from exc
    return out


def _gold(entries: Iterable[dict]) -> tuple[Gold, ...]:
    """The gold passages of a question or turn, from its ``gold`` list."""
    return tuple(Gold(doc=str(g["doc"]), pages=tuple(int(p) for p in g["pages"]), contains=str(g["contains"]))
                 for g in entries)


def load_questions(path: Path) -> list[Question]:
    """Read a question file; a malformed line names its number and the fix."""
    return _json_lines(path, "question", '{"id", "question", "gold": [{"doc", "pages", "contains"}]}',
                       lambda data: _question(data, _gold(data.get("gold", []))))


def _question(data: dict, gold: tuple[Gold, ...], qid: str | None = None) -> Question:
    answers = data.get("answer", [])
    if isinstance(answers, str):
        answers = [answers]
    follow = data.get("follow_up")
    return Question(id=qid or str(data["id"]), question=str(data["question"]), gold=gold,
                    answers=tuple(str(a) for a in answers), follow_up=None if follow is None else bool(follow))


@dataclass(frozen=True)
class Conversation:
    id: str
    turns: tuple[Question, ...]


def _conversation_follow_up(conv_id: str) -> bool | None:
    """The validation set's documented convention when a turn has no ``follow_up``: c-1 ... c-6 are follow-ups."""
    number = re.fullmatch(r"c-(\d+)", conv_id)
    return None if number is None else int(number.group(1)) <= 6


def load_conversations(path: Path) -> list[Conversation]:
    """Read a conversation file; a malformed line names its number and the fix."""
    return _json_lines(path, "conversation", '{"id", "turns": [{"question", "gold", "answer"}, ...]}', _conversation)


def _conversation(data: dict) -> Conversation:
    """A conversation from its parsed line; a later turn without ``follow_up`` takes the id's convention."""
    cid = str(data["id"])
    turns = []
    for i, turn in enumerate(data["turns"], start=1):
        q = _question({**turn, "id": f"{cid}/{i}"}, _gold(turn.get("gold", [])))
        if i > 1 and q.follow_up is None:
            q = replace(q, follow_up=_conversation_follow_up(cid))
        turns.append(q)
    return Conversation(cid, tuple(turns))


def is_conversation_file(path: Path) -> bool:
    """Whether a JSON Lines file holds conversations (objects with ``turns``) rather than questions."""
    try:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                data = json.loads(line)
                return isinstance(data, dict) and "turns" in data
    except (OSError, ValueError):
        return False
    return False


def states_answer(answer: Answer, phrases: Sequence[str]) -> bool:
    """Whether the quoted answer sentences contain one of the phrases (folded)."""
    if not answer.found or not phrases:
        return False
    quoted = " \n ".join(fold(s.text) for s in answer.sentences)
    return any(fold(p) in quoted for p in phrases)


def is_hit(passage: Passage, gold: Sequence[Gold]) -> bool:
    """Whether a retrieved passage answers by the gold's document, page and phrase."""
    text = fold(passage.chunk.text)
    return any(
        _same_doc(passage.chunk.doc_id, g.doc) and (not g.pages or passage.chunk.page in g.pages)
        and fold(g.contains) in text
        for g in gold
    )


def _same_doc(doc_id: str, gold_doc: str) -> bool:
    """A gold document names the file by its path under the corpus, or by its name alone."""
    return doc_id == gold_doc or (Path(doc_id).name == gold_doc and "/" not in gold_doc)


def first_hit(passages: Sequence[Passage], gold: Sequence[Gold]) -> int | None:
    """1-based rank of the first hit, or None."""
    for i, passage in enumerate(passages, start=1):
        if is_hit(passage, gold):
            return i
    return None


def score(questions: Sequence[Question], answers: Sequence[Answer], seconds: float = 0.0) -> Scores:
    """Metrics from answers given in the same order as the questions (10 passages each)."""
    answerable = [(q, a) for q, a in zip(questions, answers, strict=True) if q.answerable]
    unanswerable = [(q, a) for q, a in zip(questions, answers, strict=True) if not q.answerable]
    ranks = [first_hit(a.passages, q.gold) for q, a in answerable]
    n = max(1, len(answerable))

    def recall(k: int) -> float:
        return sum(1 for r in ranks if r is not None and r <= k) / n

    mrr = sum(1.0 / r for r in ranks if r is not None and r <= 10) / n
    missed = tuple(q.id for (q, _), r in zip(answerable, ranks, strict=True) if r is None or r > 5)
    wrongly = tuple(q.id for q, a in unanswerable if a.found)
    with_phrases = [(q, a) for q, a in answerable if q.answers]
    stated = [states_answer(a, q.answers) for q, a in with_phrases]
    return Scores(
        answer_at=(sum(stated) / len(with_phrases)) if with_phrases else 0.0,
        answer_missed=tuple(q.id for (q, _), ok in zip(with_phrases, stated, strict=True) if not ok),
        with_answers=len(with_phrases),
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
    header = (f"{'config':<10} {'R@1':>6} {'R@5':>6} {'R@10':>6} {'MRR@10':>7} {'answer@':>8} {'found':>6} "
              f"{'flagged':>8}")
    rows = [header, "-" * len(header)]
    for name, s in results.items():
        answer_at = f"{s.answer_at:8.3f}" if s.with_answers else f"{'-':>8}"
        rows.append(
            f"{name:<10} {s.recall_at_1:6.3f} {s.recall_at_5:6.3f} {s.recall_at_10:6.3f} {s.mrr_at_10:7.3f} "
            f"{answer_at} {s.found_answerable:6.3f} {s.flagged_unanswerable:8.3f}"
        )
    rows.append(f"(answerable {next(iter(results.values())).answerable}, unanswerable "
                f"{next(iter(results.values())).unanswerable})" if results else "")
    for name, s in results.items():
        if s.missed:
            rows.append(f"{name}: missed in top 5: {', '.join(s.missed)}")
        if s.wrongly_found:
            rows.append(f"{name}: answered though unanswerable: {', '.join(s.wrongly_found)}")
        if s.answer_missed and name == next(iter(results)):
            rows.append(f"{name}: answer does not state the fact: {', '.join(s.answer_missed)}")
    return "\n".join(rows)


# --- conversations -----------------------------------------------------------------------------

@dataclass(frozen=True)
class ConversationScores:
    """How later turns of conversations were handled."""

    follow_ups: int
    follow_ups_merged: int
    new_questions: int
    new_left_alone: int
    off_topic: int
    off_topic_not_found: int
    wrongly_merged: tuple[str, ...]
    not_merged: tuple[str, ...]
    turns: Scores  # the later turns scored like questions

    def as_json(self) -> dict[str, object]:
        return {
            "follow_ups_merged": f"{self.follow_ups_merged}/{self.follow_ups}",
            "new_left_alone": f"{self.new_left_alone}/{self.new_questions}",
            "off_topic_not_found": f"{self.off_topic_not_found}/{self.off_topic}",
            "wrongly_merged": list(self.wrongly_merged), "not_merged": list(self.not_merged),
            "turns": self.turns.as_json(),
        }


def evaluate_conversations(conversations: Sequence[Conversation],
                           ask: Callable[[str, Sequence[Answer]], Answer]) -> ConversationScores:
    """Ask each conversation's turns in order, each with the earlier answers as history."""
    started = time.perf_counter()
    later: list[tuple[Question, Answer]] = []
    for conv in conversations:
        history: list[Answer] = []
        for i, turn in enumerate(conv.turns):
            answer = ask(turn.question, tuple(history))
            history.append(answer)
            if i > 0:
                later.append((turn, answer))
    seconds = time.perf_counter() - started
    follow = [(q, a) for q, a in later if q.follow_up]
    new = [(q, a) for q, a in later if q.follow_up is False]
    off = [(q, a) for q, a in later if not q.answerable]
    return ConversationScores(
        follow_ups=len(follow), follow_ups_merged=sum(1 for _, a in follow if a.merged),
        new_questions=len(new), new_left_alone=sum(1 for _, a in new if not a.merged),
        off_topic=len(off), off_topic_not_found=sum(1 for _, a in off if not a.found),
        wrongly_merged=tuple(q.id for q, a in new if a.merged),
        not_merged=tuple(q.id for q, a in follow if not a.merged),
        turns=score([q for q, _ in later], [a for _, a in later], seconds),
    )


def format_conversations(c: ConversationScores) -> str:
    """Plain-text summary of conversation handling."""
    t = c.turns
    lines = [
        f"follow-ups merged {c.follow_ups_merged}/{c.follow_ups}, new questions left alone "
        f"{c.new_left_alone}/{c.new_questions}, off-topic not found {c.off_topic_not_found}/{c.off_topic}",
        f"later turns: R@5 {t.recall_at_5:.3f}  MRR@10 {t.mrr_at_10:.3f}  answer@ {t.answer_at:.3f}  "
        f"found {t.found_answerable:.3f}",
    ]
    if c.not_merged:
        lines.append(f"not merged: {', '.join(c.not_merged)}")
    if c.wrongly_merged:
        lines.append(f"merged though new: {', '.join(c.wrongly_merged)}")
    if t.answer_missed:
        lines.append(f"answer does not state the fact: {', '.join(t.answer_missed)}")
    return "\n".join(lines)


# --- the common baseline ---------------------------------------------------------------------

class Baseline:
    """The common way, for comparison: pypdf text per page, split into 1000-character pieces
    with 200 characters of overlap (RecursiveCharacterTextSplitter), the same model, a flat
    FAISS index, dense search only, no cleaning, no widening and no abstention.
    """

    CHUNK_CHARS = 1000
    OVERLAP_CHARS = 200

    def __init__(self, corpus_dir: Path, embedder: Embedder, *, batch_size: int = 32) -> None:
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
        vectors = embedder.embed([c.text for c in self.chunks], batch_size=batch_size)
        self.index = faiss.IndexFlatIP(int(vectors.shape[1]) if len(vectors) else 1)
        if len(vectors):
            self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))

    def ask(self, question: str, top_k: int = ASK_K) -> Answer:
        """The ``top_k`` nearest pieces; always 'found', as the common way has no abstention."""
        if not self.chunks:
            return Answer(question, question, False, (), ())
        vec = self.embedder.embed([question])
        scores, ids = self.index.search(np.ascontiguousarray(vec, dtype=np.float32), min(top_k, len(self.chunks)))
        passages = []
        for rank, (cid, s) in enumerate(zip(ids[0], scores[0], strict=True), start=1):
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
    except Exception as exc:  # any failure: a file pypdf cannot read is left out of the baseline
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


def run(args: argparse.Namespace, settings: Settings) -> int:
    """``qa eval``: score the index (and with --compare the alternatives) on a question file."""
    from .engine import Engine

    path = Path(args.questions)
    if is_conversation_file(path):
        conversations = load_conversations(path)
        engine = Engine(settings.index, embedder=getattr(args, "embedder", None))
        conv = evaluate_conversations(conversations, lambda q, h: engine.ask(q, top_k=ASK_K, history=h))
        if args.json:
            print(json.dumps({"conversations": conv.as_json()}, indent=2))
        else:
            print(format_conversations(conv))
        return 0
    questions = load_questions(path)
    if not questions:
        raise QAError(f"{args.questions} holds no questions")
    engine = Engine(settings.index, embedder=getattr(args, "embedder", None))
    results = compare(engine, questions, with_others=bool(args.compare))
    if args.json:
        print(json.dumps({"configs": {name: s.as_json() for name, s in results.items()}}, indent=2))
    else:
        print(format_table(results))
    return 0


def _ask_top(engine: Engine, question: str) -> Answer:
    """One question asked for the top ASK_K passages (what every configuration is scored on)."""
    return engine.ask(question, top_k=ASK_K)


def compare(engine: Engine, questions: Sequence[Question], *, with_others: bool = False,
            baseline: bool = True) -> dict[str, Scores]:
    """Scores of the engine's hybrid search, and with ``with_others`` of lexical, dense and (unless
    ``baseline`` is false: it embeds the whole corpus again) the common baseline."""
    from .engine import Engine

    assert isinstance(engine, Engine)
    results: dict[str, Scores] = {}
    modes = ("hybrid", "lexical", "dense") if with_others else ("hybrid",)
    for mode in modes:
        settings = replace(engine.settings, mode=mode)
        runner = Engine(engine.index_dir, embedder=engine.embedder, settings=settings)
        log.info("asking %d questions (%s)", len(questions), mode)
        results[mode] = evaluate(questions, partial(_ask_top, runner))
    if with_others and baseline:
        corpus = Path(engine.store.manifest.corpus_dir)
        log.info("building the baseline from %s (embeds the corpus again)", corpus)
        common = Baseline(corpus, engine.embedder)
        results["baseline"] = evaluate(questions, lambda q: common.ask(q, ASK_K))
    return results
