"""Across the reports: one row per answering document, the per-row abstention, sorting, JSON, CSV and Word.

A small corpus built with the fake embedder: three reports state how many
families a key worker project supported (one a PDF with printed page labels),
one report only mentions key workers and families without saying how many,
and one is about something else. Real-model checks over the sample and the
shared corpus are marked ``model``.
"""

from __future__ import annotations

import csv
import io
import json
import threading
from pathlib import Path

import pytest

from qa import export, reports
from qa.cli import main
from qa.engine import Engine
from qa.ingest import IngestSettings, ingest

from conftest import FakeEmbedder, make_pdf

QUESTION = "How many families did the Stockport key worker project support?"
STOCKPORT = "The Stockport key worker project supported 420 families over two years."
LEEDS = "In Leeds the Stockport key worker project supported 310 families."
HULL = "Hull adopted the Stockport key worker project and it supported 150 families in its first year."
MENTION = "Staff from Stockport spoke about key worker training at the conference."
SOURCES = """path,title,authors,year,publisher,url,licence
stockport.pdf,Key workers in Stockport,Ann Author,2016,Test Council,https://example.org/stockport,
leeds.md,Family group conferences in Leeds,Ben Author,2019,Test Council,https://example.org/leeds,
hull.md,Key workers in Hull,,2015,Hull Council,,
mention.md,Notes from a practitioner conference,,2018,,,
volcano.md,Volcanoes of Iceland,,2017,,,
"""


def build_corpus(corpus: Path) -> Path:
    corpus.mkdir(parents=True)
    make_pdf(corpus / "stockport.pdf", [
        "Background\n\nThe programme funded projects in several councils. Each project reported to the department.",
        f"Key workers in Stockport\n\n{STOCKPORT} Families said the key worker helped them stay together.",
    ], labels=[(0, "/D", 11)])
    (corpus / "leeds.md").write_text(f"# Key workers in Leeds\n\n{LEEDS} Families met their key worker each week.\n",
                                     encoding="utf-8")
    (corpus / "hull.md").write_text(f"# Hull\n\n{HULL} The council kept the model afterwards.\n", encoding="utf-8")
    (corpus / "mention.md").write_text(f"# Conference notes\n\n{MENTION} The day ended with lunch in the hall.\n",
                                       encoding="utf-8")
    (corpus / "volcano.md").write_text("# Volcanoes\n\nIceland has many active volcanoes. Eruptions are watched from "
                                       "the air and from the ground.\n", encoding="utf-8")
    (corpus / "sources.csv").write_text(SOURCES, encoding="utf-8")
    return corpus


@pytest.fixture(scope="module")
def fake_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("reports")
    corpus = build_corpus(base / "corpus")
    index = base / "index"
    ingest(corpus, index, FakeEmbedder(), settings=IngestSettings(workers=0))
    return corpus, index


@pytest.fixture
def engine(fake_index: tuple[Path, Path]) -> Engine:
    return Engine(fake_index[1], embedder=FakeEmbedder())


def test_one_row_per_answering_report_with_its_page_and_citation(engine: Engine) -> None:
    table = engine.ask_by_report(QUESTION)
    assert table.searched == 5
    by_doc = {r.document.doc_id: r for r in table.rows}
    assert set(by_doc) == {"stockport.pdf", "leeds.md", "hull.md"}
    assert STOCKPORT in by_doc["stockport.pdf"].units
    assert LEEDS in by_doc["leeds.md"].units and HULL in by_doc["hull.md"].units
    pdf = by_doc["stockport.pdf"]
    # The second physical page, printed as page 12: the citation says both, from the chunk's own fields.
    assert (pdf.chunk.page, pdf.chunk.page_label) == (2, "12")
    assert pdf.citation.short == "Key workers in Stockport (2016), p. 12 (PDF p. 2)"
    assert pdf.citation.reference.startswith("Ann Author (2016) Key workers in Stockport.")
    assert by_doc["leeds.md"].citation.short == "Family group conferences in Leeds (2019), section 'Key workers in Leeds'"
    # Each quoted unit is text of its own passage, on its own page.
    for row in table.rows:
        page = engine.page(row.chunk.doc_id, row.chunk.page)
        assert page is not None and all(u in " ".join(page.text.split()) for u in row.units)
    scores = [r.score for r in table.rows]
    assert scores == sorted(scores, reverse=True)


