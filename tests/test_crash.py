"""Crashes: an ingest killed or failing at any moment never damages the index it was replacing."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from qa.errors import IndexLockedError, IndexWriteError
from qa.ingest import IngestSettings, ingest
from qa.store import IndexStore, current_generation, generations, write_lock

from conftest import FakeEmbedder
from corpora import Snapshot, build_index, snapshot
from faultkit import kill_loop, kill_mid_parse

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SERIAL = IngestSettings(workers=0)


def test_random_kills_never_damage_the_index(tmp_path: Path) -> None:
    """SIGKILL an ingest 18 times at random moments: the index always loads and equals a clean build."""
    figures = kill_loop(tmp_path, kills=18, seed=11, n_docs=12)
    assert figures.kills == 18
    assert figures.before_switch + figures.after_switch == 18
    assert figures.final_equal


def test_random_kills_with_reader_processes(tmp_path: Path) -> None:
    """The same with two reader processes per ingest: the index survives and no reader outlives a kill."""
    figures = kill_loop(tmp_path, kills=6, seed=5, n_docs=8, workers=2)
    assert figures.kills == 6 and figures.workers == 2
    assert figures.orphans == 0
    assert figures.final_equal


class Boom(RuntimeError):
    pass


class FailingEmbedder(FakeEmbedder):
    """Raises on the n-th call to ``embed``."""

    def __init__(self, fail_on: int) -> None:
        super().__init__()
        self.fail_on = fail_on

    def embed(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        if self.calls + 1 == self.fail_on:
            self.calls += 1
            raise Boom("model failed half-way")
        return super().embed(texts, batch_size=batch_size, progress=progress)


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, Path, Snapshot]:
    corpus, index = build_index(tmp_path, n_docs=6)
    (corpus / "notes-03-caseloads.md").write_text("# New notes\n\nA change to re-embed.\n", encoding="utf-8")
    return corpus, index, snapshot(index)


@pytest.mark.parametrize("error", [Boom, KeyboardInterrupt])
def test_failure_while_embedding_leaves_the_index_as_it_was(built: tuple[Path, Path, Snapshot], error: type,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    corpus, index, before = built
    embedder = FailingEmbedder(fail_on=1)
    if error is KeyboardInterrupt:
        def interrupt(*args: object, **kwargs: object) -> None:
            raise KeyboardInterrupt

        monkeypatch.setattr(embedder, "embed", interrupt)
    with pytest.raises(error):
        ingest(corpus, index, embedder, settings=SERIAL)
    assert snapshot(index) == before
    assert not list(index.glob("tmp-*"))  # the half-built generation was dropped
    with write_lock(index):  # and the lock was released
        pass


def test_failure_between_rename_and_switch(built: tuple[Path, Path, Snapshot], monkeypatch: pytest.MonkeyPatch) -> None:
    """The new generation is in place but CURRENT was never switched: readers see the old one."""
    corpus, index, before = built
    import qa.store

    real_replace = os.replace

    def failing_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if str(dst).endswith("CURRENT"):
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(qa.store.os, "replace", failing_replace)
    old = current_generation(index)
    with pytest.raises(IndexWriteError, match="No space.*free some disk space.*unchanged"):
        ingest(corpus, index, FakeEmbedder(), settings=SERIAL)
    monkeypatch.setattr(qa.store.os, "replace", real_replace)
    assert current_generation(index) == old and snapshot(index) == before
    assert len(generations(index)) == 2  # the orphan, never used
    ingest(corpus, index, FakeEmbedder(), settings=SERIAL)
    names = generations(index)
    assert names[0] == old and len(names) == 2  # the orphan is gone, the old one kept as previous
    assert "A change to re-embed" in IndexStore(index).pages("notes-03-caseloads.md")[0].text


def test_failure_while_writing_vectors(built: tuple[Path, Path, Snapshot], monkeypatch: pytest.MonkeyPatch) -> None:
    corpus, index, before = built
    import qa.store

    def full_disk(*args: object) -> None:
        raise RuntimeError("Error in faiss::FileIOWriter: No space left on device")

    monkeypatch.setattr(qa.store.faiss, "write_index", full_disk)
    with pytest.raises(IndexWriteError, match="No space.*free some disk space"):
        ingest(corpus, index, FakeEmbedder(), settings=SERIAL)
    assert snapshot(index) == before and not list(index.glob("tmp-*"))


def test_a_killed_writer_releases_the_lock(tmp_path: Path) -> None:
    """The lock is an flock: the kernel drops it when the holder dies, so no stale lock remains."""
    import subprocess

    index = tmp_path / "index"
    index.mkdir()
    script = ("import sys, time; sys.path.insert(0, '.')\n"
              "from pathlib import Path\nfrom qa.store import write_lock\n"
              "with write_lock(Path(sys.argv[1])):\n    print('locked', flush=True)\n    time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", script, str(index)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        with pytest.raises(IndexLockedError, match=f"pid {proc.pid}"):
            with write_lock(index):
                pass
    finally:
        proc.kill()
        proc.wait()
    with write_lock(index):
        pass


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to list a process's children")
def test_kill_mid_parse_leaves_no_process_behind(tmp_path: Path) -> None:
    """SIGKILL of an ingest while reader processes parse: they and the resource tracker go too,
    and the ingest's stdout reaches end of file (so `qa ingest | tee` ends)."""
    killed = kill_mid_parse(tmp_path)
    assert killed.readers, "no reader process is running"
    assert killed.running, "the ingest finished before it could be killed"
    assert not killed.left, killed.left
    assert killed.eof  # end of file: no one holds the pipe any more
