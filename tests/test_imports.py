"""`qa --help` and `qa fetch --help` start without loading the model stack or the splitter."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT

HEAVY = {"torch", "sentence_transformers", "transformers", "langchain_text_splitters"}


@pytest.mark.parametrize("argv", [["--help"], ["fetch", "--help"]])
def test_help_loads_no_model_or_splitter(argv: list[str]) -> None:
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "qa.cli", *argv], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "usage: qa" in out.stdout
    loaded = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")}
    assert loaded, "no -X importtime output to check"
    assert not loaded & HEAVY, f"qa {' '.join(argv)} imported {sorted(loaded & HEAVY)}"
