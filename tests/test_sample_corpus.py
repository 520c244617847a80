"""Checks on the shipped sample corpus, its build script and the development questions.

The PDFs in ``corpus/`` are built from ``tools/sample_src/*.md`` by
``tools/build_sample_corpus.py``; these tests rebuild them into a temporary folder
and fail when the committed files are out of step with their sources.
"""

from __future__ import annotations

import csv
import functools
import json
import re
from pathlib import Path

import pytest
from pypdf import PdfReader

from tools import build_sample_corpus

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
SRC = ROOT / "tools" / "sample_src"
QUESTIONS = ROOT / "tests" / "data" / "sample_questions.jsonl"
SOURCES_CSV = CORPUS / "sources.csv"
REALISTIC = "wave-1-final-evaluation-briefing.pdf"
NOT_DOCUMENTS = {"sources.csv"}
CSV_COLUMNS = ["path", "title", "authors", "year", "publisher", "url", "licence"]
OFFICIAL_NAMES = (
    "Evaluation Report 58",
    "Children's social care innovation programme: insights and evaluation",
)
REBUILD = "run: .venv/bin/python tools/build_sample_corpus.py"


def _norm(text: str) -> str:
    """Fold case and collapse whitespace, as the gold phrases are matched."""
    return re.sub(r"\s+", " ", text).casefold().strip()


def _roman(n: int) -> str:
    """Lower-case roman numeral of ``n`` (1..39 is plenty for front matter)."""
    out = ""
    for value, numeral in ((10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i")):
        while n >= value:
            out += numeral
            n -= value
    return out


@functools.cache
def _pdf_pages(path: Path) -> tuple[str, ...]:
    return tuple(page.extract_text() for page in PdfReader(path).pages)


def _doc_pages(name: str) -> tuple[str, ...]:
    """Page texts of a corpus document; a text document is one page."""
    path = CORPUS / name
    if path.suffix == ".pdf":
        return _pdf_pages(path)
    return (path.read_text(encoding="utf-8"),)


def _documents() -> list[str]:
    return sorted(p.name for p in CORPUS.iterdir() if p.is_file() and p.name not in NOT_DOCUMENTS)


def _sources_rows() -> list[dict[str, str]]:
    with SOURCES_CSV.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _questions() -> list[dict]:
    lines = QUESTIONS.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _running_texts(pdf_name: str) -> list[str]:
    """The running header (short title) of a built PDF, from its source."""
    source = build_sample_corpus.parse_source(SRC / f"{Path(pdf_name).stem}.md")
    return [source.short_title]


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sample_corpus")
    build_sample_corpus.build_all(SRC, out)
    return out


def test_committed_pdfs_match_their_sources(rebuilt: Path) -> None:
    built = sorted(p.name for p in rebuilt.glob("*.pdf"))
    committed = sorted(p.name for p in CORPUS.glob("*.pdf"))
    assert built, "the build script wrote no PDFs"
    assert built == committed, f"corpus PDFs differ from tools/sample_src; {REBUILD}"
    for name in built:
        fresh, shipped = PdfReader(rebuilt / name), PdfReader(CORPUS / name)
        assert fresh.page_labels == shipped.page_labels, f"{name}: page labels differ; {REBUILD}"
        assert _pdf_pages(rebuilt / name) == _pdf_pages(CORPUS / name), f"{name}: text differs; {REBUILD}"
        assert fresh.metadata is not None and shipped.metadata is not None, name
        assert fresh.metadata.title == shipped.metadata.title


def test_build_is_deterministic(rebuilt: Path, tmp_path: Path) -> None:
    again = build_sample_corpus.build_all(SRC, tmp_path)
    for path in again:
        assert path.read_bytes() == (rebuilt / path.name).read_bytes(), f"{path.name} differs between builds"


def test_sources_csv_lists_every_document() -> None:
    with SOURCES_CSV.open(encoding="utf-8", newline="") as handle:
        assert next(csv.reader(handle)) == CSV_COLUMNS
    rows = _sources_rows()
    paths = [row["path"] for row in rows]
    assert len(paths) == len(set(paths)), "duplicate paths in sources.csv"
    assert sorted(paths) == _documents(), "sources.csv and the files in corpus/ disagree"
    for row in rows:
        assert row["title"].strip(), f"{row['path']}: empty title"
        assert row["year"].isdigit() and 2011 <= int(row["year"]) <= 2030, f"{row['path']}: bad year"
    assert len({row["year"] for row in rows}) >= 3, "years should vary so a year filter means something"


def test_pdf_metadata_title_matches_sources_csv() -> None:
    titles = {row["path"]: row["title"] for row in _sources_rows()}
    for name in _documents():
        if name.endswith(".pdf"):
            meta = PdfReader(CORPUS / name).metadata
            assert meta is not None and meta.title == titles[name], name


@pytest.mark.parametrize("name", _documents())
def test_first_page_says_sample_and_names_official_report(name: str) -> None:
    first = _norm(_doc_pages(name)[0][:1500])
    assert "sample briefing written for the evidence-qa project" in first, name
    assert any(_norm(official) in first for official in OFFICIAL_NAMES), f"{name}: no official report named"


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.glob("*.pdf")))
def test_every_pdf_page_has_running_header_and_footer(name: str) -> None:
    reader = PdfReader(CORPUS / name)
    labels = reader.page_labels
    header = _running_texts(name)[0]
    for index, text in enumerate(_pdf_pages(CORPUS / name)):
        assert header in text, f"{name} page {index + 1}: no running header"
        assert f"Sample briefing - page {labels[index]}" in text, f"{name} page {index + 1}: footer label"


