"""Retrieval quality on a question file: recall@k, MRR@10 and how well ``found`` is judged.

Question file: JSON Lines, ``{"id", "question", "gold": [{"doc", "pages", "contains"}]}``.
An empty ``gold`` means the corpus cannot answer the question. A passage is a
hit when it is from that document, on one of those (physical, 1-based) pages
and contains the phrase, whitespace and case folded.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .clean import normalise
from .errors import QAError
from .records import Answer, Passage

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
            gold = tuple(
                Gold(doc=str(g["doc"]), pages=tuple(int(p) for p in g["pages"]), contains=str(g["contains"]))
                for g in data.get("gold", [])
            )
            questions.append(Question(id=str(data["id"]), question=str(data["question"]), gold=gold))
        except (ValueError, KeyError, TypeError) as exc:
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
