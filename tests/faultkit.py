"""Crash, load and fault machinery shared by the tests and ``tools/reliability.py``.

The tests assert on what these functions return; ``tools/reliability.py`` runs the
same functions, longer, and turns their results into ``docs/reliability.md``. One
home means the report measures exactly what the tests check.

* the kill loop: ingests in a child process SIGKILLed at random moments;
* a kill while reader processes parse a slow file;
* the load test: many threads asking one shared ``Engine``;
* the faults an ordinary user meets (a file that cannot be opened, vanishes or is
  not a regular file; a read-only or full index folder) and a distrusted index
  (damaged files, a hub model name, a linked lock file), each as a setup or a
  patch at the call the real fault would hit;
* ``run_cli``: ``qa`` run in this process with the hashing embedder.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import io
import json
import os
import random
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from unittest import mock

from qa.embed import Embedder
from qa.engine import Engine
from qa.ingest import IngestSettings, ingest
from qa.readers import RawDocument
from qa.records import Answer, Skipped
from qa.store import LOCK, MANIFEST, VECTORS, current_generation, generations

from conftest import FakeEmbedder
from corpora import QUESTIONS, Snapshot, build_corpus, snapshot

ROOT = Path(__file__).resolve().parent.parent
WORKER = ROOT / "tests" / "ingest_worker.py"
SERIAL = IngestSettings(workers=0)
INGEST = importlib.import_module("qa.ingest")  # the module; ``qa.ingest`` is also the function the package exports


class ReliabilityFailure(AssertionError):
    """A reliability guarantee did not hold; the message says which and when."""


# --- answers ------------------------------------------------------------------------------


def signature(answer: Answer) -> tuple:
    """What must not change between runs: found, passages (ids, spans, scores) and sentences."""
    return (
        answer.found,
        tuple((p.chunk_id, p.chunk.doc_id, p.chunk.page, p.chunk.start, p.chunk.end, p.score) for p in answer.passages),
        tuple(s.text for s in answer.sentences),
    )


def answers(index: Path, embedder: Embedder, questions: Sequence[str]) -> list[tuple]:
    """The signature of each question's answer from a fresh engine on ``index``."""
    engine = Engine(index, embedder=embedder)
    try:
        return [signature(engine.ask(q)) for q in questions]
    finally:
        engine.store.close()


# --- processes (read from /proc) ----------------------------------------------------------


def children(pid: int) -> list[int]:
    """Processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    return found


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for a reaper (an orphan's zombie is already dead)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def cmdline(pid: int) -> str:
    """The command line of ``pid``, or "" once it is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def survivors(pids: Sequence[int], tries: int = 100) -> list[int]:
    """Those of ``pids`` still running after up to ``tries`` tenths of a second.

    Processes of a killed ingest die with it; the kernel may need a moment.
    """
    left = list(pids)
    for _ in range(tries):
        left = [pid for pid in left if alive(pid)]
        if not left:
            break
        time.sleep(0.1)
    return left


def kill_all(pids: Sequence[int]) -> None:
    """SIGKILL each of ``pids``, so a failed check never leaves processes running."""
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


# --- the kill loop ------------------------------------------------------------------------


@dataclass
class KillFigures:
    """What the kill loop saw; filled in as it runs."""

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


def set_state(corpus: Path, state: str) -> None:
    """Two corpus states: B changes one note and adds one report."""
    note = corpus / "notes-03-caseloads.md"
    extra = corpus / "zz-extra-report.md"
    if state == "A":
        note.write_text("# Notes on caseloads\n\nSocial workers had smaller caseloads and more direct work.\n", encoding="utf-8")
        extra.unlink(missing_ok=True)
    else:
        note.write_text("# Revised caseload notes\n\nWorkload weighting tools were piloted by team managers.\n", encoding="utf-8")
        extra.write_text("# Extra report\n\nVirtual school heads tracked the attainment of children in care.\n", encoding="utf-8")


