"""One measurement per fresh interpreter, for ``bench/bench.py``.

    python -m bench.probes [--watch-children] NAME ARGS...

Each probe is a plain function that measures one thing and returns a JSON-ready
dict. ``main`` runs one of them by name and prints its dict, with the peak
resident memory of the process (and, with ``--watch-children``, of the worker
processes it started) added, as the last line of standard output; the
benchmark reads that line back. A fresh interpreter per measurement keeps the
imports, caches and memory of one measurement out of the next.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

Result = dict[str, Any]  # what a probe prints: JSON numbers and strings, nested by the int8 probe


# --- memory ----------------------------------------------------------------------------------------
# Peak memory comes from VmHWM in /proc, not getrusage: a child's ru_maxrss starts at its
# parent's peak (Linux carries it across fork and exec), so a bench process that has just built
# a large replica would be charged to every probe started after it.

def peak_rss_mb(pid: str = "self") -> float | None:
    """The high-water mark of a process's resident memory in MB, or None when /proc cannot tell."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


class ChildrenPeak:
    """Samples the peak memory of this process's children five times a second, in a daemon thread.

    A parsing worker's high-water mark is lost when it exits, so it is read
    while the worker runs; the largest value seen for any child is kept.
    """

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self._peaks: dict[str, float] = {}
        self._lock = threading.Lock()

    def start(self) -> ChildrenPeak:
        threading.Thread(target=self._watch, name="children-peak", daemon=True).start()
        return self

    @property
    def peak_mb(self) -> float:
        with self._lock:
            return max(self._peaks.values(), default=0.0)

    def _sample(self) -> None:
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/children", encoding="ascii") as children:
                for pid in children.read().split():
                    peak = peak_rss_mb(pid)
                    if peak:
                        with self._lock:
                            self._peaks[pid] = max(self._peaks.get(pid, 0.0), peak)

    def _watch(self) -> None:
        while True:
            try:
                self._sample()
            except OSError:
                pass  # a thread or child ended between listing and reading it
            time.sleep(self.interval)


# --- probes ------------------------------------------------------------------------------------------

def ingest_probe(corpus: Path, index: Path, rebuild: bool) -> Result:
    """Load the bundled model, then ingest ``corpus`` into ``index``: seconds of each, and what was stored."""
    from qa.embed import load_embedder
    from qa.ingest import ingest

    t0 = time.perf_counter()
    embedder = load_embedder()
    load = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = ingest(corpus, index, embedder, rebuild=rebuild)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "model_load": load, "documents": report.documents, "pages": report.pages,
            "chunks": report.chunks, "embedded": report.embedded_chunks}


def parse_probe(corpus: Path) -> Result:
    """Read, clean and chunk every file of ``corpus`` in as many worker processes as ingest would use, nothing else."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from qa.embed import bundled_model_dir
    from qa.ingest import IngestSettings, _default_workers, discover, parse_file

    settings = IngestSettings()
    files, _ = discover(corpus)
    if not files:
        raise ValueError(f"no documents to parse in {corpus}")
    tokenizer = str(bundled_model_dir() / "tokenizer.json")
    n = len(files)
    workers = max(1, _default_workers(n))
    t0 = time.perf_counter()
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        docs = list(pool.map(parse_file, [str(p) for p, _ in files], [rel for _, rel in files], [None] * n,
                             [settings.chunking] * n, [tokenizer] * n, [settings.max_pages] * n, [settings.max_chars] * n))
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "pages": sum(len(d.pages) for d in docs), "chunks": sum(len(d.chunks) for d in docs),
            "workers": workers}


def encoder_probe(texts_file: Path, threads: int, batch: int, int8: bool) -> Result:
    """Texts per second of the bare encoder on the texts in a JSON list, after a warm-up batch.

    ``threads`` 0 leaves torch's own default.
    """
    from qa.embed import BUNDLED_INT8, load_embedder, set_threads

    texts: list[str] = json.loads(texts_file.read_text(encoding="utf-8"))
    embedder = load_embedder(BUNDLED_INT8 if int8 else None)
    set_threads(threads)
    embedder.embed(texts[:64], batch_size=batch)
    t0 = time.perf_counter()
    embedder.embed(texts, batch_size=batch)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "texts": len(texts), "per_s": len(texts) / seconds}


def nearest_rank_ms(times: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of some durations in seconds, nearest rank, in milliseconds."""
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] * 1000


