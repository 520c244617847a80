"""The development question sets hold: every gold phrase is on its pages, every answer phrase on a gold page."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from conftest import LONG_TIMEOUT, ROOT, SHARED

DATA = Path(__file__).parent / "data"


def _checker():
    spec = importlib.util.spec_from_file_location("check_questions", DATA / "check_questions.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CHECKER = _checker()  # one module, so the page texts are extracted once for all the sets


@pytest.mark.shared
@pytest.mark.timeout(LONG_TIMEOUT)  # the first set run extracts every page of the shared corpus (about 1,300)
@pytest.mark.parametrize(
    "name", ["shared_questions.jsonl", "shared_paraphrase.jsonl", "shared_conversations.jsonl", "shared_users.jsonl"]
)
def test_development_set_is_true_to_the_pages(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    if not (SHARED / "corpus").is_dir():
        pytest.skip(f"needs the shared corpus at {SHARED} (absent in this checkout)")
    status = CHECKER.main(["--root", str(SHARED), "--questions", str(DATA / name)])
    out = capsys.readouterr().out
    assert status == 0, out[-3000:]
    assert "All checks passed." in out


def test_sample_user_questions_are_true_to_the_pages(capsys: pytest.CaptureFixture[str]) -> None:
    """The questions over the sample briefings shipped in corpus/ hold against those files."""
    status = CHECKER.main(["--root", str(ROOT / "corpus"), "--questions", str(DATA / "sample_users.jsonl")])
    out = capsys.readouterr().out
    assert status == 0, out[-3000:]
    assert "All checks passed." in out


def test_the_checker_catches_a_phrase_that_is_not_on_its_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "note.txt").write_text("Caseloads fell by a third in the first year.", encoding="utf-8")
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"id": "x-1", "question": "did caseloads fall?", "kind": "fact", "gold": [{"doc": "seeds/note.txt", '
                   '"pages": [], "contains": "caseloads rose by half"}], "answer": ["rose by half"]}\n', encoding="utf-8")
    assert CHECKER.main(["--root", str(tmp_path), "--questions", str(bad)]) == 1
    assert "caseloads rose by half" in capsys.readouterr().out.lower()
