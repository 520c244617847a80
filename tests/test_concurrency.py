"""Concurrency: one writer at a time, readers undisturbed by ingests, many threads on one engine.

The tests of many threads on one engine make their own luck: the interpreter
switches threads every microsecond while they run (``rapid_switching``), and
every thread starts at one barrier, so a step that keeps one question's state on
a shared object is interrupted inside that step in every run, not one in three.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest

from qa.embed import Embedder
from qa.engine import Engine
from qa.errors import IndexLockedError, IndexMissingError
from qa.ingest import IngestSettings, ingest
from qa.store import IndexStore, current_generation, generations, write_lock

from conftest import FakeEmbedder, make_pdf
from corpora import QUESTIONS, build_index, snapshot
from faultkit import signature

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SERIAL = IngestSettings(workers=0)


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, Path]:
    return build_index(tmp_path, n_docs=8)


class GatedEmbedder(FakeEmbedder):
    """FakeEmbedder that, once inside ``embed``, waits until the test lets it go.

    The first writer then holds the lock for exactly as long as the test needs,
    however slow the machine, instead of for a fixed sleep a busy CI box can outlast.
    """

    def __init__(self) -> None:
        super().__init__()
        self.inside = threading.Event()
        self.release = threading.Event()

    def embed(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        self.inside.set()
        self.release.wait(timeout=120)
        return super().embed(texts, batch_size=batch_size, progress=progress)


def test_two_ingests_at_once_one_refuses(built: tuple[Path, Path], tmp_path: Path) -> None:
    corpus, index = built
    (corpus / "notes-03-caseloads.md").write_text("# Changed\n\nThe first writer changes this note.\n", encoding="utf-8")
    outcome: dict[str, object] = {}
    gated = GatedEmbedder()

    def first() -> None:
        try:
            outcome["first"] = ingest(corpus, index, gated, settings=SERIAL)
        except Exception as exc:  # reported through the assertion below
            outcome["first"] = exc

    writer = threading.Thread(target=first)
    writer.start()
    try:
        assert gated.inside.wait(timeout=120), "the first ingest never reached embedding"
        with pytest.raises(IndexLockedError) as info:
            ingest(corpus, index, FakeEmbedder(), settings=SERIAL)
    finally:
        gated.release.set()
        writer.join()
    message = str(info.value)
    assert "another ingest" in message and str(index) in message and "wait for it to finish" in message
    assert not isinstance(outcome["first"], Exception), outcome["first"]
    ingest(corpus, tmp_path / "clean", FakeEmbedder(), settings=SERIAL)
    assert snapshot(index) == snapshot(tmp_path / "clean")


def test_ingest_in_another_process_is_refused_while_locked(built: tuple[Path, Path]) -> None:
    corpus, index = built
    (corpus / "new.md").write_text("# New\n\nA new note waiting to be indexed.\n", encoding="utf-8")
    before = snapshot(index)
    worker = [sys.executable, str(ROOT / "tests" / "ingest_worker.py"), str(corpus), str(index)]
    with write_lock(index):
        refused = subprocess.run(worker, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert refused.returncode == 3
    assert "IndexLockedError" in refused.stdout and "wait for it to finish" in refused.stdout
    assert snapshot(index) == before
    done = subprocess.run(worker, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0 and "new.md" in IndexStore(index).documents


def test_engine_serves_during_ingest_and_refresh_switches(built: tuple[Path, Path]) -> None:
    corpus, index = built
    engine = Engine(index, embedder=FakeEmbedder())
    old_generation = engine.store.generation
    expected = {q: engine.ask(q) for q in QUESTIONS[:4]}
    errors: list[BaseException] = []
    asked = 0
    stop = threading.Event()

    def reader() -> None:
        nonlocal asked
        while not stop.is_set():
            for question, answer in expected.items():
                try:
                    got = engine.ask(question)
                    if engine.store.generation == old_generation:
                        assert [p.chunk_id for p in got.passages] == [p.chunk_id for p in answer.passages]
                    asked += 1
                except BaseException as exc:  # collected and asserted below
                    errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        make_pdf(corpus / "virtual-school.pdf", ["Virtual school heads tracked attainment of looked after pupils."])
        ingest(corpus, index, FakeEmbedder(), settings=SERIAL)
        assert current_generation(index) != old_generation
        assert engine.store.generation == old_generation  # still serving the generation it loaded
        assert engine.refresh() is True
        assert engine.store.generation == current_generation(index)
        assert engine.refresh() is False
        hit = engine.ask("virtual school heads attainment")
        assert hit.passages and hit.passages[0].chunk.doc_id == "virtual-school.pdf"
        time.sleep(0.2)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not errors, errors[:3]
    assert asked > 0


def test_a_reader_keeps_the_previous_generation_after_pruning(built: tuple[Path, Path]) -> None:
    corpus, index = built
    old = IndexStore(index)
    first_chunks = old.chunks([0, 1])
    (corpus / "one.md").write_text("# One\n\nFirst addition.\n", encoding="utf-8")
    ingest(corpus, index, FakeEmbedder(), settings=SERIAL)
    assert old.generation in generations(index)  # the previous generation is kept

    def from_new_thread() -> object:
        box: list[object] = []
        thread = threading.Thread(target=lambda: box.append(_try(lambda: old.chunks([0, 1]))))
        thread.start()
        thread.join()
        return box[0]

    assert from_new_thread() == first_chunks  # a fresh connection still opens the kept generation

    (corpus / "two.md").write_text("# Two\n\nSecond addition.\n", encoding="utf-8")
    ingest(corpus, index, FakeEmbedder(), settings=SERIAL)
    assert old.generation not in generations(index)  # two ingests later it is pruned
    assert old.chunks([0, 1]) == first_chunks  # an open connection (or the store's cache) still reads it

    def unread_from_new_thread() -> object:  # a chunk not read before, so not in the store's cache
        box: list[object] = []
        thread = threading.Thread(target=lambda: box.append(_try(lambda: old.chunks([2]))))
        thread.start()
        thread.join()
        return box[0]

    gone = unread_from_new_thread()
    assert isinstance(gone, IndexMissingError) and "Engine.refresh" in str(gone)


T = TypeVar("T")


def _try(call: Callable[[], T]) -> T | Exception:
    try:
        return call()
    except Exception as exc:  # returned for the assertion
        return exc


@contextlib.contextmanager
def rapid_switching(seconds: float = 1e-6) -> Iterator[None]:
    """Let the interpreter switch threads every ``seconds`` (normally every 5 ms) inside the block."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