def spawn_ingest(corpus: Path, index: Path, rebuild: bool, workers: int = 0) -> tuple[subprocess.Popen, float]:
    """Start ``tests/ingest_worker.py``; (process, the moment its imports were done)."""
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

    After every kill the index must load, hold exactly a clean build of one of the
    two corpus states and answer as that build does; at the end an ingest runs to
    completion and must equal a clean build. With ``workers`` > 0 each ingest parses
    in that many reader processes, and every process of a killed ingest must be gone
    shortly after it. The hashing embedder is used: crash safety is about the files.
    """
    started = time.perf_counter()
    rng = random.Random(seed)
    figures = KillFigures(workers=workers)
    corpus = build_corpus(work / "corpus", n_docs=n_docs)
    questions = QUESTIONS[:6]
    references: dict[str, tuple[Snapshot, list[tuple]]] = {}
    for state in ("A", "B"):
        set_state(corpus, state)
        clean = work / f"clean-{state}"
        ingest(corpus, clean, FakeEmbedder(), settings=SERIAL)
        references[state] = (snapshot(clean), answers(clean, FakeEmbedder(), questions))
    index = work / "index"
    set_state(corpus, "A")
    ingest(corpus, index, FakeEmbedder(), settings=SERIAL)

    def state_of(snap: Snapshot) -> str:
        for state, (reference, _) in references.items():
            if snap == reference:
                return state
        raise ReliabilityFailure("the index equals neither corpus state's clean build")

    # How long an uninterrupted child ingest takes once its imports are done.
    timing = work / "timing"
    shutil.copytree(index, timing)
    set_state(corpus, "B")
    proc, ready = spawn_ingest(corpus, timing, rebuild=False, workers=workers)
    proc.wait()
    figures.run_seconds = time.perf_counter() - ready
    shutil.rmtree(timing)

    state = "A"
    for i in range(kills):
        target = "B" if state == "A" else "A"
        set_state(corpus, target)
        rebuild = i % 3 == 2
        before = current_generation(index)
        proc, ready = spawn_ingest(corpus, index, rebuild, workers)
        delay = rng.uniform(0, figures.run_seconds * 1.1)
        time.sleep(delay)
        family = children(proc.pid) if workers else []
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        left = survivors(family)
        if left:
            figures.orphans += len(left)
            kill_all(left)
            raise ReliabilityFailure(f"kill {i + 1} after {delay:.3f}s left {len(left)} process(es) running")
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
    set_state(corpus, final)
    proc, _ = spawn_ingest(corpus, index, rebuild=False, workers=workers)
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


# --- a kill while reader processes parse --------------------------------------------------


@dataclass(frozen=True)
class MidParseKill:
    """What a SIGKILL of an ingest left behind while its readers were parsing."""

    readers: tuple[int, ...]  # reader processes (multiprocessing spawn children) running just before the kill
    running: bool  # the ingest was still running when the signal was sent
    left: tuple[tuple[int, str], ...]  # (pid, command line) of its processes still running afterwards
    eof: bool  # its stdout reached end of file, so a pipe like `qa ingest | tee` ends


def kill_mid_parse(work: Path) -> MidParseKill:
    """SIGKILL an ingest while one reader parses a slow file; survivors are killed after being recorded."""
    corpus = work / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    (corpus / "small.md").write_text("# Small\n\nKinship carers asked for respite.\n", encoding="utf-8")
    (corpus / "slow.md").write_text("a" * 10_000_000, encoding="utf-8")  # keeps a reader busy for half a minute or more
    proc = subprocess.Popen([sys.executable, str(WORKER), str(corpus), str(work / "index"), "--workers", "2", "--progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
    assert proc.stdout is not None
    try:
        # The small file is embedded once a reader has parsed it; both readers were
        # ready by then, so the other is reading slow.md.
        if proc.stdout.readline().strip() != b"ready" or not proc.stdout.readline().startswith(b"progress"):
            raise ReliabilityFailure("the ingest to kill did not start parsing")
        time.sleep(0.5)
        family = children(proc.pid)
        readers = tuple(pid for pid in family if "spawn_main" in cmdline(pid))
        running = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        left = survivors(family)  # far less time than slow.md takes to parse
        described = tuple((pid, cmdline(pid)) for pid in left)
        ready, _, _ = select.select([proc.stdout], [], [], 10)
        eof = bool(ready) and proc.stdout.read() == b""
        kill_all(left)
        return MidParseKill(readers=readers, running=running, left=described, eof=eof)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --- the load test ------------------------------------------------------------------------


@dataclass
class LoadFigures:
    """Counts and latencies of a load test."""

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


# --- the command line ---------------------------------------------------------------------


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """Run ``qa ARGV`` in this process with the hashing embedder in place of the real model; (exit code, stdout, stderr)."""
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


def error_lines(err: str) -> list[str]:
    """The non-blank lines of what the command line printed to stderr."""
    return [line for line in err.splitlines() if line.strip()]


# --- source files that cannot be read -----------------------------------------------------


SLOW_TEXTS: dict[str, Callable[[], str]] = {  # made on demand: 10 MB each
    "one-word.md": lambda: "a" * 10_000_000,
    "repetitive.md": lambda: "placement " * 1_000_000,
}


def slow_corpus(folder: Path, names: Sequence[str]) -> Path:
    """A corpus of 10 MB files that used to hang the ingest (from ``SLOW_TEXTS``) and one good note."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text(SLOW_TEXTS[name](), encoding="utf-8")
    (folder / "good.md").write_text("# Good\n\nFamily group conferences helped.\n", encoding="utf-8")
    return folder