def test_a_report_that_only_mentions_the_words_gets_no_row(engine: Engine) -> None:
    table = engine.ask_by_report(QUESTION)
    assert "mention.md" not in {r.document.doc_id for r in table.rows}
    # Asked of that report alone, a single answer abstains too: the row follows the same policy.
    alone = engine.ask(QUESTION, docs=["mention.md"], top_k=3)
    assert not alone.found
    # And a question nothing answers gets no rows at all.
    assert engine.ask_by_report("zebra giraffe okapi migration routes").rows == ()


def test_a_row_is_what_that_report_alone_would_quote_first(engine: Engine) -> None:
    """The row comes from the single answer's own machinery on the document's passages."""
    table = engine.ask_by_report(QUESTION, table=reports.TableSettings(passages=3, candidates=24))
    for row in table.rows:
        alone = engine.ask(QUESTION, docs=[row.document.doc_id], top_k=3)
        assert alone.found
        assert alone.sentences[0].text == row.units[0]


def test_rows_sort_by_year_and_filters_restrict_the_reports(engine: Engine) -> None:
    table = engine.ask_by_report(QUESTION, sort="year")
    assert [r.document.year for r in table.rows] == [2015, 2016, 2019]
    assert table.sort == "year"
    recent = engine.ask_by_report(QUESTION, year_from=2016)
    assert {r.document.doc_id for r in recent.rows} == {"stockport.pdf", "leeds.md"} and recent.searched == 4
    one = engine.ask_by_report(QUESTION, docs=["hull.md", "not-there.md"])
    assert [r.document.doc_id for r in one.rows] == ["hull.md"] and one.searched == 1
    with pytest.raises(ValueError, match="sort"):
        engine.ask_by_report(QUESTION, sort="title")


def test_the_question_is_embedded_once(fake_index: tuple[Path, Path]) -> None:
    embedder = FakeEmbedder()
    engine = Engine(fake_index[1], embedder=embedder)
    engine.ask_by_report(QUESTION)  # the titles of the answering reports are embedded once per index, not per question
    before = embedder.calls
    engine.ask_by_report(QUESTION)
    assert embedder.calls - before == 1  # the question only: every report's answer units have vectors from ingest