Results = list[tuple[str, object]]


def at_once(n_threads: int, work: Callable[[int], Results], switch: float = 1e-6) -> tuple[Results, list[BaseException]]:
    """Run ``work(i)`` in ``n_threads`` threads released together; their results and errors, all collected."""
    start = threading.Barrier(n_threads)
    got: Results = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(worker: int) -> None:
        start.wait()
        try:
            result = work(worker)
        except BaseException as exc:  # every failure is counted; none stops the others
            with lock:
                errors.append(exc)
            return
        with lock:
            got.extend(result)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n_threads)]
    with rapid_switching(switch):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return got, errors


# Passages unlike each other in length, sentence count and sentence shape (abbreviations, numbers,
# lists, a quotation), so one passage's sentences never pass for another's.
PASSAGES = [
    "Kinship carers asked for training. They also wanted respite, e.g. a weekend away. Money mattered most.",
    ("Edge of care teams worked with 212 adolescents. Dr. Patel led the clinical work in No. 3 team. "
     "Outcomes were measured at 6 and 12 months. Fewer young people entered care. The effect held in "
     "two of the three areas. Costs fell by £1.2 million."),
    "Family group conferences came first:\n- a plan agreed by relatives;\n- a date for review;\n- a named lead.",
    ("“We finally had time to know the families,” one social worker said. Caseloads fell from 22 to 15. "
     "Was that enough? Most managers thought not."),
    ("Care leavers kept their personal adviser until 25 (see para. 4.2 for the rules). Staying put was "
     "offered to 80% of them. Take-up was lower in the north."),
    "Mockingbird constellations link a hub home with six to ten satellite families. Each hub carer offers sleepovers.",
    ("Youth workers met young people in the evenings; they worked in pairs. Referrals came from schools, "
     "the police and health. Exploitation was recorded in 41 cases. The pilot ran for 18 months. "
     "Workers said trust took weeks to build. Managers wanted it extended. The council agreed in 2019."),
    ("Savings were estimated at £4.60 for every £1 spent. The estimate is uncertain. It assumes shorter "
     "stays in care, i.e. fewer nights in residential homes."),
]


