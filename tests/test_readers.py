"""Readers: PDF pages and printed labels, text/Markdown/HTML, encodings and limits."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from qa.errors import DocumentError
from qa.readers import decode_text, html_to_text, read_document, usable_title

from conftest import make_pdf


def test_pdf_text_is_read_page_by_page(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "r.pdf", [
        "Kinship carers were offered training in the first year.",
        "Edge of care teams worked with adolescents.",
        "Family group conferences were held within six weeks.",
    ])
    raw = read_document(path, "r.pdf")
    assert raw.kind == "pdf" and raw.rel_path == "r.pdf"
    assert [p.page for p in raw.pages] == [1, 2, 3]
    assert "Kinship carers" in raw.pages[0].text and "Kinship" not in raw.pages[1].text
    assert "Edge of care" in raw.pages[1].text
    assert "six weeks" in raw.pages[2].text
    assert raw.content_hash == __import__("hashlib").sha256(path.read_bytes()).hexdigest()


def test_page_labels_give_roman_front_matter(tmp_path: Path) -> None:
    texts = [f"Page body number {word} with enough words to count." for word in
             ("one", "two", "three", "four", "five", "six")]
    path = make_pdf(tmp_path / "labels.pdf", texts, labels=[(0, "/r", 1), (3, "/D", 1)])
    raw = read_document(path, "labels.pdf")
    assert [p.label for p in raw.pages] == ["i", "ii", "iii", "1", "2", "3"]
    assert all(p.label_is_printed for p in raw.pages)


def test_page_labels_with_offset_start(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "labels.pdf", ["Cover page words here.", "Body page words here.", "More body words here."],
                    labels=[(0, "/D", 10)])
    assert [p.label for p in read_document(path, "x.pdf").pages] == ["10", "11", "12"]


def test_pdf_without_labels_gets_physical_numbers(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "plain.pdf", ["First page words to read.", "Second page words to read."])
    raw = read_document(path, "plain.pdf")
    assert [(p.label, p.label_is_printed) for p in raw.pages] == [("1", False), ("2", False)]


def test_pdf_metadata_title_and_placeholders(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "t.pdf", ["Some body text for the document."], title="Evaluation of Family Valued")
    raw = read_document(path, "t.pdf")
    assert raw.title == "Evaluation of Family Valued"
    assert raw.year is not None and 2000 <= raw.year <= 2100
    placeholder = make_pdf(tmp_path / "p.pdf", ["Some body text for the document."], title="Microsoft Word - final_v3.docx")
    assert read_document(placeholder, "p.pdf").title == ""


@pytest.mark.parametrize(
    ("metadata", "title"),
    [
        ("PowerPoint Presentation", ""),
        ("DFE stat guidance template", ""),
        ("Leeds - Draft report", ""),
        ("Untitled-1", ""),
        ("Document3", ""),
        ("  ", ""),
        ("Microsoft Word - NYC Evaluation Report - Project 2b", "NYC Evaluation Report - Project 2b"),
        ("Microsoft Word - Evaluation of the think family database.docx", "Evaluation of the think family database"),
        ("Children's social care national framework", "Children's social care national framework"),
    ],
)
def test_placeholder_metadata_titles_are_not_titles(metadata: str, title: str) -> None:
    assert usable_title(metadata) == title


def test_pdf_outline_is_read(tmp_path: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    path = make_pdf(tmp_path / "o.pdf", ["Introduction text on the first page.", "Findings text on the second page."])
    writer = PdfWriter(clone_from=PdfReader(str(path)))
    writer.add_outline_item(title="Introduction", page_number=0)
    writer.add_outline_item(title="Findings", page_number=1)
    with path.open("wb") as handle:
        writer.write(handle)
    assert read_document(path, "o.pdf").outline == ((1, "Introduction"), (2, "Findings"))


def test_pdf_page_cap_truncates_and_says_so(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "long.pdf", [f"Page text {i} about services." for i in range(6)])
    raw = read_document(path, "long.pdf", max_pages=4)
    assert len(raw.pages) == 4
    assert "4 of 6 pages" in raw.truncated and "--max-pages" in raw.truncated


def test_pdf_character_cap(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "c.pdf", ["A" * 50 + " first page.", "B" * 50 + " second page.", "C" * 50 + " third."])
    raw = read_document(path, "c.pdf", max_chars=80)
    assert sum(len(p.text) for p in raw.pages) == 80
    assert "--max-chars" in raw.truncated


def test_text_and_markdown(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Plain notes about leaving care.\n", encoding="utf-8")
    (tmp_path / "b.md").write_text("# Title\n\nMarkdown notes.\n", encoding="utf-8")
    (tmp_path / "c.markdown").write_text("Other notes.\n", encoding="utf-8")
    a = read_document(tmp_path / "a.txt", "a.txt")
    assert (a.kind, len(a.pages), a.pages[0].label) == ("txt", 1, "1")
    assert a.pages[0].text.startswith("Plain notes")
    assert read_document(tmp_path / "b.md", "b.md").kind == "md"
    assert read_document(tmp_path / "c.markdown", "c.markdown").kind == "md"


def test_html_title_headings_and_hidden_parts(tmp_path: Path) -> None:
    page = """<!doctype html><html><head><title>Care review &amp; findings</title>
    <style>p { color: red }</style><script>var secret = "do not index";</script></head>
    <body><h1>Main finding</h1><p>Children&rsquo;s views were heard.</p>
    <h2>Next steps</h2><ul><li>First</li><li>Second</li></ul><noscript>enable js</noscript></body></html>"""
    (tmp_path / "p.html").write_text(page, encoding="utf-8")
    raw = read_document(tmp_path / "p.html", "p.html")
    assert raw.kind == "html" and raw.title == "Care review & findings"
    text = raw.pages[0].text
    assert "# Main finding" in text and "## Next steps" in text
    assert "Children\u2019s views were heard." in text
    assert "do not index" not in text and "color" not in text and "enable js" not in text
    assert "- First\n- Second" in text  # each list item on a line of its own
    assert html_to_text("<p>a</p><p>b</p>")[1] == "a\n\nb"
    # An inline SVG's <title> is not the page's.
    assert html_to_text('<body><svg><title>Crown logo</title></svg><p>Text</p></body>') == ("", "Text")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("café naïve".encode(), "café naïve"),
        (codecs.BOM_UTF8 + "café".encode(), "café"),
        ("\ufeffcafé".encode("utf-16-le"), "café"),
        ("\ufeffcafé".encode("utf-16-be"), "café"),
        ("\ufeffcafé".encode("utf-32-le"), "café"),
        ("plain ascii in utf-16".encode("utf-16-le"), "plain ascii in utf-16"),
        ("plain ascii in utf-16".encode("utf-16-be"), "plain ascii in utf-16"),
        ("café, naïve".encode("latin-1"), "café, naïve"),
        ("\u201cquoted\u201d \u2013 dash".encode("cp1252"), "\u201cquoted\u201d \u2013 dash"),
    ],
)
def test_decoding(data: bytes, expected: str) -> None:
    assert decode_text(data, "f.txt") == expected


def test_mostly_utf8_with_a_bad_byte_stays_utf8() -> None:
    data = "“Quoted” naïve café".encode() + b" \xff " + "résumé".encode()
    text = decode_text(data, "f.txt")
    assert text == "“Quoted” naïve café \ufffd résumé"


def test_binary_and_bad_bom_are_refused() -> None:
    with pytest.raises(DocumentError, match="binary"):
        decode_text(b"\x00\x01\x02\xff\x00binary\x00\x00\x13", "f.txt")
    with pytest.raises(DocumentError, match="re-save it as UTF-8"):
        decode_text(codecs.BOM_UTF8 + b"\xff\xfe\xfd", "f.txt")


def test_empty_and_blank_files(tmp_path: Path) -> None:
    (tmp_path / "e.txt").write_bytes(b"")
    with pytest.raises(DocumentError, match="empty file"):
        read_document(tmp_path / "e.txt", "e.txt")
    (tmp_path / "b.txt").write_text(" \n\t\n", encoding="utf-8")
    with pytest.raises(DocumentError, match="no text"):
        read_document(tmp_path / "b.txt", "b.txt")


def test_missing_file_is_a_document_error(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="cannot be read"):
        read_document(tmp_path / "gone.txt", "gone.txt")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-32"])
def test_text_cap_cuts_cleanly_inside_multibyte_characters(tmp_path: Path, encoding: str) -> None:
    """Only the start of a big file is read; a character split by the cut is not an error."""
    path = tmp_path / "big.txt"
    path.write_bytes(("é€𝄞 " * 50_000).encode(encoding))
    raw = read_document(path, "big.txt", max_chars=1001)
    text = raw.pages[0].text
    assert len(text) == 1001 and set(text) <= set("é€𝄞 ")
    assert "--max-chars" in raw.truncated
    assert raw.content_hash == __import__("hashlib").sha256(path.read_bytes()).hexdigest()


def test_html_cut_at_the_byte_limit_is_noted(tmp_path: Path) -> None:
    path = tmp_path / "big.html"
    body = "<p>x</p><script>" + "s" * 5000 + "</script>" + "<p>visible</p>" * 10
    path.write_text(f"<html><body>{body}</body></html>", encoding="utf-8")
    raw = read_document(path, "big.html", max_chars=1000)
    assert raw.truncated and len(raw.pages[0].text) <= 1000
