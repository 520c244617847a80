"""Speed and memory of ingest and questions, printed as a Markdown table.

Run by ``make bench`` (through ``bench/run.py``), or alone:
``python bench/speed.py --part ingest|reingest|query|encoder|all``. Each part
runs in its own process so its peak memory (RSS) is its own. Figures are
medians of several runs; ratios compare runs made in the same process.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))


def peak_rss_mb() -> float:
    """Peak resident memory of this process and its finished children, in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024


def shared_corpus(into: Path) -> Path:
    """A corpus folder of ../shared/corpus (as corpus/) and ../shared/seeds (as seeds/)."""
    corpus = into / "corpus"
    shutil.copytree(SHARED / "corpus", corpus / "corpus", ignore=shutil.ignore_patterns("*.md"))
    shutil.copytree(SHARED / "seeds", corpus / "seeds")
    return corpus


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q)) if values else float("nan")


def part_ingest(work: Path) -> dict[str, object]:
    """Ingest from scratch; parse alone; the bare encoder on the same texts."""
    from qa.chunking import ChunkSettings, embedding_text
    from qa.embed import load_embedder, set_threads
    from qa.ingest import IngestSettings, discover, ingest, parse_file, read_catalogue

    corpus = shared_corpus(work)
    embedder = load_embedder()
    embedder.embed(["warm up"])
    set_threads(os.cpu_count() or 2)
    started = time.perf_counter()
    report = ingest(corpus, work / "index", embedder, settings=IngestSettings())
    total = time.perf_counter() - started

    # Parsing alone, in this process, to give pages/s and the texts the encoder sees.
    files, _ = discover(corpus)
    catalogue = read_catalogue(corpus)
    settings = ChunkSettings()
    texts: list[str] = []
    pages = 0
    t0 = time.perf_counter()
    for path, rel in files:
        try:
            parsed = parse_file(str(path), rel, catalogue.get(rel), settings, embedder.tokenizer_file, 5000, 20_000_000)
        except Exception:  # noqa: BLE001 - skipped files are not part of the measure
            continue
        pages += len(parsed.pages)
        texts.extend(embedding_text(c, parsed.document.title, settings) for c in parsed.chunks)
    parse_seconds = time.perf_counter() - t0

    t0 = time.perf_counter()
    for i in range(0, len(texts), 256):
        embedder.embed(texts[i : i + 256], batch_size=32)
    encode_seconds = time.perf_counter() - t0
    end_to_end = report.chunks / total
    bare = len(texts) / encode_seconds
    return {
        "documents": report.documents, "pages": report.pages, "chunks": report.chunks,
        "ingest_seconds": round(total, 1), "pages_per_s_parsed": round(pages / parse_seconds, 1),
        "parse_seconds": round(parse_seconds, 1), "chunks_per_s_end_to_end": round(end_to_end, 1),
        "chunks_per_s_bare_encoder": round(bare, 1), "ratio_end_to_end_to_encoder": round(end_to_end / bare, 3),
        "peak_rss_mb": round(peak_rss_mb()),
    }


def part_reingest(work: Path, index: Path, corpus: Path) -> dict[str, object]:
    """Re-ingest an unchanged corpus: nothing to embed, so the model is never loaded."""
    from qa.embed import load_embedder
    from qa.ingest import ingest

    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        embedder = load_embedder()
        report = ingest(corpus, index, embedder)
        runs.append(time.perf_counter() - t0)
        assert report.embedded_chunks == 0
    return {"reingest_seconds_median": round(statistics.median(runs), 2), "peak_rss_mb": round(peak_rss_mb())}