def latency_probe(index: Path, questions_file: Path, threads: int, with_answer: bool) -> Result:
    """Warm query latency of the engine over the questions in a JSON list (the first ten asked once untimed)."""
    from qa.embed import load_embedder, set_threads
    from qa.engine import Engine

    questions: list[str] = json.loads(questions_file.read_text(encoding="utf-8"))
    embedder = load_embedder()
    set_threads(threads)
    engine = Engine(index, embedder=embedder)
    for question in questions[:10]:
        engine.ask(question, top_k=5, with_answer=with_answer)
    times = []
    for question in questions:
        t0 = time.perf_counter()
        engine.ask(question, top_k=5, with_answer=with_answer)
        times.append(time.perf_counter() - t0)
    return {"n": len(times), "p50": nearest_rank_ms(times, 0.5), "p95": nearest_rank_ms(times, 0.95),
            "chunks": engine.info().chunks}


def int8_quality_probe(sets: Sequence[tuple[str, Path, Path, Path]]) -> Result:
    """For each (name, corpus, index, questions): ingest with the int8 model, then hybrid recall@5 and MRR@10."""
    from qa.embed import BUNDLED_INT8, load_embedder
    from qa.engine import Engine
    from qa.evaluate import compare, load_questions
    from qa.ingest import ingest

    embedder = load_embedder(BUNDLED_INT8)
    out: Result = {}
    for name, corpus, index, questions in sets:
        t0 = time.perf_counter()
        ingest(corpus, index, embedder, rebuild=True)
        seconds = time.perf_counter() - t0
        hybrid = compare(Engine(index, embedder=embedder), load_questions(questions))["hybrid"]
        out[name] = {"r5": hybrid.recall_at_5, "mrr": hybrid.mrr_at_10, "answerable": hybrid.answerable, "seconds": seconds}
    return out


# --- command line --------------------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.probes", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--watch-children", action="store_true", help="also report the peak memory of child processes")
    probes = parser.add_subparsers(dest="probe", required=True, metavar="NAME")

    def add(name: str, run: Callable[[argparse.Namespace], Result], help_text: str) -> argparse.ArgumentParser:
        sub = probes.add_parser(name, help=help_text)
        sub.set_defaults(run=run)
        return sub

    sub = add("ingest", lambda a: ingest_probe(a.corpus, a.index, a.rebuild), "time an ingest with the bundled model")
    sub.add_argument("corpus", type=Path)
    sub.add_argument("index", type=Path)
    sub.add_argument("--rebuild", action="store_true")

    sub = add("parse", lambda a: parse_probe(a.corpus), "time parsing alone")
    sub.add_argument("corpus", type=Path)

    sub = add("encoder", lambda a: encoder_probe(a.texts, a.threads, a.batch, a.int8), "time the bare encoder")
    sub.add_argument("texts", type=Path, help="a JSON list of texts")
    sub.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    sub.add_argument("--batch", type=int, required=True)
    sub.add_argument("--int8", action="store_true", help="the bundled model with int8 weights")

    sub = add("latency", lambda a: latency_probe(a.index, a.questions, a.threads, a.with_answer), "time warm questions")
    sub.add_argument("index", type=Path)
    sub.add_argument("questions", type=Path, help="a JSON list of questions")
    sub.add_argument("--threads", type=int, required=True)
    sub.add_argument("--with-answer", action="store_true")

    sub = add("int8-quality", lambda a: int8_quality_probe([(n, Path(c), Path(i), Path(q)) for n, c, i, q in a.set]),
              "ingest with the int8 model and score its retrieval")
    sub.add_argument("--set", nargs=4, action="append", required=True, metavar=("NAME", "CORPUS", "INDEX", "QUESTIONS"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one probe and print its result, with peak memory added, as one JSON line."""
    args = _parser().parse_args(argv)
    children = ChildrenPeak().start() if args.watch_children else None
    result: Result = args.run(args)
    result["peak_rss_mb"] = peak_rss_mb() or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["children_peak_rss_mb"] = children.peak_mb if children else 0.0
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