def test_realistic_pdf_layout() -> None:
    reader = PdfReader(CORPUS / REALISTIC)
    assert len(reader.pages) >= 8
    assert "/PageLabels" in reader.root_object, "labels must be real /PageLabels"
    labels = reader.page_labels
    front = next(i for i, label in enumerate(labels) if label.isdigit())
    assert front >= 2, "expected roman front matter (title, contents, summary)"
    assert labels[:front] == [_roman(i) for i in range(1, front + 1)]
    assert labels[front:] == [str(i) for i in range(1, len(labels) - front + 1)]
    body = "\n".join(_pdf_pages(CORPUS / REALISTIC)[front:])
    assert re.search(r"^1 Introduction$", body, re.M), "numbered section heading on its own line"
    assert len(re.findall(r"^\d+\.\d+ \S.*$", body, re.M)) >= 10, "numbered subsections"
    assert len(reader.outline) >= 9, "sections should be bookmarked"
    assert "Round 1 2014 to 2016" in body, "the table of rounds"


def test_question_set_shape() -> None:
    questions = _questions()
    ids = [q["id"] for q in questions]
    assert len(ids) == len(set(ids)), "duplicate question ids"
    answerable = [q for q in questions if q["gold"]]
    assert len(answerable) >= 30
    assert len(questions) - len(answerable) >= 8
    docs = set(_documents())
    for q in questions:
        assert q["question"].strip().endswith("?"), q["id"]
        for gold in q["gold"]:
            assert gold["doc"] in docs, f"{q['id']}: unknown document {gold['doc']}"
            n_pages = len(_doc_pages(gold["doc"]))
            # A text document has no physical pages (ingest cuts it at its headings): no list means any page.
            assert gold["pages"] or not gold["doc"].endswith(".pdf"), q["id"]
            assert all(1 <= p <= n_pages for p in gold["pages"]), q["id"]
    assert any(g["doc"] == REALISTIC and g["pages"][0] > 3 for q in answerable for g in q["gold"])
    assert any(g["doc"].endswith(".md") for q in answerable for g in q["gold"])


def test_gold_phrases_are_on_the_stated_pages() -> None:
    for q in _questions():
        for gold in q["gold"]:
            phrase = _norm(gold["contains"])
            assert 3 <= len(phrase.split()) <= 8, f"{q['id']}: phrase length"
            if gold["doc"].endswith(".pdf"):
                running = _norm(" ".join(_running_texts(gold["doc"]) + ["Sample briefing - page"]))
                assert phrase not in running, f"{q['id']}: phrase is in the running header/footer"
            pages = _doc_pages(gold["doc"])
            if not gold["pages"]:
                assert phrase in _norm("\n".join(pages)), f"{q['id']}: {gold['contains']!r} not in {gold['doc']}"
            for page in gold["pages"]:
                assert phrase in _norm(pages[page - 1]), f"{q['id']}: {gold['contains']!r} not on page {page}"
