"""Benchmarks: ingest speed, re-ingest, query latency at scale, memory, embedding options, quality.

Prints each table as it is measured and rewrites docs/benchmarks.md with all of
them and the machine they ran on. Figures are medians of several runs;
comparisons are ratios measured in the same run. Parts that need the shared
corpus (../shared beside the checkout) are skipped with a message when it is
absent.

    .venv/bin/python bench/bench.py [--runs 3] [--quick] [--no-write]
    .venv/bin/python bench/bench.py --answers-only --sample-index DIR [--shared-index DIR] [--no-write]
    .venv/bin/python bench/bench.py --latency-only DIR [--sizes 0,50000]
    .venv/bin/python bench/bench.py --by-report-only --sample-index DIR [--shared-index DIR] [--no-write]

Each measurement runs in a fresh interpreter (bench/probes.py), so one
measurement's imports and memory never reach the next.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
DOC = ROOT / "docs" / "benchmarks.md"
LEVERS = Path(__file__).resolve().parent / "levers.md"
DATA = ROOT / "tests" / "data"
PY = sys.executable

sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    from qa.evaluate import Scores


def ingest_batch() -> int:
    """The ingest's default embedding batch size (qa is imported once ROOT is on sys.path)."""
    from qa.ingest import IngestSettings

    return IngestSettings().batch_size


# --- helpers -------------------------------------------------------------------------------------