def replicate(index: Path, target: Path, chunks_wanted: int) -> Path:
    """A copy of an index whose documents repeat until about ``chunks_wanted`` chunks.

    Copies get a small random change to their vectors so no two tie exactly.
    """
    from qa.store import GenerationWriter, IndexStore, Manifest

    store = IndexStore(index)
    vectors = store.all_vectors()
    copies = max(1, round(chunks_wanted / max(1, len(vectors))))
    writer = GenerationWriter(target, store.manifest.dimension)
    rng = np.random.default_rng(0)
    docs = {}
    for k in range(copies):
        for doc_id, document in store.documents.items():
            pairs = store.doc_chunks(doc_id)
            ids = np.array([i for i, _ in pairs], dtype=np.int64)
            vec = vectors[ids]
            if k:
                vec = vec + rng.normal(0, 0.01, vec.shape).astype(np.float32)
                vec /= np.linalg.norm(vec, axis=1, keepdims=True)
            new_id = f"copy{k}/{doc_id}" if k else doc_id
            doc = type(document)(doc_id=new_id, meta=document.meta, content_hash=document.content_hash,
                                 kind=document.kind, n_pages=document.n_pages)
            pages = [type(p)(doc_id=new_id, page=p.page, label=p.label, text=p.text) for p in store.pages(doc_id)]
            chunks = [type(c)(**{**c.__dict__, "doc_id": new_id}) for _, c in pairs]
            writer.add(doc, pages, chunks, vec)
            docs[new_id] = document.content_hash
    m = store.manifest
    writer.commit(Manifest(format_version=m.format_version, model=m.model, model_hash=m.model_hash,
                           dimension=m.dimension, chunking=m.chunking, built_at=m.built_at,
                           corpus_dir=m.corpus_dir, documents=docs))
    return target