def test_sentences_split_alike_from_many_threads() -> None:
    """Eight threads cut eight different passages into units at once, many times: each as when cut alone."""
    from qa.text import split_spans, units

    expected = {text: (units(text), split_spans(text)) for text in PASSAGES}
    assert len({tuple(u.text for u in units_) for units_, _ in expected.values()}) == len(PASSAGES)

    def work(worker: int) -> Results:
        out: Results = []
        for round_ in range(40):
            text = PASSAGES[(worker + round_) % len(PASSAGES)]
            out.append((text, (units(text), split_spans(text))))
        return out

    got, errors = at_once(8, work)
    assert errors == []
    assert len(got) == 8 * 40
    wrong = [(text[:30], result) for text, result in got if result != expected[text]]
    assert wrong == [], f"{len(wrong)} of {len(got)} splits differ from the single-threaded ones, first: {wrong[:1]}"


def test_many_threads_get_single_threaded_answers(built: tuple[Path, Path]) -> None:
    """Eight threads each ask one engine every question five times: no errors, every answer as single-threaded."""
    _, index = built
    engine = Engine(index, embedder=FakeEmbedder())

    def answer(question: str) -> tuple:
        return signature(engine.ask(question))  # found, passages with their spans and scores, sentences

    expected = {q: answer(q) for q in QUESTIONS}
    assert sum(bool(sentences) for _, _, sentences in expected.values()) >= 4  # quoted answers to compare

    def work(worker: int) -> Results:
        turn = QUESTIONS[worker % len(QUESTIONS):] + QUESTIONS[:worker % len(QUESTIONS)]
        return [(question, answer(question)) for _ in range(5) for question in turn]

    got, errors = at_once(8, work)
    assert errors == []
    assert len(got) == 8 * 5 * len(QUESTIONS)
    wrong = [question for question, result in got if result != expected[question]]
    assert wrong == [], f"{len(wrong)} of {len(got)} answers differ from the single-threaded ones"


@pytest.mark.model
def test_real_model_answers_alike_from_many_threads(sample_index: tuple[Path, Path], real_embedder: Embedder) -> None:
    """Six threads ask a fresh engine with a freshly loaded model at once: every answer as when asked alone.

    The model loads, and its tokenizer takes its settings, while the threads
    are already asking, and the title vectors are embedded under that load.
    """
    from qa.embed import load_embedder

    _, index = sample_index
    rows = [json.loads(line) for line in (ROOT / "tests" / "data" / "sample_questions.jsonl").read_text().splitlines()]
    questions = [row["question"] for row in rows if row.get("question")][:6]
    alone = Engine(index, embedder=real_embedder)
    expected = {q: signature(alone.ask(q)) for q in questions}
    assert sum(bool(sentences) for _, _, sentences in expected.values()) >= 3  # quoted answers to compare
    engine = Engine(index, embedder=load_embedder())

    def work(worker: int) -> Results:
        turn = questions[worker:] + questions[:worker]
        return [(question, signature(engine.ask(question))) for question in turn]

    got, errors = at_once(6, work, switch=1e-4)
    assert errors == []
    assert len(got) == 6 * len(questions)
    wrong = [question for question, result in got if result != expected[question]]
    assert wrong == [], f"{len(wrong)} of {len(got)} answers differ from those asked alone: {sorted(set(wrong))}"
