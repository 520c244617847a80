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

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
for entry in (str(ROOT), str(TESTS)):
    if entry not in sys.path:
        sys.path.insert(0, entry)

from conftest import FakeEmbedder  # noqa: E402
from corpora import QUESTIONS, build_corpus, snapshot  # noqa: E402
from qa.embed import Embedder  # noqa: E402
from qa.engine import Engine  # noqa: E402
from qa.ingest import IngestSettings, ingest  # noqa: E402
from qa.records import Answer  # noqa: E402
from qa.store import IndexStore, current_generation, generations  # noqa: E402

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


def _spawn(corpus: Path, index: Path, rebuild: bool) -> tuple[subprocess.Popen, float]:
    args = [sys.executable, str(WORKER), str(corpus), str(index)] + (["--rebuild"] if rebuild else [])
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        proc.wait()
        raise ReliabilityFailure(f"ingest worker did not start: {line!r}")
    return proc, time.perf_counter()


def kill_loop(work: Path, kills: int = 20, seed: int = 7, n_docs: int = 16,
              log: Callable[[str], None] = lambda _: None) -> KillFigures:
    """SIGKILL ingests at random moments; raise ``ReliabilityFailure`` when a guarantee breaks."""
    started = time.perf_counter()
    rng = random.Random(seed)
    figures = KillFigures()
    corpus = build_corpus(work / "corpus", n_docs=n_docs)
    questions = QUESTIONS[:6]
    references: dict[str, tuple[dict, list[tuple]]] = {}
    for state in ("A", "B"):
        _set_state(corpus, state)
        clean = work / f"clean-{state}"
        ingest(corpus, clean, FakeEmbedder(), settings=IngestSettings(workers=0))
        references[state] = (snapshot(clean), answers(clean, FakeEmbedder(), questions))
    index = work / "index"
    _set_state(corpus, "A")
    ingest(corpus, index, FakeEmbedder(), settings=IngestSettings(workers=0))

    def state_of(snap: dict) -> str:
        for state, (reference, _) in references.items():
            if snap == reference:
                return state
        raise ReliabilityFailure("the index equals neither corpus state's clean build")

    # How long an uninterrupted child ingest takes once its imports are done.
    timing = work / "timing"
    shutil.copytree(index, timing)
    _set_state(corpus, "B")
    proc, ready = _spawn(corpus, timing, rebuild=False)
    proc.wait()
    figures.run_seconds = time.perf_counter() - ready
    shutil.rmtree(timing)

    state = "A"
    for i in range(kills):
        target = "B" if state == "A" else "A"
        _set_state(corpus, target)
        rebuild = i % 3 == 2
        before = current_generation(index)
        proc, ready = _spawn(corpus, index, rebuild)
        delay = rng.uniform(0, figures.run_seconds * 1.1)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        figures.kills += 1
        figures.ready_seconds.append(delay)
        try:
            snap = snapshot(index)
        except Exception as exc:  # noqa: BLE001 - any failure to load is the finding
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
    proc, _ = _spawn(corpus, index, rebuild=False)
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
            except Exception as exc:  # noqa: BLE001 - every failure is counted, none stops the test
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
    load = f"; load average {load_before:.1f} before the run (work of other processes on the same cores)" if load_before >= 0 else ""
    return (f"{os.cpu_count()} cores ({cpu}){memory}; {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()}{load}")


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds >= 0.01 else f"{seconds * 1000:.1f} ms"


def render(rows: list[tuple[str, str]], kill: KillFigures, load: LoadFigures, model: str, questions: str, when: str,
           load_before: float = -1.0) -> str:
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
        "- Bad files are skipped with a reason naming the fix and remembered until they",
        "  change; a file that crashes its reader process is retried alone and, if it crashes",
        "  again, skipped, while the other files go on.",
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
        f"| kill delays | {_ms(min(delays)) if delays else '-'} to {_ms(max(delays)) if delays else '-'} |",
        f"| index still the previous build | {kill.before_switch} |",
        f"| index already the new build | {kill.after_switch} |",
        f"| index that failed to load or differed from a clean build | 0 |",
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
    rows = [json.loads(line) for line in (TESTS / "data" / "sample_questions.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    return [row["question"] for row in rows]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--model", choices=("bundled", "fake"), default="bundled")
    parser.add_argument("--out", type=Path, default=DOC)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(message)s")  # skipped files are expected here
    when = time.strftime("%Y-%m-%d", time.gmtime())
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else -1.0
    with tempfile.TemporaryDirectory(prefix="reliability-") as tmp:
        work = Path(tmp)
        print("hostile inputs ...", flush=True)
        rows = hostile_rows(work)
        print(f"kill loop ({args.kills} kills) ...", flush=True)
        kill = kill_loop(work / "kill", kills=args.kills, log=lambda m: print("  " + m, flush=True))
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
    args.out.write_text(render(rows, kill, load, model, about, when, load_before), encoding="utf-8")
    print(f"wrote {args.out}: {kill.kills} kills, {load.asks} questions, {len(load.errors)} errors, "
          f"{load.mismatches} mismatches, p50 {_ms(load.percentile(50))}, p99 {_ms(load.percentile(99))}")
    return 0 if not load.errors and not load.mismatches else 1


if __name__ == "__main__":
    sys.exit(main())