def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table."""
    def cell(v: object) -> str:
        if isinstance(v, float):
            return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.1f}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def say(text: str) -> None:
    print(text, flush=True)


def machine() -> dict[str, str]:
    """CPU model, cores, RAM and versions of what the figures depend on."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = ""
    try:
        kb = int(next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")).split()[1])
        ram = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    from importlib.metadata import version

    def v(name: str) -> str:
        try:
            return version(name)
        except Exception:
            return "-"

    import torch

    return {
        "cpu": cpu, "cores": str(os.cpu_count()), "ram": ram, "os": platform.platform(),
        "python": platform.python_version(), "torch": v("torch"), "torch threads (default)": str(torch.get_num_threads()),
        "sentence-transformers": v("sentence-transformers"), "faiss-cpu": v("faiss-cpu"), "numpy": v("numpy"),
        "pypdf": v("pypdf"), "sqlite": __import__("sqlite3").sqlite_version,
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def shared_corpus(dest: Path) -> Path | None:
    """Copies of ../shared/corpus (as corpus/) and ../shared/seeds (as seeds/), as the tests lay them out."""
    if not (SHARED / "corpus").is_dir():
        return None
    root = dest / "shared-corpus"
    if not root.exists():
        shutil.copytree(SHARED / "corpus", root / "corpus", ignore=shutil.ignore_patterns("*.md"))
        if (SHARED / "seeds").is_dir():
            shutil.copytree(SHARED / "seeds", root / "seeds")
    return root


def child(probe: str, *args: str, env: dict[str, str] | None = None, watch_children: bool = False) -> dict[str, Any]:
    """Run one probe of ``bench/probes.py`` in a fresh interpreter; its JSON result, with its peak RSS.

    ``watch_children`` also samples the peak RSS of the processes it starts
    (parsing workers) five times a second.
    """
    command = [PY, "-m", "bench.probes", *(["--watch-children"] if watch_children else []), probe, *args]
    proc = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(env or {})}, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark probe {probe} failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# --- ingest ----------------------------------------------------------------------------------------

def _encoder_texts(index: Path, dest: Path) -> Path:
    """A random quarter of the texts ingest embedded for an index, for timing the bare encoder."""
    from qa.chunking import ChunkSettings, embedding_text
    from qa.store import IndexStore

    store = IndexStore(index)
    texts = []
    for doc_id, document in store.documents.items():
        texts += [embedding_text(c, document.title, ChunkSettings()) for _, c in store.doc_chunks(doc_id)]
    store.close()
    random.Random(7).shuffle(texts)
    dest.write_text(json.dumps(texts[: max(200, len(texts) // 4)]), encoding="utf-8")
    return dest


def bench_ingest(corpus: Path, work: Path, runs: int, ingest_runs: int) -> tuple[str, dict[str, float]]:
    """Ingest from scratch, each run followed at once by the bare encoder on the same texts.

    Pairing the two keeps their ratio fair when other work shares the machine.
    """
    say(f"== ingest from scratch of {corpus} ({ingest_runs} runs, each followed by the bare encoder)")
    results, enc = [], []
    sample_file = work / "encoder-texts.json"
    for i in range(ingest_runs):
        index = work / f"index-scratch-{i}"
        shutil.rmtree(index, ignore_errors=True)
        r = child("ingest", str(corpus), str(index), "--rebuild", watch_children=True)
        if not sample_file.is_file():
            _encoder_texts(index, sample_file)
        e = child("encoder", str(sample_file), "--batch", str(ingest_batch()))
        say(f"   run {i + 1}: {r['seconds']:.1f} s, {r['chunks']} chunks ({int(r['chunks']) / float(r['seconds']):.1f}/s), "
            f"bare encoder {e['per_s']:.1f}/s, peak RSS {r['peak_rss_mb']:.0f} MB")
        results.append(r)
        enc.append(e)
        if i:
            shutil.rmtree(index, ignore_errors=True)
    keep = work / "index-scratch-0"
    say("== re-ingest of the unchanged corpus (5 runs)")
    again = [child("ingest", str(corpus), str(keep)) for _ in range(5)]
    say(f"== parsing alone ({runs} runs)")
    parse = [child("parse", str(corpus)) for _ in range(runs)]

    chunks = int(results[0]["chunks"])
    pages = int(results[0]["pages"])
    scratch = median([float(r["seconds"]) for r in results])
    e2e = chunks / scratch
    bare = median([float(e["per_s"]) for e in enc])
    ratio = median([chunks / float(r["seconds"]) / float(e["per_s"]) for r, e in zip(results, enc, strict=True)])
    parse_s = median([float(r["seconds"]) for r in parse])
    figures = {"scratch_s": scratch, "reingest_s": median([float(r["seconds"]) for r in again]), "e2e": e2e,
               "bare": bare, "ratio": ratio, "pages_per_s": pages / parse_s,
               "ingest_rss": max(float(r["peak_rss_mb"]) for r in results),
               "worker_rss": max(float(r["children_peak_rss_mb"]) for r in results)}
    md = table(
        ["measure", "value"],
        [
            ["documents / pages / chunks", f"{results[0]['documents']} / {pages:,} / {chunks:,}"],
            ["ingest from scratch, s (median)", scratch],
            ["  runs, s", ", ".join(f"{float(r['seconds']):.1f}" for r in results)],
            ["pages/s parsed (parsing alone, " + f"{parse[0]['workers']} worker process(es))", pages / parse_s],
            ["chunks/s embedded, end to end", e2e],
            ["chunks/s of the bare encoder on the same texts", bare],
            ["end-to-end / bare encoder (median of paired runs)", f"{ratio:.2f}"],
            ["re-ingest of the unchanged corpus, s (median of 5)", figures["reingest_s"]],
            ["peak RSS of the ingest process, MB", figures["ingest_rss"]],
            ["peak RSS of a parsing worker, MB", figures["worker_rss"]],
        ],
    )
    say(md)
    return md, figures


# --- query latency ---------------------------------------------------------------------------------

def replicate(index: Path, dest: Path, target: int) -> Path:
    """An index of at least ``target`` chunks: the given one, then copies of its documents (vectors slightly jittered).

    Copy k of a document is stored as ``copy-k/<its path>``, as if the corpus held
    it again in a folder, so its file name words, pages and chunks are the
    original's. Written through the store's own writer, so the replica is always
    in the format the engine loads.
    """
    import numpy as np

    from qa.ingest import renumbered
    from qa.store import GenerationWriter, IndexStore, iter_documents, write_lock

    source = IndexStore(index)
    try:
        base = source.all_vectors()
        units = source.all_unit_vectors()
        documents = list(iter_documents(source, sorted(source.documents)))
        manifest = source.manifest
    finally:
        source.close()
    if dest.exists():
        shutil.rmtree(dest)
    copies = max(1, -(-target // max(1, base.shape[0])))
    rng = np.random.default_rng(1)
    keys: dict[str, str] = {}
    with write_lock(dest):
        writer = GenerationWriter(dest, manifest.dimension)
        try:
            for k in range(copies):
                if k == 0:
                    vectors = base
                else:
                    jittered = base + rng.normal(0, 0.02, base.shape).astype(np.float32)
                    vectors = jittered / np.linalg.norm(jittered, axis=1, keepdims=True)
                for document, pages, pairs in documents:
                    doc_id = document.doc_id if k == 0 else f"copy-{k}/{document.doc_id}"
                    ids = np.array([i for i, _ in pairs], dtype=np.int64)
                    local, rows = renumbered(pages)  # the units' vectors are carried as they are
                    writer.add(dataclasses.replace(document, doc_id=doc_id),
                               [dataclasses.replace(p, doc_id=doc_id) for p in local],
                               [dataclasses.replace(c, doc_id=doc_id) for _, c in pairs], vectors[ids],
                               units[np.array(rows, dtype=np.int64)])
                    keys[doc_id] = manifest.documents.get(document.doc_id, "")
            writer.commit(dataclasses.replace(manifest, documents=keys, counts=writer.counts, skipped={},
                                              built_at=datetime.now(UTC).isoformat(timespec="seconds")))
        except BaseException:
            writer.abandon()
            raise
    return dest


def bench_latency(index: Path, work: Path, sizes: Sequence[int]) -> tuple[str, dict[str, float]]:
    from qa.evaluate import load_questions

    qs = [q.question for f in ("shared_questions.jsonl", "sample_questions.jsonl") if (DATA / f).is_file()
          for q in load_questions(DATA / f)]
    qfile = work / "latency-questions.json"
    qfile.write_text(json.dumps(qs), encoding="utf-8")
    rows = []
    figures: dict[str, float] = {}
    for size in sizes:
        target = index if size == 0 else replicate(index, work / f"index-x{size}", size)
        for threads in (1, 2):
            r = child("latency", str(target), str(qfile), "--threads", str(threads))
            a = child("latency", str(target), str(qfile), "--threads", str(threads), "--with-answer") if threads == 1 else None
            rows.append([f"{int(r['chunks']):,}", threads, r["n"], r["p50"], r["p95"],
                         a["p50"] if a else "-", a["p95"] if a else "-", r["peak_rss_mb"]])
            figures[f"p95_{int(r['chunks'])}_{threads}"] = float(r["p95"])
            say(f"   {int(r['chunks']):,} chunks, {threads} thread(s): p50 {r['p50']:.1f} ms, p95 {r['p95']:.1f} ms")
        if size:
            shutil.rmtree(target, ignore_errors=True)
    md = table(["chunks", "torch threads", "questions", "retrieval p50 ms", "retrieval p95 ms",
                "with answer p50 ms", "with answer p95 ms", "serving peak RSS MB"], rows)
    say(md)
    return md, figures


# --- embedding options -------------------------------------------------------------------------------

def bench_embedding(work: Path, runs: int) -> str:
    sample_file = work / "encoder-texts.json"
    if not sample_file.is_file():
        return "_skipped: needs the ingest texts_"
    texts = json.loads(sample_file.read_text(encoding="utf-8"))[:300]
    small = work / "encoder-small.json"
    small.write_text(json.dumps(texts), encoding="utf-8")
    rows = []
    base = None
    b = ingest_batch()
    settings = [(f"2 threads, batch {b} (ingest default)", 2, b, False), (f"1 thread, batch {b}", 1, b, False)]
    settings += [(f"2 threads, batch {other}", 2, other, False) for other in (2, 4, 8, 16, 32) if other != b]
    settings += [(f"2 threads, batch {b}, int8 dynamic quantisation", 2, b, True)]
    rates: dict[str, list[float]] = {label: [] for label, *_ in settings}
    for run in range(runs):  # round robin, so a machine that slows down mid-way slows every setting alike
        for label, threads, batch, int8 in settings:
            options = ["--threads", str(threads), "--batch", str(batch), *(["--int8"] if int8 else [])]
            rates[label].append(float(child("encoder", str(small), *options)["per_s"]))
            say(f"   run {run + 1}, {label}: {rates[label][-1]:.1f} texts/s")
    for label, *_ in settings:
        rate = median(rates[label])
        base = base or rate
        rows.append([label, rate, f"{rate / base:.2f}"])
    md = table(["encoder setting", "texts/s (median)", "vs default"], rows)
    say(md)
    return md


def quantised_quality(work: Path, sets: dict[str, tuple[Path, Path, Path]], full: dict[str, dict[str, dict[str, float]]],
                      full_ingest_s: float | None) -> str:
    """The int8 model against full precision: recall, MRR and ingest time on the same questions and corpus."""
    jobs = [["--set", name, str(corpus), str(work / f"index-int8-{name}"), str(questions)]
            for name, (corpus, _, questions) in sets.items()]
    q = child("int8-quality", *(arg for job in jobs for arg in job))
    rows = []
    for name in sets:
        f, i = full[name]["hybrid"], q[name]
        rows.append([f"{name} questions, recall@5", f["r5"], i["r5"]])
        rows.append([f"{name} questions, MRR@10", f["mrr"], i["mrr"]])
    if "shared" in q and full_ingest_s:
        rows.append(["ingest of the shared corpus from scratch, s", full_ingest_s, q["shared"]["seconds"]])
    if len(sets) > 1:
        n = {name: q[name]["answerable"] for name in sets}
        for key, label in (("r5", "recall@5"), ("mrr", "MRR@10")):
            rows.append([f"all questions, {label}",
                         sum(full[k]["hybrid"][key] * n[k] for k in sets) / sum(n.values()),
                         sum(q[k][key] * n[k] for k in sets) / sum(n.values())])
    return ("The bundled model with int8 weights (`--model all-MiniLM-L6-v2-int8`: torch dynamic quantisation of the\n"
            "Linear layers), each corpus re-embedded with it; hybrid search, the same questions:\n\n"
            + table(["measure", "full precision", "int8"], rows))


# --- quality ------------------------------------------------------------------------------------------

def bench_quality(indexes: dict[str, tuple[Path, Path]]) -> tuple[str, dict[str, dict[str, dict[str, float]]]]:
    from qa.embed import load_embedder
    from qa.engine import Engine
    from qa.evaluate import compare, load_questions

    emb = load_embedder()
    blocks = []
    figures: dict[str, dict[str, dict[str, float]]] = {}
    results = []
    for name, (index, questions) in indexes.items():
        say(f"== qa eval --compare on {questions.name}")
        t0 = time.perf_counter()
        res = compare(Engine(index, embedder=emb), load_questions(questions), with_others=True)
        say(f"   {time.perf_counter() - t0:.0f} s")
        rows = [[cfg, s.recall_at_1, s.recall_at_5, s.recall_at_10, s.mrr_at_10, s.found_answerable,
                 s.flagged_unanswerable] for cfg, s in res.items()]
        figures[name] = {cfg: {"r5": s.recall_at_5, "mrr": s.mrr_at_10} for cfg, s in res.items()}
        missed = res["hybrid"].missed
        wrong = res["hybrid"].wrongly_found
        block = f"**{questions.name}** ({res['hybrid'].answerable} answerable, {res['hybrid'].unanswerable} unanswerable)\n\n"
        block += table(["config", "recall@1", "recall@5", "recall@10", "MRR@10", "answerable found",
                        "unanswerable flagged"], rows)
        block += f"\n\nhybrid misses in the top 5: {', '.join(missed) or 'none'}; "
        block += f"answered though unanswerable: {', '.join(wrong) or 'none'}"
        say(block)
        blocks.append(block)
        results.append(res)
    if len(results) > 1:
        block = pooled(results)
        say(block)
        blocks.append(block)
    return "\n\n".join(blocks), figures


def split_half(qid: str) -> str:
    """The development split a question id falls in: "tuning" or "held-out" (by checksum, not by choice)."""
    import zlib

    return "tuning" if zlib.crc32(qid.encode("utf-8")) % 2 == 0 else "held-out"


ANSWER_HEADER = ["question set", "questions", "recall@5", "MRR@10", "answer@", "answerable found", "unanswerable flagged",
                 "answer missed"]


def _answer_row(name: str, s) -> list[object]:
    return [name, f"{s.answerable}+{s.unanswerable}", s.recall_at_5, s.mrr_at_10,
            s.answer_at if s.with_answers else "-", s.found_answerable,
            f"{round(s.flagged_unanswerable * s.unanswerable)}/{s.unanswerable}" if s.unanswerable else "-",
            ", ".join(s.answer_missed) or "none"]


def bench_answers(sample_index: Path, shared_index: Path | None) -> str:
    """Answer quality: development sets split into tuning and held-out halves, then the validation set.

    The validation set (../shared/eval) is only ever measured here, never tuned on.
    """
    from qa.embed import load_embedder
    from qa.engine import Engine
    from qa.evaluate import ASK_K, evaluate_conversations, format_conversations, load_conversations, load_questions, score

    emb = load_embedder()
    dev_rows: list[list[object]] = []
    val_rows: list[list[object]] = []
    notes: list[str] = []
    dev = [("sample_questions", sample_index), ("paraphrase_questions", sample_index)]
    if shared_index is not None:
        dev += [("shared_questions", shared_index), ("shared_paraphrase", shared_index)]
    engines: dict[Path, Engine] = {}
    timings: dict[str, list[float]] = {}

    def engine_for(index: Path) -> Engine:
        """One engine per index: loading one reads its vectors and tables."""
        if index not in engines:
            engines[index] = Engine(index, embedder=emb)
        return engines[index]

    def conversations(engine: Engine, path: Path, label: str, note: str) -> list[object]:
        conv = evaluate_conversations(load_conversations(path), lambda q, h: engine.ask(q, top_k=ASK_K, history=h))
        notes.append(f"{note}: " + format_conversations(conv).replace("\n", "; "))
        say(notes[-1])
        return _answer_row(label, conv.turns)

    for name, index in dev:
        engine = engine_for(index)
        questions = load_questions(DATA / f"{name}.jsonl")
        say(f"== answers on {name} ({len(questions)} questions)")
        answers = []
        for q in questions:
            t0 = time.perf_counter()
            answers.append(engine.ask(q.question, top_k=ASK_K))
            timings.setdefault(name, []).append(time.perf_counter() - t0)
        for half in ("tuning", "held-out"):
            pairs = [(q, a) for q, a in zip(questions, answers, strict=True) if split_half(q.id) == half]
            dev_rows.append(_answer_row(f"{name} ({half})", score([q for q, _ in pairs], [a for _, a in pairs])))
        dev_rows.append(_answer_row(f"{name} (all)", score(questions, answers)))
        say(table(ANSWER_HEADER, dev_rows[-3:]))
    if shared_index is not None and (DATA / "shared_conversations.jsonl").is_file():
        dev_rows.append(conversations(engine_for(shared_index), DATA / "shared_conversations.jsonl",
                                      "shared_conversations, later turns", "development conversations"))
    validation = SHARED / "eval"
    if shared_index is not None and (validation / "questions.jsonl").is_file():
        engine = engine_for(shared_index)
        questions = load_questions(validation / "questions.jsonl")
        say(f"== answers on the validation set ({len(questions)} questions)")
        answers = [engine.ask(q.question, top_k=ASK_K) for q in questions]
        val_rows.append(_answer_row("questions.jsonl", score(questions, answers)))
        say(table(ANSWER_HEADER, val_rows))
        if (validation / "conversations.jsonl").is_file():
            val_rows.append(conversations(engine, validation / "conversations.jsonl",
                                          "conversations.jsonl, later turns", "conversations"))
    else:
        notes.append(f"_validation set skipped: needs {SHARED.name}/eval and the shared corpus_")
    def pct(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    notes.append("time to answer a question (retrieval, abstention and answer sentences, one process, warm): "
                 + "; ".join(f"{name} p50 {pct(v, 0.5):.0f} ms, p95 {pct(v, 0.95):.0f} ms" for name, v in timings.items()))
    return "\n".join([
        "Development questions (tuned on the tuning halves; `tests/data/`):", "",
        table(ANSWER_HEADER, dev_rows), "",
        "Validation set (`../shared/eval`, written apart from the development sets and never tuned on):", "",
        table(ANSWER_HEADER, val_rows) if val_rows else "", "", *notes,
        "", "answer@: the quoted answer sentences contain one of the question's answer phrases (folded), over the "
        "questions that carry answer phrases. A question falls in the tuning or held-out half by a checksum of its id.",
    ])


ANSWERS_START, ANSWERS_END = "<!-- answers: bench/bench.py --answers-only -->", "<!-- /answers -->"


def write_answers_section(body: str) -> None:
    """Replace (or append) the answer-quality section of docs/benchmarks.md, leaving the rest alone."""
    text = DOC.read_text(encoding="utf-8") if DOC.is_file() else "# Benchmarks\n"
    block = f"{ANSWERS_START}\n## Answer quality (`qa eval`, answer@)\n\n{body}\n{ANSWERS_END}"
    if ANSWERS_START in text and ANSWERS_END in text:
        head, rest = text.split(ANSWERS_START, 1)
        text = head + block + rest.split(ANSWERS_END, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    DOC.write_text(text, encoding="utf-8")


def _weighted_mean(scores: Sequence[Scores], attr: str, n: int, weight: str) -> float:
    """The mean of ``attr`` over question sets, each weighted by its ``weight`` count; ``n`` is the sum of the weights."""
    return sum(getattr(s, attr) * getattr(s, weight) for s in scores) / n if n else 0.0


def pooled(results: Sequence[dict[str, Scores]]) -> str:
    """Every question set together: each figure weighted by the questions it is a share of."""
    rows = []
    for cfg in results[0]:
        scores = [r[cfg] for r in results]
        yes = sum(s.answerable for s in scores)
        no = sum(s.unanswerable for s in scores)
        rows.append([cfg, *(_weighted_mean(scores, a, yes, "answerable") for a in ("recall_at_1", "recall_at_5", "recall_at_10",
                                                                                 "mrr_at_10", "found_answerable")),
                     _weighted_mean(scores, "flagged_unanswerable", no, "unanswerable")])
    total = sum(r["hybrid"].answerable for r in results), sum(r["hybrid"].unanswerable for r in results)
    return (f"**all question sets together** ({total[0]} answerable, {total[1]} unanswerable)\n\n"
            + table(["config", "recall@1", "recall@5", "recall@10", "MRR@10", "answerable found",
                     "unanswerable flagged"], rows))


# --- across the reports: the evidence table's time against a single answer's ---------------------------

BY_REPORT_START, BY_REPORT_END = "<!-- by-report: bench/bench.py --by-report-only -->", "<!-- /by-report -->"
BY_REPORT_QUESTIONS = 24  # development questions timed per corpus (the validation set is never used here)
BROAD_QUESTIONS = Path(__file__).resolve().parent / "by_report_questions.txt"  # asked of every report


def _broad_questions() -> list[str]:
    lines = BROAD_QUESTIONS.read_text(encoding="utf-8").splitlines() if BROAD_QUESTIONS.is_file() else []
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def bench_by_report(indexes: Sequence[tuple[str, Path, Path]], runs: int = 1) -> str:
    """Warm time of the evidence table (``Engine.ask_by_report``) beside a single answer's, per corpus.

    ``indexes``: (name, index, development question file). Two question sets per corpus: the
    development questions (mostly about one fact, which few reports pass the evidence check for)
    and broad questions that many reports answer (``bench/by_report_questions.txt``). One process,
    one encoder thread as the app and the CLI run it, each engine warmed by a first question; the
    single answer and the table are timed alternately on the same questions, so load on the
    machine falls on both alike.
    """
    from qa.embed import load_embedder, set_threads
    from qa.engine import Engine
    from qa.evaluate import ASK_K, load_questions

    emb = load_embedder()
    set_threads(1)

    def pct(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    rows: list[list[object]] = []
    growth: list[str] = []
    for name, index, path in indexes:
        engine = Engine(index, embedder=emb)
        info = engine.info()
        sets = [("development", [q.question for q in load_questions(path)][:BY_REPORT_QUESTIONS]),
                ("broad", _broad_questions())]
        engine.ask(sets[0][1][0], top_k=ASK_K)
        engine.ask_by_report(sets[0][1][0])
        for label, questions in sets:
            if not questions:
                continue
            single: list[float] = []
            by_report: list[float] = []
            answering: list[int] = []
            for _ in range(max(1, runs)):
                for q in questions:
                    t0 = time.perf_counter()
                    engine.ask(q, top_k=ASK_K)
                    t1 = time.perf_counter()
                    answering.append(len(engine.ask_by_report(q).rows))
                    t2 = time.perf_counter()
                    single.append(t1 - t0)
                    by_report.append(t2 - t1)
            rows.append([f"{name} ({info.documents} documents, {info.pages:,} pages)", f"{label} ({len(questions)})",
                         pct(single, 0.5), pct(single, 0.95), pct(by_report, 0.5), pct(by_report, 0.95),
                         f"{statistics.median(by_report) / statistics.median(single):.1f}x",
                         f"{pct(by_report, 0.95) / pct(single, 0.95):.1f}x", f"{statistics.mean(answering):.1f}"])
            say(table(BY_REPORT_HEADER, rows[-1:]))
            if label == "broad":
                mean_rows = statistics.mean(answering)
                growth.append(f"{name}, {info.documents} documents: {pct(by_report, 0.5) / info.documents:.0f} ms "
                              f"per document searched, {pct(by_report, 0.5) / max(mean_rows, 1):.0f} ms per "
                              f"answering document ({mean_rows:.1f} answer)")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return "\n".join([
        table(BY_REPORT_HEADER, rows), "",
        "Warm, one process, the encoder on one thread (as the app and `qa ask` run it); the single answer "
        "(`qa ask`, 5 passages) and the table (`qa ask --by-report`) timed alternately on the same questions. "
        f"Load average at the end: {load} (on {os.cpu_count()} cores).", "",
        "How it grows: the question is embedded once (the only text a question embeds: every quotable unit's "
        "vector is stored at ingest); each document then costs one search restricted to it, and, when it "
        "passes the evidence check, the scoring of five units of its three best passages. A document that "
        "fails the check costs only its search, so a question about one fact is about as quick as a single "
        "answer. A broad question grows with the number of documents searched and passing the check, not "
        f"with pages or chunks. Broad questions, table p50: {'; '.join(growth)}. Profiled over the shared "
        "corpus, a broad table's time is now the twenty searches (with widening each passage over its page) "
        "and the units' features, in about equal parts; the single answer it is set against also embeds only "
        "the question, so the ratio stays near four while both are ten to twenty times faster than when units "
        "were split and embedded at question time (single 0.40 s, table 2.29 s p50 in the earlier run): a "
        "broad table now takes less than a third of what one answer took then.",
    ])


BY_REPORT_HEADER = ["corpus", "questions", "single p50 ms", "single p95 ms", "table p50 ms", "table p95 ms",
                    "table / single, p50", "table / single, p95", "rows per table"]


def write_by_report_section(body: str) -> None:
    """Replace (or append) the across-the-reports section of docs/benchmarks.md, leaving the rest alone."""
    text = DOC.read_text(encoding="utf-8") if DOC.is_file() else "# Benchmarks\n"
    title = "## Across the reports: the evidence table against a single answer (warm)"
    block = f"{BY_REPORT_START}\n{title}\n\n{body}\n{BY_REPORT_END}"
    if BY_REPORT_START in text and BY_REPORT_END in text:
        head, rest = text.split(BY_REPORT_START, 1)
        text = head + block + rest.split(BY_REPORT_END, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    DOC.write_text(text, encoding="utf-8")


# --- main ----------------------------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="runs per short timing (medians are reported)")
    parser.add_argument("--ingest-runs", type=int, default=2, help="full ingests from scratch to time")
    parser.add_argument("--quick", action="store_true", help="one run each, no 200k-chunk latency, no quantised re-ingest")
    parser.add_argument("--no-write", action="store_true", help=f"print only; leave {DOC.relative_to(ROOT)} alone")
    parser.add_argument("--answers-only", action="store_true",
                        help="only the answer-quality section, from existing indexes (--sample-index, --shared-index)")
    parser.add_argument("--by-report-only", action="store_true",
                        help="only the evidence table's time against a single answer's, from existing indexes "
                             "(--sample-index, --shared-index)")
    parser.add_argument("--sample-index", type=Path, help="index of corpus/ (with --answers-only, --by-report-only)")
    parser.add_argument("--shared-index", type=Path,
                        help="index of ../shared corpus and seeds (with --answers-only, --by-report-only)")
    parser.add_argument("--latency-only", type=Path, metavar="INDEX",
                        help="only the warm query latency, on an existing index; prints, writes nothing")
    parser.add_argument("--sizes", default="0,50000",
                        help="with --latency-only: chunk counts to time, comma-separated (0: the index as it is; more: "
                             "its documents copied up to that many chunks)")
    args = parser.parse_args(argv)
    if args.latency_only is not None:
        try:
            latency_sizes = [int(size) for size in args.sizes.split(",")]
        except ValueError:
            parser.error(f"--sizes takes whole numbers separated by commas, not {args.sizes!r}")
        work = Path(tempfile.mkdtemp(prefix="qa-bench-"))
        try:
            bench_latency(args.latency_only, work, latency_sizes)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return 0
    if args.by_report_only:
        if args.sample_index is None:
            parser.error("--by-report-only needs --sample-index (and --shared-index for the shared corpus)")
        chosen = [("sample", args.sample_index, DATA / "sample_questions.jsonl")]
        if args.shared_index is not None:
            chosen.append(("shared", args.shared_index, DATA / "shared_questions.jsonl"))
        body = bench_by_report(chosen)
        if not args.no_write:
            write_by_report_section(body)
            say(f"wrote the across-the-reports section of {DOC}")
        return 0
    if args.answers_only:
        if args.sample_index is None:
            parser.error("--answers-only needs --sample-index (and --shared-index for the shared sets)")
        body = bench_answers(args.sample_index, args.shared_index)
        if not args.no_write:
            write_answers_section(body)
            say(f"wrote the answer section of {DOC}")
        return 0
    runs = 1 if args.quick else max(1, args.runs)
    started = time.perf_counter()
    info = machine()
    say("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    sections: list[tuple[str, str]] = []
    ingest_figures: dict[str, float] = {}
    work = Path(tempfile.mkdtemp(prefix="qa-bench-"))
    try:
        corpus = shared_corpus(work)
        if corpus is None:
            say(f"the shared corpus is absent ({SHARED}); skipping ingest, latency at scale and shared-question quality")
            sections.append(("Ingest", f"_skipped: needs {SHARED.name}/ beside the checkout_"))
        else:
            md, ingest_figures = bench_ingest(corpus, work, runs, 1 if args.quick else max(1, args.ingest_runs))
            sections.append(("Ingest of the shared corpus", md))
            say("== query latency (warm)")
            sizes = (0, 50_000) if args.quick else (0, 50_000, 200_000)
            md, _ = bench_latency(work / "index-scratch-0", work, sizes)
            sections.append(("Query latency, warm", md))
            say("== embedding options")
            sections.append(("Embedding speed options", bench_embedding(work, min(runs, 2))))
        # Quality: the sample corpus always, the shared one when present.
        from qa.embed import load_embedder
        from qa.ingest import ingest

        sample_corpus = work / "sample-corpus"
        shutil.copytree(ROOT / "corpus", sample_corpus)
        ingest(sample_corpus, work / "index-sample", load_embedder(), rebuild=True)
        indexes = {"sample": (work / "index-sample", DATA / "sample_questions.jsonl")}
        if corpus is not None:
            indexes["shared"] = (work / "index-scratch-0", DATA / "shared_questions.jsonl")
        md, quality = bench_quality(indexes)
        sections.append(("Retrieval quality (`qa eval --compare`)", md))
        say("== answer quality")
        answers_md = bench_answers(work / "index-sample", work / "index-scratch-0" if corpus is not None else None)
        say("== across the reports: the evidence table against a single answer")
        by_report_sets = [("sample", work / "index-sample", DATA / "sample_questions.jsonl")]
        if corpus is not None:
            by_report_sets.append(("shared", work / "index-scratch-0", DATA / "shared_questions.jsonl"))
        by_report_md = bench_by_report(by_report_sets)
        if not args.quick:
            say("== the int8 model: quality and ingest time against full precision")
            sets = {"sample": (sample_corpus, *indexes["sample"])}
            if corpus is not None:
                sets["shared"] = (corpus, *indexes["shared"])
            md = quantised_quality(work, sets, quality, ingest_figures.get("scratch_s"))
            say(md)
            sections.append(("int8 weights against full precision", md))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    total = time.perf_counter() - started
    info["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    say(f"benchmarks took {total / 60:.1f} min")
    if not args.no_write:
        write_doc(info, sections, total)
        write_answers_section(answers_md)
        write_by_report_section(by_report_md)
        say(f"wrote {DOC}")
    return 0


def write_doc(info: dict[str, str], sections: Sequence[tuple[str, str]], seconds: float) -> None:
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`bench/bench.py`); do not edit by hand. Figures are medians of several runs;",
        "ratios compare figures measured in the same run. The shared corpus is ../shared/corpus with",
        "../shared/seeds, laid out as the tests lay it out.",
        "",
        "## Machine",
        "",
        table(["", ""], [[k, v] for k, v in info.items()]),
        "",
        f"The whole run took {seconds / 60:.1f} minutes. A load average above the core count means other",
        "work shared the machine during the run: absolute figures then read low, ratios less so.",
        "",
    ]
    for title, body in sections:
        lines += [f"## {title}", "", body, ""]
    if LEVERS.is_file():
        lines += [LEVERS.read_text(encoding="utf-8").rstrip(), ""]
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