@contextlib.contextmanager
def refused_on_open(name: str) -> Iterator[None]:
    """Opening the file called ``name`` fails with EACCES, as mode 000 does for a normal user (not for root)."""
    real = INGEST._hash_source

    def refusing(path: Path) -> str:
        if path.name == name:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path)

    with mock.patch.object(INGEST, "_hash_source", refusing):
        yield


@contextlib.contextmanager
def failing_reads(match: Callable[[str], bool], code: int) -> Iterator[None]:
    """The reader raises the ``OSError`` for errno ``code`` on files whose corpus path ``match`` accepts."""
    real = INGEST.read_document

    def failing(path: Path, rel: str, **kwargs: int) -> RawDocument:
        if match(rel):
            raise OSError(code, os.strerror(code), str(path))  # OSError picks the subclass for the errno
        return real(path, rel, **kwargs)

    with mock.patch.object(INGEST, "read_document", failing):
        yield


@contextlib.contextmanager
def deleted_after_listing(doomed: Path) -> Iterator[None]:
    """``doomed`` is deleted right after the ingest has listed the corpus, before it is read."""
    real = INGEST.discover

    def discover_then_delete(*args: Any, **kwargs: Any) -> tuple[list[tuple[Path, str]], list[Skipped]]:
        found = real(*args, **kwargs)
        doomed.unlink()
        return found

    with mock.patch.object(INGEST, "discover", discover_then_delete):
        yield


def add_special_files(corpus: Path) -> None:
    """A FIFO named ``pipe.pdf`` and a sparse 3 MB ``big.txt`` (nothing on disk)."""
    os.mkfifo(corpus / "pipe.pdf")
    with (corpus / "big.txt").open("wb") as handle:
        handle.truncate(3 * 2**20)


# --- an index folder that cannot be written -----------------------------------------------


@contextlib.contextmanager
def tmpfs(folder: Path, size: str) -> Iterator[bool]:
    """Mount a small tmpfs at ``folder`` when allowed (root in a container usually is); yields whether it did."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = shutil.which("mount") is not None and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True).returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def add_long_note(corpus: Path) -> None:
    """A new note long enough that the next ingest must write a new generation of some size."""
    (corpus / "new-notes.md").write_text("# New notes\n\n" + "Kinship carers asked for respite. " * 400, encoding="utf-8")


@contextlib.contextmanager
def mkdir_refused() -> Iterator[None]:
    """Creating the new generation's temporary folder fails with EROFS, as on a read-only file system."""
    real = os.mkdir

    def read_only(path: str | os.PathLike[str], mode: int = 0o777, *, dir_fd: int | None = None) -> None:
        if "tmp-" in str(path):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        real(path, mode, dir_fd=dir_fd)

    with mock.patch.object(os, "mkdir", read_only):
        yield


