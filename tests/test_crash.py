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
from corpora import Snapshot, build_index, load_reliability, snapshot

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SERIAL = IngestSettings(workers=0)


def test_random_kills_never_damage_the_index(tmp_path: Path) -> None:
    """SIGKILL an ingest 18 times at random moments: the index always loads and equals a clean build."""
    reliability = load_reliability()
    figures = reliability.kill_loop(tmp_path, kills=18, seed=11, n_docs=12)
    assert figures.kills == 18
    assert figures.before_switch + figures.after_switch == 18
    assert figures.final_equal


def test_random_kills_with_reader_processes(tmp_path: Path) -> None:
    """The same with two reader processes per ingest: the index survives and no reader outlives a kill."""
    reliability = load_reliability()
    figures = reliability.kill_loop(tmp_path, kills=6, seed=5, n_docs=8, workers=2)
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


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for a reaper (an orphan's zombie is already dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to list a process's children")
def test_kill_mid_parse_leaves_no_process_behind(tmp_path: Path) -> None:
    """SIGKILL of an ingest while reader processes parse: they and the resource tracker go too,
    and the ingest's stdout reaches end of file (so `qa ingest | tee` ends)."""
    import select
    import signal
    import subprocess
    import time

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "small.md").write_text("# Small\n\nKinship carers asked for respite.\n", encoding="utf-8")
    (corpus / "slow.md").write_text("a" * 10_000_000, encoding="utf-8")  # keeps a reader busy for half a minute or more
    worker = ROOT / "tests" / "ingest_worker.py"
    proc = subprocess.Popen([sys.executable, str(worker), str(corpus), str(tmp_path / "index"), "--workers", "2", "--progress"],
                            stdout=subprocess.PIPE, cwd=ROOT)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        # The small file is embedded once a reader has parsed it; both readers were ready
        # by then, so the other is reading slow.md.
        assert proc.stdout.readline().startswith(b"progress")
        time.sleep(0.5)
        assert [c for c in _children(proc.pid) if "spawn_main" in _cmdline(c)], "no reader process is running"
        family = _children(proc.pid)
        assert proc.poll() is None, "the ingest finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        left = family
        for _ in range(100):  # they die with their parent; allow the kernel a moment (far less than slow.md takes)
            left = [pid for pid in family if _alive(pid)]
            if not left:
                break
            time.sleep(0.1)
        assert not left, [(pid, _cmdline(pid)) for pid in left]
        ready, _, _ = select.select([proc.stdout], [], [], 10)
        assert ready and proc.stdout.read() == b""  # end of file: no one holds the pipe any more
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