def test_threads_asking_at_once_get_their_own_tables(engine: Engine) -> None:
    questions = [QUESTION, "How many families did the Hull project support in its first year?"] * 4
    expected = {q: engine.ask_by_report(q) for q in set(questions)}
    results: list[tuple[str, object]] = []

    def run(q: str) -> None:
        results.append((q, engine.ask_by_report(q)))

    threads = [threading.Thread(target=run, args=(q,)) for q in questions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == len(questions)
    assert all(table == expected[q] for q, table in results)


def test_cli_prints_the_json_shape_and_a_readable_table(fake_index: tuple[Path, Path],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    index = str(fake_index[1])
    assert main(["ask", "--index", index, "--by-report", "--json", "--sort", "year", QUESTION],
                embedder=FakeEmbedder()) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["question"] == QUESTION and data["sort"] == "year" and data["searched"] == 5
    rows = data["reports"]
    assert [r["doc"] for r in rows] == ["hull.md", "stockport.pdf", "leeds.md"]
    keys = {"doc", "title", "year", "page", "page_label", "section", "text", "score", "citation", "reference"}
    assert all(set(r) == keys for r in rows)
    pdf = rows[1]
    assert (pdf["page"], pdf["page_label"], pdf["year"]) == (2, "12", 2016)
    assert pdf["text"] == STOCKPORT and pdf["citation"] == "Key workers in Stockport (2016), p. 12 (PDF p. 2)"
    assert "https://example.org/stockport" in pdf["reference"]
    assert main(["ask", "--index", index, "--by-report", QUESTION], embedder=FakeEmbedder()) == 0
    out = capsys.readouterr().out
    assert out.startswith("3 of 5 reports answer")
    assert "Key workers in Stockport (2016), p. 12 (PDF p. 2)" in out and f"“{STOCKPORT}”" in out
    assert "Notes from a practitioner conference" not in out


def test_cli_help_names_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["ask", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--by-report" in text and "--sort {score,year}" in text


def test_csv_and_word_exports_carry_the_rows_and_full_references(engine: Engine) -> None:
    import docx

    table = engine.ask_by_report(QUESTION, sort="year")
    rows = list(csv.DictReader(io.StringIO(export.table_csv(table, "1 December 2026"))))
    assert [r["document"] for r in rows] == ["hull.md", "stockport.pdf", "leeds.md"]
    pdf = rows[1]
    assert (pdf["page"], pdf["page_label"], pdf["quote"]) == ("2", "12", STOCKPORT)
    assert pdf["citation"] == "(Key workers in Stockport, 2016, p. 12 (PDF p. 2))"
    assert pdf["reference"] == ("Ann Author (2016) Key workers in Stockport. Test Council. "
                                "Available at: https://example.org/stockport (Accessed: 1 December 2026).")
    assert rows[0]["reference"] == "Hull Council (2015) Key workers in Hull."

    word = docx.Document(io.BytesIO(export.table_docx(table, "1 December 2026")))
    grid = word.tables[0]
    cells = [[c.text for c in row.cells] for row in grid.rows]
    assert cells[0] == ["Report", "Year", "Quote", "Where"]
    assert [c[0] for c in cells[1:]] == ["Key workers in Hull", "Key workers in Stockport",
                                         "Family group conferences in Leeds"]
    assert cells[2][1:] == ["2016", f"“{STOCKPORT}”", "p. 12 (PDF p. 2)"]
    paragraphs = [p.text for p in word.paragraphs]
    assert paragraphs[paragraphs.index("References") + 1:] == [
        "Hull Council (2015) Key workers in Hull.",
        "Ann Author (2016) Key workers in Stockport. Test Council. "
        "Available at: https://example.org/stockport (Accessed: 1 December 2026).",
        "Ben Author (2019) Family group conferences in Leeds. Test Council. "
        "Available at: https://example.org/leeds (Accessed: 1 December 2026).",
    ]


# --- the real model ------------------------------------------------------------------------------

CARE_Q = "which practices reduced the number of children in care?"


@pytest.mark.model
def test_sample_corpus_table_from_the_command_line(sample_index: tuple[Path, Path],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    _corpus, index = sample_index
    assert main(["ask", "--index", str(index), "--by-report", "--json", CARE_Q]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = data["reports"]
    assert rows, "no report answers"
    assert len({r["doc"] for r in rows}) == len(rows) <= data["searched"]
    engine = Engine(index)
    for r in rows:
        assert r["text"] and r["page"] >= 1 and r["citation"].startswith(r["title"])
        page = engine.page(r["doc"], r["page"])
        assert page is not None and r["text"].split(";")[0][:60] in " ".join(page.text.split())
    # Each row quotes what its report, asked alone, quotes first (the same machinery, restricted to it).
    for r in rows:
        alone = engine.ask_by_report(CARE_Q, docs=[r["doc"]])
        assert [row.text for row in alone.rows] == [r["text"]]


@pytest.mark.model
def test_shared_corpus_lists_the_seed_article(shared_index: tuple[Path, Path]) -> None:
    _corpus, index = shared_index
    engine = Engine(index)
    table = engine.ask_by_report("what did the first round of Innovation Programme projects do?")
    docs = [r.document.doc_id for r in table.rows]
    assert any(d.startswith("seeds/") for d in docs), docs
    assert len(docs) == len(set(docs))


def test_bench_rewrites_only_its_own_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import bench

    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nIngest figures.\n", encoding="utf-8")
    monkeypatch.setattr(bench, "DOC", doc)
    bench.write_by_report_section("first table")
    bench.write_by_report_section("second table")
    text = doc.read_text(encoding="utf-8")
    assert text.startswith("# Benchmarks\n\nIngest figures.\n")
    assert "second table" in text and "first table" not in text
    assert text.count(bench.BY_REPORT_START) == 1 and text.count(bench.BY_REPORT_END) == 1
