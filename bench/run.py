"""``make bench``: quality and speed figures, printed and written into docs/benchmarks.md.

Only the part of docs/benchmarks.md between the ``generated`` markers is
rewritten, so the notes around it (what each choice bought) stay.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
DOC = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- generated:start -->", "<!-- generated:end -->"
QA = [sys.executable, "-m", "qa.cli"]


def machine() -> str:
    """One line naming the machine and versions the figures come from."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem = next(int(l.split()[1]) for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal"))
        ram = f"{mem / 1024 / 1024:.0f} GiB RAM"
    except (OSError, StopIteration):
        ram = "RAM unknown"
    import faiss
    import torch

    return (f"{cpu}, {os.cpu_count()} cores, {ram}; Linux {platform.release()}; Python {platform.python_version()}, "
            f"torch {torch.__version__}, faiss {faiss.__version__}; load average {os.getloadavg()[0]:.1f} at start")


def quality(name: str, corpus: Path, questions: Path, work: Path) -> str:
    """`qa eval --compare` on one question set, as a Markdown table."""
    index = work / f"index-{name}"
    subprocess.run([*QA, "ingest", str(corpus), "--index", str(index), "--no-progress"], check=True, capture_output=True)
    out = subprocess.run([*QA, "eval", str(questions), "--index", str(index), "--compare", "--json"],
                         check=True, capture_output=True, text=True).stdout
    configs = json.loads(out)["configs"]
    lines = [f"| {name} | config | R@1 | R@5 | R@10 | MRR@10 | answerable found | unanswerable flagged |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for config, m in configs.items():
        lines.append(f"| | {config} | {m['recall@1']:.3f} | {m['recall@5']:.3f} | {m['recall@10']:.3f} | "
                     f"{m['mrr@10']:.3f} | {m['found_answerable']:.3f} | {m['flagged_unanswerable']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-speed", action="store_true", help="quality only")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    started = time.time()
    work = Path(tempfile.mkdtemp(prefix="qa-bench-"))
    sections = [f"Measured on {time.strftime('%Y-%m-%d')}: {machine()}.", ""]
    try:
        sections += ["### Retrieval quality (`qa eval --compare`)", ""]
        sections.append(quality("sample", ROOT / "corpus", ROOT / "tests" / "data" / "sample_questions.jsonl", work))
        if (SHARED / "corpus").is_dir():
            corpus = work / "shared"
            shutil.copytree(SHARED / "corpus", corpus / "corpus", ignore=shutil.ignore_patterns("*.md"))
            shutil.copytree(SHARED / "seeds", corpus / "seeds")
            sections += ["", quality("shared", corpus, ROOT / "tests" / "data" / "shared_questions.jsonl", work)]
        else:
            sections += ["", f"(shared corpus absent at {SHARED}: its rows are skipped)"]
        if not args.skip_speed:
            speed = subprocess.run([sys.executable, str(ROOT / "bench" / "speed.py"), "--work", str(work / "speed")],
                                   check=True, capture_output=True, text=True).stdout
            sections += ["", speed.strip()]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    sections += ["", f"(`make bench` took {(time.time() - started) / 60:.0f} minutes.)"]
    body = "\n".join(sections)
    print(body)
    if not args.no_write:
        text = DOC.read_text(encoding="utf-8") if DOC.is_file() else f"# Benchmarks\n\n{START}\n{END}\n"
        if START not in text or END not in text:
            text = text.rstrip() + f"\n\n{START}\n{END}\n"
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        DOC.write_text(f"{head}{START}\n{body}\n{END}{tail}", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
