"""The qa command end to end, in process, on the sample corpus.

Most tests hand ``main`` the small fake embedder; those that judge what is found
(an answer, a question the corpus does not cover) use the real model.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from qa.cli import build_parser, main
from qa.embed import Embedder

from conftest import ROOT, FakeEmbedder, copy_tree

FAKE = FakeEmbedder()


def run(capsys: pytest.CaptureFixture[str], *argv: str, embedder: Embedder = FAKE) -> tuple[int, str, str]:
    code = main(list(argv), embedder=embedder)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def fake_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(corpus, index): the sample corpus ingested with the fake embedder, through the command."""
    base = tmp_path_factory.mktemp("cli")
    corpus = copy_tree(ROOT / "corpus", base / "corpus")
    assert main(["ingest", str(corpus), "--index", str(base / "index"), "--no-progress", "--workers", "0"], embedder=FAKE) == 0
    return corpus, base / "index"


@pytest.mark.model
def test_ask_json_has_the_documented_shape_and_citations(sample_index, real_embedder, capsys) -> None:
    corpus, index = sample_index
    code, out, _ = run(capsys, "ask", "--index", str(index), "--json", "--top-k", "3",
                       "How much money did the first round invest?", embedder=real_embedder)
    assert code == 0
    data = json.loads(out)
    assert set(data) >= {"question", "found", "answer", "passages"}
    assert data["found"] is True
    assert 1 <= len(data["passages"]) <= 3
    for p in data["passages"]:
        assert set(p) >= {"rank", "doc", "title", "year", "page", "page_label", "section", "text", "score", "citation"}
        assert (corpus / p["doc"]).is_file()
        assert p["title"] in p["citation"]
    assert any("110 million" in p["text"] for p in data["passages"])
    ranks = {p["rank"] for p in data["passages"]}
    for sentence in data["answer"]:
        assert sentence["passages"] and set(sentence["passages"]) <= ranks
        quoted = " ".join(sentence["text"].split()).lower()
        assert any(quoted in " ".join(data["passages"][r - 1]["text"].split()).lower() for r in sentence["passages"])


def test_printed_page_label_differs_from_physical_page_in_citation(fake_index, capsys) -> None:
    _, index = fake_index
    code, out, _ = run(capsys, "ask", "--index", str(index), "--json", "--doc", "wave-1-final-evaluation-briefing.pdf",
                       "why did deregulation projects take longer to set up?")
    assert code == 0
    top = json.loads(out)["passages"][0]
    assert top["doc"] == "wave-1-final-evaluation-briefing.pdf"
    # The briefing has three roman-numbered front pages, so body page N is physical page N + 3.
    assert top["page_label"].isdigit() and int(top["page_label"]) == top["page"] - 3
    assert f"p. {top['page_label']} (PDF p. {top['page']})" in top["citation"]


@pytest.mark.model
def test_unanswerable_question_is_not_found(sample_index, real_embedder, capsys) -> None:
    _, index = sample_index
    code, out, _ = run(capsys, "ask", "--index", str(index), "--json", "What is the capital of France?", embedder=real_embedder)
    assert code == 0
    data = json.loads(out)
    assert data["found"] is False and data["answer"] == []


def test_ask_reads_questions_from_stdin_as_json_lines(fake_index, capsys, monkeypatch) -> None:
    _, index = fake_index
    monkeypatch.setattr("sys.stdin", io.StringIO("what did the evaluation recommend?\n\nhow many projects were in round 2?\n"))
    code, out, _ = run(capsys, "ask", "--index", str(index), "--json", "-")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [d["question"] for d in lines] == ["what did the evaluation recommend?", "how many projects were in round 2?"]


def test_year_filter_keeps_only_documents_in_range(fake_index, capsys) -> None:
    _, index = fake_index
    code, out, _ = run(capsys, "ask", "--index", str(index), "--json", "--year-from", "2020", "--top-k", "5",
                       "how many projects did the programme fund?")
    assert code == 0
    years = {p["year"] for p in json.loads(out)["passages"]}
    assert years and all(y >= 2020 for y in years)


@pytest.mark.model
def test_human_output_lists_citations(sample_index, real_embedder, capsys) -> None:
    _, index = sample_index
    code, out, _ = run(capsys, "ask", "--index", str(index), "which practices were linked to better outcomes?",
                       embedder=real_embedder)
    assert code == 0
    assert "[1]" in out and "(2017)" in out


def test_info_reports_contents_and_model(fake_index, capsys) -> None:
    corpus, index = fake_index
    code, out, _ = run(capsys, "info", "--index", str(index), "--json")
    assert code == 0
    info = json.loads(out)
    n_files = len([p for p in corpus.iterdir() if p.suffix in (".pdf", ".md")])
    assert info["documents"] == n_files
    assert info["model"] == FAKE.name and info["dimension"] == FAKE.dimension
    assert info["chunks"] >= info["pages"] > 0

def test_missing_index_says_to_run_ingest(tmp_path: Path, capsys) -> None:
    code, _, err = run(capsys, "ask", "--index", str(tmp_path / "none"), "anything")
    assert code == 2
    assert "qa ingest" in err and "Traceback" not in err


def test_unchanged_corpus_reingest_embeds_nothing(fake_index, tmp_path: Path, capsys) -> None:
    corpus, index = fake_index
    copy = tmp_path / "index"
    shutil.copytree(index, copy)
    code, out, _ = run(capsys, "ingest", str(corpus), "--index", str(copy), "--no-progress")
    assert code == 0
    assert "(0 embedded now)" in out and "up to date" in out


def test_strict_ingest_fails_on_a_skipped_file(tmp_path: Path, capsys) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "note.md").write_text("# Note\n\nThe first round invested money in many projects across England.\n")
    (corpus / "empty.pdf").write_bytes(b"")
    code, out, _ = run(capsys, "ingest", str(corpus), "--index", str(tmp_path / "index"), "--strict", "--no-progress")
    assert code == 1
    assert "empty.pdf" in out and "0 bytes" in out


def test_help_mentions_every_command() -> None:
    text = build_parser().format_help()
    for command in ("ingest", "ask", "info", "fetch", "eval"):
        assert command in text