@contextlib.contextmanager
def lexical_save_fails() -> Iterator[None]:
    """Saving the lexical arrays fails with ENOSPC, as on a full disk."""
    import qa.lexical

    def full(self: object, path: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    with mock.patch.object(qa.lexical.Impacts, "save", full):
        yield


def fill(folder: Path) -> Path:
    """Write a file into ``folder`` until its file system has not one byte left; the file."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for size in (65536, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\1" * size)
    finally:
        os.close(fd)
    return filler


IndexFaultKind = Literal["read-only", "full-disk"]


@dataclass(frozen=True)
class IndexFault:
    """``qa ingest`` into an index folder that could not be written, and what it left."""

    mounted: bool  # a real tmpfs (else the failing call was simulated)
    code: int
    out: str
    err: str
    intact: bool  # the index equals what it held before the failed ingest
    leftovers: tuple[str, ...]  # temporary generation folders left in the index


def index_fault(work: Path, kind: IndexFaultKind) -> IndexFault:
    """Index a small corpus, add a note, make the index folder read-only or full, then run ``qa ingest``.

    The folder is a small tmpfs when one may be mounted (remounted read-only, or
    filled to the last byte); else the call the real fault would hit is patched.
    """
    corpus = build_corpus(work / "corpus", n_docs=4)
    mnt = work / "mnt"
    with tmpfs(mnt, "16m" if kind == "read-only" else "4m") as mounted:
        index = mnt / "index"
        ingest(corpus, index, FakeEmbedder(), settings=SERIAL)
        before = snapshot(index)
        add_long_note(corpus)
        filler: Path | None = None
        with contextlib.ExitStack() as fault:
            if kind == "read-only" and mounted:
                subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
            elif kind == "read-only":
                fault.enter_context(mkdir_refused())
            elif mounted:
                filler = fill(mnt)
            else:
                fault.enter_context(lexical_save_fails())
            code, out, err = run_cli(["ingest", str(corpus), "--index", str(index), "--workers", "0"])
        if filler is not None:
            filler.unlink()
        intact = snapshot(index) == before
        leftovers = tuple(sorted(p.name for p in index.glob("tmp-*")))
    return IndexFault(mounted=mounted, code=code, out=out, err=err, intact=intact, leftovers=leftovers)


# --- a distrusted index -------------------------------------------------------------------


def _generation_file(index: Path, name: str) -> Path:
    return index / str(current_generation(index)) / name


def zero_chunk_store(index: Path) -> None:
    """Zero 64 bytes on the second page of the current generation's ``chunks.sqlite``."""
    db = _generation_file(index, "chunks.sqlite")
    data = bytearray(db.read_bytes())
    data[4096:4160] = bytes(64)
    db.write_bytes(bytes(data))


def flip_vectors(index: Path) -> None:
    """Flip every bit of the last 64 bytes of the current generation's vectors."""
    vectors = _generation_file(index, VECTORS)
    data = bytearray(vectors.read_bytes())
    for i in range(len(data) - 64, len(data)):
        data[i] ^= 0xFF
    vectors.write_bytes(bytes(data))


def name_model(index: Path, model: str) -> None:
    """Make the current generation's manifest name ``model``."""
    manifest = _generation_file(index, MANIFEST)
    record = json.loads(manifest.read_text(encoding="utf-8"))
    record["model"] = model
    manifest.write_text(json.dumps(record), encoding="utf-8")


@contextlib.contextmanager
def no_network() -> Iterator[list[object]]:
    """Every socket connection fails; yields the list of addresses something tried to reach."""
    calls: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        calls.append(address)
        raise OSError("network call attempted")

    with mock.patch.object(socket.socket, "connect", refuse), mock.patch.object(socket.socket, "connect_ex", refuse):
        yield calls


def link_lock(index: Path, victim: Path) -> None:
    """Replace ``index/.lock`` with a symbolic link to ``victim``."""
    (index / LOCK).unlink(missing_ok=True)
    (index / LOCK).symlink_to(victim)


# --- untrusted text and the terminal ------------------------------------------------------

CONTROL = frozenset(chr(c) for c in (*range(0, 9), *range(11, 32), *range(0x7F, 0xA0)))  # all but tab and newline


def control_characters(text: str) -> list[str]:
    """The control characters in ``text``, in order (what must never reach a terminal)."""
    return [c for c in text if c in CONTROL]


def escape_corpus(folder: Path) -> Path:
    """Terminal escapes in a PDF's title and author, a catalogue's title, authors and publisher, and a file name."""
    from pypdf import PdfReader, PdfWriter

    from conftest import make_pdf

    folder.mkdir(parents=True)
    pdf = make_pdf(folder / "report.pdf", ["Family group conferences helped relatives agree a plan."], footer=None)
    writer = PdfWriter(clone_from=PdfReader(str(pdf)))
    writer.add_metadata({"/Title": "Evaluation\x1b]0;owned\x07\x1b[2J report", "/Author": "A\x9b31m Author\x07"})
    with pdf.open("wb") as handle:
        writer.write(handle)
    (folder / "sources.csv").write_text(
        "path,title,authors,year,publisher,url,licence\n"
        "notes.md,\"Notes\x1b[31m red\",\"B\x1b]8;;https://evil/\x07 Author\",2019,\x1b[5mBlink,https://example.org,OGL\n",
        encoding="utf-8")
    (folder / "notes.md").write_text("# Kinship notes\n\nKinship carers asked for respite and training.\n", encoding="utf-8")
    (folder / "\x1b[2Jname.md").write_text("# Named\n\nA file name with an escape.\n", encoding="utf-8")
    return folder
