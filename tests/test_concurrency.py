"""Concurrency: one writer at a time, readers undisturbed by ingests, many threads on one engine."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest

from qa.engine import Engine
from qa.errors import IndexLockedError, IndexMissingError
from qa.ingest import IngestSettings, ingest
from qa.store import IndexStore, current_generation, generations, write_lock

from conftest import FakeEmbedder, make_pdf
from corpora import QUESTIONS, build_index, snapshot
from faultkit import signature

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

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
    assert old.chunks([0, 1]) == first_chunks  # an open connection still reads it
    gone = from_new_thread()
    assert isinstance(gone, IndexMissingError) and "Engine.refresh" in str(gone)


T = TypeVar("T")


def _try(call: Callable[[], T]) -> T | Exception:
    try:
        return call()
    except Exception as exc:  # returned for the assertion
        return exc


def test_many_threads_get_single_threaded_answers(built: tuple[Path, Path]) -> None:
    """Eight threads each ask one engine every question five times: no errors, every answer as single-threaded."""
    _, index = built
    engine = Engine(index, embedder=FakeEmbedder())

    def answer(question: str) -> tuple:
        return signature(engine.ask(question))  # found, passages with their spans and scores, sentences

    expected = {q: answer(q) for q in QUESTIONS}
    start = threading.Barrier(8)
    got: list[tuple[str, tuple]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(worker: int) -> None:
        start.wait()
        for question in [q for _ in range(5) for q in QUESTIONS[worker % len(QUESTIONS):] + QUESTIONS[:worker % len(QUESTIONS)]]:
            try:
                result = answer(question)
            except BaseException as exc:  # every failure is counted; none stops the others
                with lock:
                    errors.append(exc)
                continue
            with lock:
                got.append((question, result))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(got) == 8 * 5 * len(QUESTIONS)
    assert all(result == expected[question] for question, result in got)
