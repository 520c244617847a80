"""Reliability figures: hostile inputs, ingests killed at random moments, and a load test.

    .venv/bin/python tools/reliability.py [--kills 40] [--seconds 60] [--threads 8] [--model bundled|fake]

Rewrites ``docs/reliability.md`` with

* the hostile-input table: every case in ``tests/hostile.py``, ingested, and what happened;
* the kill loop: an ingest in a child process is killed with SIGKILL after a random
  delay, again and again; after every kill the index must load, hold exactly a
  clean build of one of the two corpus states, and answer as that build does;
  at the end an ingest runs to completion and must equal a clean build;
* the load test: threads ask questions of one shared ``Engine`` for a fixed time;
  every answer must equal the single-threaded one; latency percentiles.

The kill loop uses the hashing test embedder (crash safety is about the files,
not the model); the load test uses the bundled model unless ``--model fake``.
``tests/test_crash.py`` and ``tests/test_concurrency.py`` run the same loops, shorter.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
for entry in (str(ROOT), str(TESTS)):
    if entry not in sys.path:
        sys.path.insert(0, entry)

from qa.embed import Embedder  # noqa: E402
from qa.engine import Engine  # noqa: E402
from qa.ingest import IngestSettings, ingest  # noqa: E402
from qa.readers import RawDocument  # noqa: E402
from qa.records import Answer, Skipped  # noqa: E402
from qa.store import IndexStore, current_generation, generations  # noqa: E402

from conftest import FakeEmbedder  # noqa: E402
from corpora import QUESTIONS, Snapshot, build_corpus, npz_declaring, snapshot  # noqa: E402

WORKER = TESTS / "ingest_worker.py"
DOC = ROOT / "docs" / "reliability.md"


class ReliabilityFailure(AssertionError):
    """A reliability guarantee did not hold; the message says which and when."""


def signature(answer: Answer) -> tuple:
    """What must not change between runs: found, passages (ids, spans, scores) and sentences."""
    return (
        answer.found,
        tuple((p.chunk_id, p.chunk.doc_id, p.chunk.page, p.chunk.start, p.chunk.end, p.score) for p in answer.passages),
        tuple(s.text for s in answer.sentences),
    )


def answers(index: Path, embedder: Embedder, questions: Sequence[str]) -> list[tuple]:
    engine = Engine(index, embedder=embedder)
    try:
        return [signature(engine.ask(q)) for q in questions]
    finally:
        engine.store.close()


# --- the kill loop ------------------------------------------------------------------------


@dataclass
class KillFigures:
    kills: int = 0
    before_switch: int = 0  # the index was still the previous build
    after_switch: int = 0  # the new build had become current before the kill
    leftovers: int = 0  # kills that left a temporary folder or an unused generation behind
    workers: int = 0  # reader processes per ingest (0: parsed in the ingest's own process)
    orphans: int = 0  # processes of a killed ingest still running after it died
    ready_seconds: list[float] = field(default_factory=list)
    run_seconds: float = 0.0
    final_equal: bool = False
    seconds: float = 0.0


def _set_state(corpus: Path, state: str) -> None:
    """Two corpus states: B changes one note and adds one report."""
    note = corpus / "notes-03-caseloads.md"
    extra = corpus / "zz-extra-report.md"
    if state == "A":
        note.write_text("# Notes on caseloads\n\nSocial workers had smaller caseloads and more direct work.\n", encoding="utf-8")
        extra.unlink(missing_ok=True)
    else:
        note.write_text("# Revised caseload notes\n\nWorkload weighting tools were piloted by team managers.\n", encoding="utf-8")
        extra.write_text("# Extra report\n\nVirtual school heads tracked the attainment of children in care.\n", encoding="utf-8")


def _spawn(corpus: Path, index: Path, rebuild: bool, workers: int = 0) -> tuple[subprocess.Popen, float]:
    args = [sys.executable, str(WORKER), str(corpus), str(index), "--workers", str(workers)] + (["--rebuild"] if rebuild else [])
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        proc.wait()
        raise ReliabilityFailure(f"ingest worker did not start: {line!r}")
    return proc, time.perf_counter()


def kill_loop(work: Path, kills: int = 20, seed: int = 7, n_docs: int = 16,
              log: Callable[[str], None] = lambda _: None, workers: int = 0) -> KillFigures:
    """SIGKILL ingests at random moments; raise ``ReliabilityFailure`` when a guarantee breaks.

    With ``workers`` > 0 each ingest parses in that many reader processes, and
    every process of a killed ingest must be gone shortly after it.
    """
    started = time.perf_counter()
    rng = random.Random(seed)
    figures = KillFigures(workers=workers)
    corpus = build_corpus(work / "corpus", n_docs=n_docs)
    questions = QUESTIONS[:6]
    references: dict[str, tuple[Snapshot, list[tuple]]] = {}
    for state in ("A", "B"):
        _set_state(corpus, state)
        clean = work / f"clean-{state}"
        ingest(corpus, clean, FakeEmbedder(), settings=IngestSettings(workers=0))
        references[state] = (snapshot(clean), answers(clean, FakeEmbedder(), questions))
    index = work / "index"
    _set_state(corpus, "A")
    ingest(corpus, index, FakeEmbedder(), settings=IngestSettings(workers=0))

    def state_of(snap: Snapshot) -> str:
        for state, (reference, _) in references.items():
            if snap == reference:
                return state
        raise ReliabilityFailure("the index equals neither corpus state's clean build")

    # How long an uninterrupted child ingest takes once its imports are done.
    timing = work / "timing"
    shutil.copytree(index, timing)
    _set_state(corpus, "B")
    proc, ready = _spawn(corpus, timing, rebuild=False, workers=workers)
    proc.wait()
    figures.run_seconds = time.perf_counter() - ready
    shutil.rmtree(timing)

    state = "A"
    for i in range(kills):
        target = "B" if state == "A" else "A"
        _set_state(corpus, target)
        rebuild = i % 3 == 2
        before = current_generation(index)
        proc, ready = _spawn(corpus, index, rebuild, workers)
        delay = rng.uniform(0, figures.run_seconds * 1.1)
        time.sleep(delay)
        family = _children(proc.pid) if workers else []
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        for _ in range(100):  # readers die with the ingest; give the kernel a moment
            family = [pid for pid in family if _alive(pid)]
            if not family:
                break
            time.sleep(0.1)
        if family:
            figures.orphans += len(family)
            for pid in family:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            raise ReliabilityFailure(f"kill {i + 1} after {delay:.3f}s left {len(family)} process(es) running")
        figures.kills += 1
        figures.ready_seconds.append(delay)
        try:
            snap = snapshot(index)
        except Exception as exc:  # any failure to load is the finding
            raise ReliabilityFailure(f"kill {i + 1} after {delay:.3f}s left an index that does not load: {exc!r}") from exc
        state = state_of(snap)
        if current_generation(index) == before:
            figures.before_switch += 1
        else:
            figures.after_switch += 1
        if any(index.glob("tmp-*")) or any(index.glob("CURRENT.tmp-*")) or len(generations(index)) > 2:
            figures.leftovers += 1
        got = answers(index, FakeEmbedder(), questions)
        if got != references[state][1]:
            raise ReliabilityFailure(f"kill {i + 1} after {delay:.3f}s: answers differ from the clean build of state {state}")
        log(f"kill {i + 1:3d}/{kills} after {delay * 1000:6.1f} ms ({'rebuild' if rebuild else 'update '}): "
            f"index holds state {state}, {'unchanged' if current_generation(index) == before else 'switched'}")

    final = "B" if state == "A" else "A"
    _set_state(corpus, final)
    proc, _ = _spawn(corpus, index, rebuild=False, workers=workers)
    out, _ = proc.communicate(timeout=300)
    if proc.returncode != 0 or not out.strip().startswith("done"):
        raise ReliabilityFailure(f"the ingest after the kills did not complete: {out!r}")
    if snapshot(index) != references[final][0]:
        raise ReliabilityFailure("the ingest after the kills differs from a clean build")
    if any(index.glob("tmp-*")) or len(generations(index)) > 2:
        raise ReliabilityFailure("the ingest after the kills left temporary files or extra generations")
    figures.final_equal = True
    figures.seconds = time.perf_counter() - started
    return figures


# --- the load test ------------------------------------------------------------------------


@dataclass
class LoadFigures:
    threads: int
    seconds: float
    asks: int
    errors: list[str]
    mismatches: int
    latencies: list[float]
    single: list[float] = field(default_factory=list)  # one question at a time, before the threads start

    def percentile(self, p: float, values: Sequence[float] | None = None) -> float:
        ordered = sorted(self.latencies if values is None else values)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def load_test(engine: Engine, questions: Sequence[str], threads: int = 8, seconds: float = 10.0) -> LoadFigures:
    """Many threads ask one engine for ``seconds``; every answer must match the single-threaded one."""
    reference: dict[str, tuple] = {}
    single: list[float] = []
    for question in questions:
        began = time.perf_counter()
        reference[question] = signature(engine.ask(question))
        single.append(time.perf_counter() - began)
    deadline = time.perf_counter() + seconds
    lock = threading.Lock()
    errors: list[str] = []
    latencies: list[float] = []
    mismatches = 0
    start_line = threading.Barrier(threads)

    def run(worker: int) -> None:
        nonlocal mismatches
        rng = random.Random(worker)
        start_line.wait()
        mine: list[float] = []
        bad = 0
        while time.perf_counter() < deadline:
            question = rng.choice(questions)
            began = time.perf_counter()
            try:
                got = signature(engine.ask(question))
            except Exception as exc:  # every failure is counted, none stops the test
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")
                continue
            mine.append(time.perf_counter() - began)
            if got != reference[question]:
                bad += 1
        with lock:
            latencies.extend(mine)
            mismatches += bad

    began = time.perf_counter()
    pool = [threading.Thread(target=run, args=(i,), name=f"load-{i}") for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return LoadFigures(threads=threads, seconds=time.perf_counter() - began, asks=len(latencies),
                       errors=errors, mismatches=mismatches, latencies=latencies, single=single)


# --- hostile inputs -----------------------------------------------------------------------


def hostile_rows(work: Path) -> list[tuple[str, str]]:
    """(case, what happened) for every hostile case, from a real ingest."""
    from hostile import MAX_CHARS, MAX_PAGES, make_hostile_corpus

    cases = make_hostile_corpus(work / "hostile")
    report = ingest(work / "hostile", work / "hostile-index", FakeEmbedder(),
                    settings=IngestSettings(workers=0, max_pages=MAX_PAGES, max_chars=MAX_CHARS))
    store = IndexStore(work / "hostile-index")
    skipped = {s.path: s.reason for s in report.skipped}
    rows = []
    for case in cases:
        if case.needs:
            rows.append((case.name, f"not tried here: needs {case.needs}"))
        elif case.path in skipped:
            rows.append((case.name, f"skipped: “{skipped[case.path]}”"))
        elif case.path in store.documents:
            pages = store.pages(case.path)
            empty = [p.page for p in pages if not p.text.strip()]
            if case.outcome:
                rows.append((case.name, case.outcome))
            elif empty:
                rows.append((case.name, f"read; page {', '.join(map(str, empty))} left out (logged), the other pages indexed"))
            else:
                rows.append((case.name, "read correctly"))
        else:
            rows.append((case.name, case.outcome or "ignored"))
    return rows


# --- ordinary faults and a distrusted index ------------------------------------------------


def _quiet_cli(argv: list[str]) -> tuple[int, str, str]:
    """Run ``qa`` in this process with the hashing embedder; (exit code, stdout, stderr)."""
    import contextlib
    import io
    from unittest import mock

    import qa.embed
    import qa.engine
    from qa import cli

    out, err = io.StringIO(), io.StringIO()
    with mock.patch.object(qa.embed, "load_embedder", lambda *a, **k: FakeEmbedder()), \
            mock.patch.object(qa.embed, "set_threads", lambda n: None), \
            mock.patch.object(qa.engine, "load_embedder", lambda *a, **k: FakeEmbedder()), \
            contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


def _err_line(code: int, err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    shown = lines[0] if len(lines) == 1 else f"{len(lines)} lines: {' / '.join(lines[:3])}"
    return f"exit {code}, {'one line' if len(lines) == 1 else 'NOT one line'}: “{shown}”"


def _mount_tmpfs(folder: Path, size: str) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    return shutil.which("mount") is not None and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True).returncode == 0


def _umount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fault_rows(work: Path, parse_limit: float = 60.0) -> list[tuple[str, str]]:
    """(case, measured outcome) for each fault an ordinary user can meet; raises when a guarantee breaks."""
    import errno
    import importlib
    from unittest import mock

    ingest_module = importlib.import_module("qa.ingest")
    from qa.errors import IndexMismatchError, IndexWriteError, ModelError
    from qa.store import CURRENT, LOCK, MANIFEST, VECTORS

    rows: list[tuple[str, str]] = []
    serial = IngestSettings(workers=0)

    def fresh(name: str, n_docs: int = 4) -> tuple[Path, Path]:
        corpus = build_corpus(work / name / "corpus", n_docs=n_docs)
        index = work / name / "index"
        ingest(corpus, index, FakeEmbedder(), settings=serial)
        return corpus, index

    def change(corpus: Path) -> None:
        (corpus / "new-notes.md").write_text("# New notes\n\n" + "Kinship carers asked for respite. " * 400, encoding="utf-8")

    # Inputs that used to hang the ingest.
    for label, name, text in (("10 MB Markdown file of one word", "one-word.md", "a" * 10_000_000),
                              ("10 MB Markdown file of one word repeated", "repetitive.md", "placement " * 1_000_000)):
        corpus = work / f"slow-{name}" / "corpus"
        corpus.mkdir(parents=True)
        (corpus / name).write_text(text, encoding="utf-8")
        (corpus / "good.md").write_text("# Good\n\nFamily group conferences helped.\n", encoding="utf-8")
        began = time.perf_counter()
        report = ingest(corpus, corpus.parent / "index", FakeEmbedder(),
                        settings=IngestSettings(workers=1, parse_timeout=parse_limit))
        took = time.perf_counter() - began
        skipped = {s.path: s.reason for s in report.skipped}
        if report.documents < 1:
            raise ReliabilityFailure(f"{name}: the good document was not indexed")
        outcome = f"skipped: “{skipped[name]}”" if name in skipped else "indexed"
        rows.append((f"{label} (parse limit {parse_limit:g} "
                     "s)", f"{outcome}; ingest finished in {took:.0f} s, the other file indexed"))

    # Source files.
    corpus, index = fresh("unreadable")
    (corpus / "secret.md").write_text("# Secret\n\nCaseload notes.\n", encoding="utf-8")
    real_hash = ingest_module._hash_source

    def refusing(path: Path) -> str:
        if path.name == "secret.md":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_hash(path)

    with mock.patch.object(ingest_module, "_hash_source", refusing):
        report = ingest(corpus, index, FakeEmbedder(), settings=serial)
    again = ingest(corpus, index, FakeEmbedder(), settings=serial)
    rows.append(("file that cannot be opened (mode 000; simulated, as root can read it)",
                 f"skipped: “{report.skipped[0].reason}”; {report.documents} others indexed; "
                 f"{'read' if 'secret.md' in again.new_or_changed else 'NOT read'} on the next run once readable"))

    corpus, index = fresh("vanished")
    doomed = corpus / "doomed.md"
    doomed.write_text("# Doomed\n\nShort-lived.\n", encoding="utf-8")
    real_discover = ingest_module.discover

    def discover_then_delete(*args: Any, **kwargs: Any) -> tuple[list[tuple[Path, str]], list[Skipped]]:
        found = real_discover(*args, **kwargs)
        doomed.unlink()
        return found

    with mock.patch.object(ingest_module, "discover", discover_then_delete):
        report = ingest(corpus, index, FakeEmbedder(), settings=serial)
    rows.append(("file deleted between listing and reading",
                 f"skipped: “{report.skipped[0].reason}”; {report.documents} others indexed"))

    corpus, index = fresh("flaky")
    real_read = ingest_module.read_document

    def vanishing(path: Path, rel: str, **kwargs: int) -> RawDocument:
        if rel.startswith("notes-"):
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(path))
        return real_read(path, rel, **kwargs)

    (corpus / "notes-03-caseloads.md").write_text("# Changed\n\nA changed note.\n", encoding="utf-8")
    with mock.patch.object(ingest_module, "read_document", vanishing):
        first = ingest(corpus, index, FakeEmbedder(), settings=serial)
    second = ingest(corpus, index, FakeEmbedder(), settings=serial)
    rows.append(("file gone while its reader read it, unchanged on the next run",
                 f"skipped as passing (“{first.skipped[0].reason}”); next run: "
                 f"{'read and indexed' if second.new_or_changed == ('notes-03-caseloads.md',) else 'NOT retried'}"))

    corpus = build_corpus(work / "special" / "corpus", n_docs=2)
    os.mkfifo(corpus / "pipe.pdf")
    with (corpus / "big.txt").open("wb") as handle:
        handle.truncate(3 * 2**20)
    report = ingest(corpus, work / "special" / "index", FakeEmbedder(), settings=IngestSettings(workers=0, max_file_mb=2))
    reasons = {s.path: s.reason for s in report.skipped}
    rows.append(("FIFO named pipe.pdf", f"skipped: “{reasons['pipe.pdf']}”"))
    rows.append(("3 MB file with --max-file-mb 2", f"skipped unread: “{reasons['big.txt']}”"))

    # The index folder.
    for label, size in (("read-only index folder", "16m"), ("index on a full disk", "4m")):
        corpus = build_corpus(work / label.replace(" ", "-") / "corpus", n_docs=4)
        mnt = work / label.replace(" ", "-") / "mnt"
        mounted = _mount_tmpfs(mnt, size)
        try:
            index = mnt / "index"
            ingest(corpus, index, FakeEmbedder(), settings=serial)
            before = snapshot(index)
            change(corpus)
            patches: list[Any] = []  # patchers of different targets
            if label.startswith("read-only"):
                if mounted:
                    subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
                else:
                    real_mkdir = os.mkdir

                    def read_only(path: object, *args: object, real_mkdir=real_mkdir, **kwargs: object) -> None:
                        if "tmp-" in str(path):
                            raise OSError(errno.EROFS, "Read-only file system", str(path))
                        real_mkdir(path, *args, **kwargs)

                    patches.append(mock.patch.object(os, "mkdir", read_only))
            elif mounted:
                fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT, 0o644)
                for chunk in (65536, 4096, 1):
                    try:
                        while True:
                            os.write(fd, b"\1" * chunk)
                    except OSError:
                        pass
                os.close(fd)
            else:
                import qa.lexical

                def full(self: object, path: Path) -> None:
                    raise OSError(errno.ENOSPC, "No space left on device", str(path))

                patches.append(mock.patch.object(qa.lexical.Impacts, "save", full))
            for patch in patches:
                patch.start()
            try:
                code, _, err = _quiet_cli(["ingest", str(corpus), "--index", str(index), "--workers", "0"])
            finally:
                for patch in patches:
                    patch.stop()
            intact = snapshot(index) == before
            if code != 2 or not intact:
                raise ReliabilityFailure(f"{label}: exit {code}, index intact {intact}: {err!r}")
            how = "a real tmpfs" if mounted else "simulated"
            rows.append((f"{label} ({how})", f"{_err_line(code, err)}; previous index intact"))
        finally:
            if mounted:
                _umount(mnt)

    corpus, index = fresh("damaged-db")
    db = index / str(current_generation(index)) / "chunks.sqlite"
    data = bytearray(db.read_bytes())
    data[4096:4160] = bytes(64)
    db.write_bytes(bytes(data))
    code, _, err = _quiet_cli(["ask", "what helped families?", "--index", str(index)])
    rows.append(("64 zeroed bytes in chunks.sqlite, then `qa ask`", _err_line(code, err)))
    code, _, err = _quiet_cli(["info", "--index", str(index)])
    rows.append(("the same, then `qa info`", _err_line(code, err)))

    corpus, index = fresh("flipped")
    vectors = index / str(current_generation(index)) / VECTORS
    data = bytearray(vectors.read_bytes())
    for i in range(len(data) - 64, len(data)):
        data[i] ^= 0xFF
    vectors.write_bytes(bytes(data))
    try:
        IndexStore(index)
        rows.append(("64 flipped bytes in vectors.faiss", "LOADED (not refused)"))
    except IndexMismatchError as exc:
        rows.append(("64 flipped bytes in vectors.faiss", f"refused: “{exc}”"))

    corpus, index = fresh("hub")
    manifest = index / str(current_generation(index)) / MANIFEST
    record = json.loads(manifest.read_text(encoding="utf-8"))
    record["model"] = "someone/not-a-local-model"
    manifest.write_text(json.dumps(record), encoding="utf-8")
    import socket

    calls: list[object] = []

    def no_network(self: object, address: object) -> None:
        calls.append(address)
        raise OSError("network call attempted")

    with mock.patch.object(socket.socket, "connect", no_network):
        try:
            Engine(index)
            outcome = "LOADED"
        except ModelError as exc:
            outcome = f"refused: “{exc}”"
    rows.append(("manifest naming a hub model, then loading the "
                 "index", f"{outcome}; network connections attempted: {len(calls)}"))

    corpus, index = fresh("lock")
    victim = work / "lock" / "victim.txt"
    victim.write_text("precious\n", encoding="utf-8")
    (index / LOCK).unlink(missing_ok=True)
    (index / LOCK).symlink_to(victim)
    try:
        ingest(corpus, index, FakeEmbedder(), settings=serial)
        outcome = "FOLLOWED"
    except IndexWriteError as exc:
        outcome = f"refused: “{exc}”"
    unchanged = victim.read_text(encoding="utf-8") == "precious\n"
    rows.append(("index/.lock a symbolic link to another file", f"{outcome}; target {'unchanged' if unchanged else 'CHANGED'}"))

    from qa.lexical import check_sizes

    npz = work / "lexical-bomb.npz"
    npz_declaring(npz, 10**9)
    try:
        check_sizes(npz)
        outcome = "ACCEPTED"
    except ValueError as exc:
        outcome = f"refused before any array is read: “{exc}”"
    rows.append((f"lexical.npz of {npz.stat().st_size} bytes declaring a 10^9-element array", outcome))

    corpus, index = fresh("current")
    kept = current_generation(index)
    (index / CURRENT).write_text("", encoding="utf-8")
    try:
        ingest(corpus, index, FakeEmbedder(), settings=serial)
        outcome = "ingest went on"
    except IndexMismatchError as exc:
        outcome = f"refused: “{exc}”"
    rows.append(("CURRENT emptied, then `qa ingest`",
                 f"{outcome}; generation {'kept' if (index / str(kept)).is_dir() else 'DELETED'}"))

    corpus = work / "escapes" / "corpus"
    corpus.mkdir(parents=True)
    (corpus / "sources.csv").write_text("path,title,authors,year,publisher,url,licence\n"
                                        "notes.md,\"Notes\x1b]0;owned\x07\x1b[2J\",\"B\x9b31m\",2019,P,https://example.org,OGL\n",
                                        encoding="utf-8")
    (corpus / "notes.md").write_text("# Kinship notes\n\nKinship carers asked for respite.\n", encoding="utf-8")
    (corpus / "\x1b[2Jname.md").write_text("# Named\n\nA file name with an escape.\n", encoding="utf-8")
    index = work / "escapes" / "index"
    printed = ""
    for argv in (["ingest", str(corpus), "--workers", "0"], ["info"], ["info", "--json"], ["ask", "kinship respite"],
                 ["ask", "--json", "kinship respite"]):
        code, out, err = _quiet_cli([*argv, "--index", str(index)])
        printed += out + err
    controls = sum(1 for c in printed if (ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) < 0xA0)
    rows.append(("terminal escapes in a title, an author and a file name; `qa ingest`, `info`, `ask` (text and JSON)",
                 f"control characters printed: {controls}"))

    figures = kill_mid_parse(work / "kill-mid-parse")
    rows.append(("`kill -9` of an ingest while reader processes parse",
                 f"processes left behind: {figures[0]}; its stdout reached end of file: {'yes' if figures[1] else 'NO'}"))
    return [(name, what.replace(str(work), "…")) for name, what in rows]


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def kill_mid_parse(work: Path) -> tuple[int, bool]:
    """SIGKILL an ingest while a reader parses a slow file; (processes left after 10 s, stdout at end of file)."""
    import select

    corpus = work / "corpus"
    corpus.mkdir(parents=True)
    (corpus / "small.md").write_text("# Small\n\nKinship carers asked for respite.\n", encoding="utf-8")
    (corpus / "slow.md").write_text("a" * 10_000_000, encoding="utf-8")
    proc = subprocess.Popen([sys.executable, str(WORKER), str(corpus), str(work / "index"), "--workers", "2", "--progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
    assert proc.stdout is not None
    try:
        if proc.stdout.readline().strip() != b"ready" or not proc.stdout.readline().startswith(b"progress"):
            raise ReliabilityFailure("the ingest to kill did not start parsing")
        time.sleep(0.5)
        family = _children(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        left = family
        for _ in range(100):
            left = [pid for pid in family if _alive(pid)]
            if not left:
                break
            time.sleep(0.1)
        ready, _, _ = select.select([proc.stdout], [], [], 10)
        eof = bool(ready) and proc.stdout.read() == b""
        for pid in left:  # never leave them running, whatever the finding
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        return len(left), eof
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --- the report ---------------------------------------------------------------------------


def machine(load_before: float = -1.0) -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for row in Path("/proc/cpuinfo").read_text().splitlines():
            if row.startswith("model name"):
                cpu = row.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    load = (f"; load average {load_before:.1f} before the run (work of other processes on the same cores)"
            if load_before >= 0 else "")
    return (f"{os.cpu_count()} cores ({cpu}){memory}; {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()}{load}")


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds >= 0.01 else f"{seconds * 1000:.1f} ms"


def render(rows: list[tuple[str, str]], kill: KillFigures, load: LoadFigures, model: str, questions: str, when: str,
           load_before: float = -1.0, faults: list[tuple[str, str]] | None = None) -> str:
    lines = [
        "# Reliability",
        "",
        f"Generated by `make reliability` (`tools/reliability.py`) on {when}.",
        f"Machine: {machine(load_before)}.",
        "",
        "## How the guarantees are kept",
        "",
        "- Every ingest writes a complete new generation (`gen-<n>-...`: `manifest.json`,",
        "  `chunks.sqlite`, `vectors.faiss`, `lexical.npz`) in a temporary folder, syncs it, renames it into",
        "  place and only then replaces `CURRENT` atomically. Until that last step readers see",
        "  the previous generation; a crash before it leaves only temporary files, which the",
        "  next ingest removes.",
        "- One writer at a time: ingest holds an `flock` on `index/.lock`; a second ingest stops",
        "  at once with `IndexLockedError` naming the holder's pid. The kernel drops the lock",
        "  when its holder dies, so a crash never leaves a stale lock.",
        "- Readers open a generation read-only and never see it change. Pruning keeps the",
        "  current generation and the one before it, so an `Engine` loaded before the last",
        "  ingest keeps working; `Engine.refresh()` moves it to the new one. A reader that",
        "  skips two ingests gets `IndexMissingError` (\"reload the index\") on a new thread.",
        "- The index holds only JSON, SQLite and FAISS files; a manifest with unexpected",
        "  fields or types is refused with `IndexMismatchError`, never half-used. No pickle.",
        "- Bad files are skipped with a reason naming the fix. A lasting reason (damaged,",
        "  encrypted, empty) is remembered until the file changes; a passing one (the file",
        "  vanished or could not be opened, its reader crashed, ran out of time or memory) is",
        "  tried again by the next ingest. A file that crashes its reader process is retried",
        "  once in a fresh one and, if it crashes again, skipped, while the other files go on.",
        "- Each reader process parses one file at a time under a time limit (`--parse-timeout`,",
        "  300 s by default) and an address-space cap (`--worker-memory-mb`, 4096 by default); a",
        "  file over the limit has its reader killed and is skipped as \"took longer than N s\".",
        "  Readers ask Linux for a parent-death signal (`prctl(PR_SET_PDEATHSIG)`), so killing an",
        "  ingest kills them too. Only regular files up to `--max-file-mb` (1024) are read.",
        "- The index is verified, not trusted: the manifest records the sha256 of every file of",
        "  its generation and a load checks them first; `lexical.npz` array headers are checked",
        "  against the bytes that follow them before NumPy allocates anything; the model an",
        "  index names is loaded only if it is the bundled one (every file of which is",
        "  hash-checked) or a local folder, never downloaded; `index/.lock` is opened without",
        "  following links and never truncated; an emptied `CURRENT` is damage, not absence.",
        "- An index that cannot be written (read-only, disk full) is one line naming the fix,",
        "  exit 2, with the previous generation untouched. Control characters in titles,",
        "  authors, page labels and sections are removed where they enter the records, and the",
        "  command line prints nothing with a control character in it.",
        "",
        "## Hostile and broken inputs",
        "",
        "Each file below sits in one corpus with ordinary documents and is ingested in one run",
        "(page cap 100, character cap 2,000,000 for this run). Every run finishes; the ordinary",
        "documents are always indexed; a skipped file is named in the ingest summary with the",
        "reason shown. `tests/test_hardening.py` asserts each row.",
        "",
        "| Input | What happens |",
        "|---|---|",
    ]
    lines += [f"| {name.replace('|', '/')} | {what.replace('|', '/')} |" for name, what in rows]
    if faults:
        lines += [
            "",
            "## Ordinary faults and a distrusted index",
            "",
            "Each case is run by `tools/reliability.py` and its outcome recorded as it happened;",
            "`tests/test_faults.py` and `tests/test_crash.py` assert each. A read-only folder and a",
            "full disk use a small tmpfs when the run may mount one (else the failing call is",
            "simulated, and the row says so).",
            "",
            "| Case | Measured outcome |",
            "|---|---|",
        ]
        lines += [f"| {name.replace('|', '/')} | {what.replace('|', '/')} |" for name, what in faults]
    delays = kill.ready_seconds
    lines += [
        "",
        "## Ingest killed at random moments",
        "",
        "An ingest runs in a child process and is killed with SIGKILL after a random delay",
        f"between 0 and 1.1 times the length of an uninterrupted run ({_ms(kill.run_seconds)} after imports).",
        "Runs alternate between two corpus states (one note changed, one report added), every",
        "third run a full `--rebuild`. After every kill the index is loaded and compared with a",
        "clean build of each state: documents, pages, chunks, vectors, full-text index and the",
        "answers to six questions must equal one of them exactly.",
        "",
        "| | |",
        "|---|---|",
        f"| kills | {kill.kills} |",
        f"| reader processes per ingest | {kill.workers or 'none (parsed in the ingest process)'} |",
        f"| processes of a killed ingest still running after it | {kill.orphans} |",
        f"| kill delays | {_ms(min(delays)) if delays else '-'} to {_ms(max(delays)) if delays else '-'} |",
        f"| index still the previous build | {kill.before_switch} |",
        f"| index already the new build | {kill.after_switch} |",
        "| index that failed to load or differed from a clean build | 0 |",
        f"| kills that left a temporary folder or unused generation (removed by the next ingest) | {kill.leftovers} |",
        f"| ingest after the last kill completed and equals a clean build | {'yes' if kill.final_equal else 'no'} |",
        f"| time for the loop | {kill.seconds:.0f} s |",
        "",
        "## Many threads, one engine",
        "",
        f"{load.threads} threads ask questions ({questions}) of one shared `Engine` for",
        f"{load.seconds:.0f} s; model: {model}. Every answer is compared with the single-threaded answer",
        "to the same question (passages, their spans and scores, and answer sentences).",
        "",
        "| | |",
        "|---|---|",
        f"| questions answered | {load.asks} ({load.asks / max(load.seconds, 1e-9):.1f} per second) |",
        f"| errors | {len(load.errors)} |",
        f"| answers differing from single-threaded | {load.mismatches} |",
        f"| latency p50 | {_ms(load.percentile(50))} |",
        f"| latency p90 | {_ms(load.percentile(90))} |",
        f"| latency p99 | {_ms(load.percentile(99))} |",
        f"| latency max | {_ms(max(load.latencies) if load.latencies else 0.0)} |",
        f"| one question at a time (before the threads): p50 / max | {_ms(load.percentile(50, load.single))} / "
        f"{_ms(max(load.single) if load.single else 0.0)} |",
        "",
        "Latency is wall time per question with all threads busy, so it includes waiting for a",
        f"core: the machine has {os.cpu_count()}, and {load.threads} threads share them.",
        "",
    ]
    return "\n".join(lines)


def _load_questions(model: str) -> list[str]:
    if model == "fake":
        return list(QUESTIONS)
    lines = (TESTS / "data" / "sample_questions.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    return [row["question"] for row in rows]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2, help="reader processes per ingest in the kill loop")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--model", choices=("bundled", "fake"), default="bundled")
    parser.add_argument("--out", type=Path, default=DOC)
    parser.add_argument("--parse-limit", type=float, default=60.0, help="parse time limit for the 10 MB files")
    parser.add_argument("--faults-only", action="store_true", help="run only the fault cases and print them")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(message)s")  # skipped files are expected here
    when = time.strftime("%Y-%m-%d", time.gmtime())
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else -1.0
    if args.faults_only:
        with tempfile.TemporaryDirectory(prefix="reliability-") as tmp:
            for name, what in fault_rows(Path(tmp), parse_limit=args.parse_limit):
                print(f"| {name} | {what} |", flush=True)
        return 0
    with tempfile.TemporaryDirectory(prefix="reliability-") as tmp:
        work = Path(tmp)
        print("hostile inputs ...", flush=True)
        rows = hostile_rows(work)
        print("ordinary faults ...", flush=True)
        faults = fault_rows(work / "faults", parse_limit=args.parse_limit)
        print(f"kill loop ({args.kills} kills) ...", flush=True)
        kill = kill_loop(work / "kill", kills=args.kills, log=lambda m: print("  " + m, flush=True), workers=args.workers)
        print(f"load test ({args.threads} threads, {args.seconds:.0f} s, model {args.model}) ...", flush=True)
        if args.model == "fake":
            embedder: Embedder = FakeEmbedder()
            corpus = build_corpus(work / "load-corpus", n_docs=12)
        else:
            from qa.embed import load_embedder

            embedder = load_embedder()
            corpus = ROOT / "corpus"
        ingest(corpus, work / "load-index", embedder, settings=IngestSettings(workers=0))
        engine = Engine(work / "load-index", embedder=embedder)
        load = load_test(engine, _load_questions(args.model), threads=args.threads, seconds=args.seconds)
    if args.model == "fake":
        model, about = "hashing test embedder", f"{len(QUESTIONS)} questions on a generated corpus"
    else:
        model = "bundled all-MiniLM-L6-v2"
        about = f"the {len(_load_questions(args.model))} development questions on the sample corpus"
    args.out.write_text(render(rows, kill, load, model, about, when, load_before, faults), encoding="utf-8")
    print(f"wrote {args.out}: {kill.kills} kills, {load.asks} questions, {len(load.errors)} errors, "
          f"{load.mismatches} mismatches, p50 {_ms(load.percentile(50))}, p99 {_ms(load.percentile(99))}")
    return 0 if not load.errors and not load.mismatches else 1


if __name__ == "__main__":
    sys.exit(main())
