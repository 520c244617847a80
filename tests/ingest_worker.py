"""Run one ingest in its own process, for the crash and lock tests.

    python tests/ingest_worker.py CORPUS INDEX [--rebuild] [--workers N] [--slow SECONDS] [--parse-timeout SECONDS] [--progress]

Prints ``ready`` once imports are done (so a test can time a kill inside the
ingest itself), then ``done <json report>``, or ``error <Type>: <message>``
and exit code 3 for a domain error. ``--slow`` makes each embedding batch take
that long, to hold the write lock for a while.

The module also holds parse functions the worker-pool tests hand to
``qa.ingest._parse_all``: spawn workers import them from here by name.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from conftest import FakeEmbedder  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np


class SlowEmbedder(FakeEmbedder):
    """FakeEmbedder that takes ``delay`` seconds per call."""

    def __init__(self, delay: float, dimension: int = 64) -> None:
        super().__init__(dimension)
        self.delay = delay

    def embed(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        time.sleep(self.delay)
        return super().embed(texts, batch_size=batch_size, progress=progress)


def crash_on_marked(job):
    """Parse normally, but kill this process outright for files named ``crash-*``."""
    from qa.ingest import parse_or_skip

    if Path(job.rel_path).name.startswith("crash-"):
        os._exit(9)
    return parse_or_skip(job)


def crash_once(job):
    """Kill the process the first time a ``flaky-*`` file is parsed (a marker file remembers)."""
    from qa.ingest import parse_or_skip

    if Path(job.rel_path).name.startswith("flaky-"):
        marker = Path(job.path).with_suffix(".crashed")
        if not marker.exists():
            marker.write_text("x")
            os._exit(9)
    return parse_or_skip(job)


def hungry_on_marked(job):
    """Parse normally, but have the reader ask for 3 GB first for files named ``hungry-*``."""
    import qa.readers
    from qa.ingest import parse_or_skip

    if Path(job.rel_path).name.startswith("hungry-"):
        module = sys.modules["qa.ingest"]  # the module: ``qa.ingest`` the attribute is the function
        real = qa.readers.read_document

        def greedy(*args, **kwargs):
            block = bytearray(3 * 2**30)  # more than the cap the test sets
            del block
            return real(*args, **kwargs)

        with mock.patch.object(module, "read_document", greedy):
            return parse_or_skip(job)
    return parse_or_skip(job)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("corpus")
    parser.add_argument("index")
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--slow", type=float, default=0.0)
    parser.add_argument("--parse-timeout", type=float, default=300.0)
    parser.add_argument("--progress", action="store_true", help="print `progress N` after each embedded batch")
    args = parser.parse_args()

    from qa.errors import QAError
    from qa.ingest import IngestSettings, ingest

    embedder = SlowEmbedder(args.slow) if args.slow else FakeEmbedder()
    print("ready", flush=True)
    try:
        report = ingest(Path(args.corpus), Path(args.index), embedder, rebuild=args.rebuild,
                        on_progress=(lambda done, total: print(f"progress {done}", flush=True)) if args.progress else None,
                        settings=IngestSettings(workers=args.workers, parse_timeout=args.parse_timeout))
    except QAError as exc:
        print(f"error {type(exc).__name__}: {exc}", flush=True)
        return 3
    print("done " + json.dumps(asdict(report)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