def questions() -> list[str]:
    out = []
    for name in ("shared_questions.jsonl", "sample_questions.jsonl"):
        path = ROOT / "tests" / "data" / name
        if path.is_file():
            out.extend(json.loads(line)["question"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return out


def part_query(index: Path, threads: int, with_answer: bool) -> dict[str, object]:
    """Warm latency of Engine.ask over every development question (twice; the second pass counts)."""
    from qa.embed import set_threads
    from qa.engine import Engine

    set_threads(threads)
    engine = Engine(index)
    qs = questions()
    for q in qs[:10]:
        engine.ask(q, with_answer=with_answer)
    times = []
    for q in qs:
        t0 = time.perf_counter()
        engine.ask(q, with_answer=with_answer)
        times.append((time.perf_counter() - t0) * 1000)
    return {"chunks": engine.info().chunks, "questions": len(qs), "threads": threads, "with_answer": with_answer,
            "p50_ms": round(percentile(times, 50), 1), "p95_ms": round(percentile(times, 95), 1),
            "peak_rss_mb": round(peak_rss_mb())}


def part_encoder(index: Path) -> list[dict[str, object]]:
    """Encoder speed options on 512 stored chunk texts: threads, batch size, int8 quantisation."""
    import torch

    from qa.embed import load_embedder, set_threads
    from qa.store import IndexStore

    store = IndexStore(index)
    texts = [c.text for c in store.chunks(list(range(min(512, store.count("chunks"))))).values()]
    embedder = load_embedder()
    reference = embedder.embed(texts[:64])
    rows = []
    for threads in (1, 2):
        for batch in (16, 32, 64):
            set_threads(threads)
            runs = []
            for _ in range(2):
                t0 = time.perf_counter()
                embedder.embed(texts, batch_size=batch)
                runs.append(time.perf_counter() - t0)
            rows.append({"option": f"fp32, {threads} thread(s), batch {batch}",
                         "chunks_per_s": round(len(texts) / statistics.median(runs), 1), "cosine_to_fp32": 1.0})
    set_threads(2)
    model = embedder._load()  # noqa: SLF001 - the benchmark quantises the loaded module in place
    quantised = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    embedder._model = quantised  # noqa: SLF001
    runs = []
    for _ in range(2):
        t0 = time.perf_counter()
        embedder.embed(texts, batch_size=32)
        runs.append(time.perf_counter() - t0)
    agreement = float(np.mean(np.sum(embedder.embed(texts[:64]) * reference, axis=1)))
    rows.append({"option": "int8 dynamic quantisation, 2 threads, batch 32",
                 "chunks_per_s": round(len(texts) / statistics.median(runs), 1), "cosine_to_fp32": round(agreement, 4)})
    return rows


def child(part: str, *args: str) -> object:
    """Run one part in a fresh process and return its JSON result."""
    out = subprocess.run([sys.executable, __file__, "--part", part, *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--part", default="all", choices=["all", "ingest", "reingest", "query", "encoder", "replicate"])
    parser.add_argument("--work", help="working folder (default: a temporary one)")
    parser.add_argument("--index")
    parser.add_argument("--corpus")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--chunks", type=int, default=50_000)
    parser.add_argument("--no-answer", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of Markdown")
    args = parser.parse_args(argv)
    if args.part != "all":
        work = Path(args.work or tempfile.mkdtemp(prefix="qa-bench-"))
        if args.part == "ingest":
            result: object = part_ingest(work)
        elif args.part == "reingest":
            result = part_reingest(work, Path(args.index), Path(args.corpus))
        elif args.part == "query":
            result = part_query(Path(args.index), args.threads, not args.no_answer)
        elif args.part == "replicate":
            replicate(Path(args.index), work / f"index-{args.chunks}", args.chunks)
            result = {"index": str(work / f"index-{args.chunks}")}
        else:
            result = part_encoder(Path(args.index))
        print(json.dumps(result))
        return 0

    if not (SHARED / "corpus").is_dir():
        print(f"speed benchmarks need the shared corpus at {SHARED}; skipped")
        return 0
    work = Path(args.work or tempfile.mkdtemp(prefix="qa-bench-"))
    results: dict[str, object] = {}
    results["ingest"] = child("ingest", "--work", str(work / "ingest"))
    index, corpus = work / "ingest" / "index", work / "ingest" / "corpus"
    results["reingest"] = child("reingest", "--index", str(index), "--corpus", str(corpus))
    queries = []
    for threads in (1, 2):
        queries.append(child("query", "--index", str(index), "--threads", str(threads), "--no-answer"))
    queries.append(child("query", "--index", str(index), "--threads", "1"))
    for size in (50_000, 200_000):
        big = child("replicate", "--index", str(index), "--work", str(work), "--chunks", str(size))["index"]  # type: ignore[index]
        for threads in (1, 2):
            queries.append(child("query", "--index", big, "--threads", str(threads), "--no-answer"))
        queries.append(child("query", "--index", big, "--threads", "1"))
        shutil.rmtree(big, ignore_errors=True)
    results["query"] = queries
    results["encoder"] = child("encoder", "--index", str(index))
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=2) if args.json else to_markdown(results))
    return 0


def to_markdown(results: dict) -> str:  # type: ignore[type-arg]
    ing, re_ = results["ingest"], results["reingest"]
    lines = [
        "### Ingest of the shared corpus (19 PDFs and the seed article)",
        "",
        "| measure | value |", "| --- | --- |",
        f"| documents / pages / chunks | {ing['documents']} / {ing['pages']} / {ing['chunks']} |",
        f"| ingest from scratch | {ing['ingest_seconds']} s |",
        f"| parsing alone (one process) | {ing['parse_seconds']} s, {ing['pages_per_s_parsed']} pages/s |",
        f"| chunks/s end to end | {ing['chunks_per_s_end_to_end']} |",
        f"| chunks/s, bare encoder on the same texts | {ing['chunks_per_s_bare_encoder']} |",
        f"| ratio end to end / bare encoder | {ing['ratio_end_to_end_to_encoder']} |",
        f"| peak RSS during ingest | {ing['peak_rss_mb']} MiB |",
        f"| re-ingest of the unchanged corpus (median of 5) | {re_['reingest_seconds_median']} s |",
        "",
        "### Question latency, warm, over every development question",
        "",
        "| chunks | torch threads | extractive answer | p50 ms | p95 ms | peak RSS MiB |", "| --- | --- | --- | --- | --- | --- |",
    ]
    for q in results["query"]:
        lines.append(f"| {q['chunks']:,} | {q['threads']} | {'yes' if q['with_answer'] else 'no'} | {q['p50_ms']} | {q['p95_ms']} | {q['peak_rss_mb']} |")
    lines += ["", "### Encoder options (512 chunk texts)", "", "| option | chunks/s | mean cosine to fp32 |", "| --- | --- | --- |"]
    for row in results["encoder"]:
        lines.append(f"| {row['option']} | {row['chunks_per_s']} | {row['cosine_to_fp32']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
