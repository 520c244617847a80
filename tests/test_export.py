"""Quotes and references for export: plain text, Markdown without stray escapes, Word, BibTeX and RIS."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest

from qa import export
from qa.cite import make_citation
from qa.records import Chunk, DocMeta, Document, Passage

DAY = dt.date(2026, 11, 30)


def passage(title: str = "Evaluation of Q&A 4.1", *, url: str = "https://example.org/report.pdf",
            authors: str = "Jane Smith; John Doe", year: int | None = 2019, label: str = "4", page: int = 6,
            doc_id: str = "report.pdf") -> Passage:
    document = Document(doc_id, DocMeta(title=title, authors=authors, year=year, publisher="Example Council", url=url),
                        "0" * 64, "pdf", 10)
    chunk = Chunk(doc_id=doc_id, page=page, page_label=label, section="", start=0, end=10, text="x" * 10)
    return Passage(rank=1, chunk_id=0, chunk=chunk, document=document, score=1.0, dense_score=0.5,
                   lexical_score=0.0, citation=make_citation(document, chunk))


SENTENCE = "Step-down rates rose by\n4.1 points - a Q&A finding."


def test_quote_reads_as_a_citation_with_hard_line_breaks_joined() -> None:
    quote = export.quote_from(passage(), SENTENCE, "what  rose?")
    assert quote.text == "Step-down rates rose by 4.1 points - a Q&A finding."
    assert quote.short == "(Evaluation of Q&A 4.1, 2019, p. 4 (PDF p. 6))"
    assert quote.cited == "“Step-down rates rose by 4.1 points - a Q&A finding.” (Evaluation of Q&A 4.1, 2019, p. 4 (PDF p. 6))"
    assert quote.key == export.quote_from(passage(), "step-down rates rose by 4.1 points - a q&a finding.", "").key
    undated = export.quote_from(passage(year=None, label="6"), "A sentence.", "")
    assert undated.short == "(Evaluation of Q&A 4.1, n.d., p. 6)"


def test_quote_keeps_its_source_and_reads_title_year_and_place_from_it() -> None:
    source = passage("Two\nline title", label="iv", page=4)
    quote = export.quote_from(source, SENTENCE, "why?")
    assert (quote.document, quote.chunk) == (source.document, source.chunk)
    assert (quote.doc_id, quote.page, quote.title) == ("report.pdf", 4, "Two line title")
    assert quote.where == "p. iv (PDF p. 4)" and quote.short == "(Two line title, 2019, p. iv (PDF p. 4))"
    assert export.sources_of([quote]) == export.sources_of([source]) == export.sources_of([source.document])
    assert export.reference(quote, "today") == export.reference(source.document, "today")
    text = Document("notes.md", DocMeta(title="Notes", year=None), "1" * 64, "md", 1)
    section = Chunk(doc_id="notes.md", page=1, page_label="1", section="Caseloads", start=0, end=5, text="x" * 5)
    cited = export.quote_from(Passage(rank=2, chunk_id=3, chunk=section, document=text, score=0.1, dense_score=0.1,
                                      lexical_score=0.0, citation=make_citation(text, section)), "A line.", "")
    assert cited.short == "(Notes, n.d., section 'Caseloads')"
    assert export.reference(cited, "today") == "Anon. (n.d.) Notes."


def test_reference_names_the_document_url_and_the_accessed_date() -> None:
    quote = export.quote_from(passage(), SENTENCE, "")
    ref = export.reference(quote, export.accessed_date(DAY))
    assert ref == ("Jane Smith; John Doe (2019) Evaluation of Q&A 4.1. Example Council. "
                   "Available at: https://example.org/report.pdf (Accessed: 30 November 2026).")
    assert "Available at" not in export.reference(export.quote_from(passage(url=""), SENTENCE, ""), "today")


def test_plain_text_and_markdown_exports_read_cleanly() -> None:
    quotes = [export.quote_from(passage(), SENTENCE, "q")]
    text = export.quotes_text(quotes, "30 November 2026")
    assert "1. “Step-down rates rose by 4.1 points - a Q&A finding.” (Evaluation of Q&A 4.1, 2019, p. 4 (PDF p. 6))" in text
    assert "\\" not in text
    markdown = export.quotes_markdown(quotes, "30 November 2026")
    assert "> “Step-down rates rose by 4.1 points - a Q&A finding.” (Evaluation of Q&A 4.1, 2019, p. 4 (PDF p. 6))" \
        in markdown
    assert "\\" not in markdown  # no 4\.1, \- or Q\&A


@pytest.mark.parametrize("text", [
    "<script>alert(1)</script>", "[x](javascript:alert(1))", "![i](http://evil.example/i.png)", "&lt;b&gt;",
    "# heading", "- item", "1. first", "> quote", "`code` *em* _em_ | pipe",
])
def test_markdown_export_still_neutralises_markup(text: str) -> None:
    out = export.markdown_text(text)
    assert "<" not in out.replace("\\<", "")
    assert "](" not in out.replace("\\](", "")
    assert not re.match(r"[#>-]|\d+\.", out)
    assert "&lt;" not in out.replace("\\&lt;", "")
    assert out.replace("\\", "") == text


def test_word_document_holds_each_quote_with_its_citation_and_the_references() -> None:
    import docx

    quotes = [export.quote_from(passage(), SENTENCE, "q"),
              export.quote_from(passage("Another report", doc_id="b.pdf", label="2", page=2), "Second \x07quote.", "q")]
    word = docx.Document(io.BytesIO(export.quotes_docx(quotes, "30 November 2026")))
    texts = [p.text for p in word.paragraphs]
    assert texts[0] == "Quotes"
    assert quotes[0].cited in texts and "“Second quote.” (Another report, 2019, p. 2)" in texts
    assert "References" in texts
    assert sum("Accessed: 30 November 2026" in t for t in texts) == 2


def test_bibtex_entries_carry_title_authors_year_url_and_accessed_date() -> None:
    sources = export.sources_of([passage(), passage(), passage("Second {report} 50% #1", doc_id="b.pdf", url="")])
    assert [s.doc_id for s in sources] == ["report.pdf", "b.pdf"]
    bib = export.bibtex(sources, DAY)
    entries = re.findall(r"@misc\{(\w+),\n(.*?)\n\}", bib, re.DOTALL)
    assert len(entries) == 2 and entries[0][0] != entries[1][0]
    first = entries[0][1]
    assert "title = {{Evaluation of Q\\&A 4.1}}" in first
    assert "author = {{Jane Smith} and {John Doe}}" in first
    assert "year = {2019}" in first and "url = {https://example.org/report.pdf}" in first
    assert "urldate = {2026-11-30}" in first
    second = entries[1][1]
    assert "title = {{Second \\{report\\} 50\\% \\#1}}" in second and "url" not in second
    assert bib.count("{") == bib.count("}") + bib.count("\\{") - bib.count("\\}")  # balanced apart from escapes


def test_ris_records_carry_title_authors_year_url_and_accessed_date() -> None:
    ris = export.ris(export.sources_of([passage(), passage("Two\nlines", doc_id="b.pdf", url="")]), DAY)
    records = [r for r in ris.split("ER  - ") if r.strip()]
    assert len(records) == 2
    lines = records[0].strip().splitlines()
    assert lines[0] == "TY  - RPRT"
    assert "TI  - Evaluation of Q&A 4.1" in lines and "AU  - Jane Smith" in lines and "AU  - John Doe" in lines
    assert "PY  - 2019" in lines and "UR  - https://example.org/report.pdf" in lines and "Y2  - 2026/11/30" in lines
    assert "TI  - Two lines" in records[1]
    assert all(re.match(r"[A-Z][A-Z0-9]  - ", line) for r in records for line in r.strip().splitlines())
