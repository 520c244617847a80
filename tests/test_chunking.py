"""Chunking: exact page offsets, no chunk across pages, sizes within the model's limit."""

from __future__ import annotations

import pytest

from qa.chunking import ChunkSettings, approximate_tokens, chunk_document, embedding_text, file_words, token_counter
from qa.records import Heading, Page

MODEL_WORD_PIECES = 256  # all-MiniLM-L6-v2 truncates past this, special tokens included


def _tokenizer_file() -> str:
    from qa.embed import bundled_model_dir

    try:
        path = bundled_model_dir() / "tokenizer.json"
    except Exception as exc:  # the bundled model package is not installed
        pytest.skip(f"the bundled model is not installed: {exc}")
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    return str(path)


def _pages() -> list[Page]:
    para = (
        "The evaluation found that caseloads fell in most projects. Social workers said they had more time "
        "for direct work with families, and managers reported lower agency staff costs. "
    )
    return [
        Page("r.pdf", 1, "i", "Executive summary\n\n" + para * 12),
        Page("r.pdf", 2, "ii", "1. Introduction\n" + para * 3 + "\n\n2. Methods\n" + para * 5),
        Page("r.pdf", 3, "1", "A short page."),
        Page("r.pdf", 4, "2", ""),
        Page("r.pdf", 5, "3", "Données café – naïve résumé “quoted” text\u00a0with odd spaces " * 30),
    ]


def _headings(pages: list[Page]) -> list[Heading]:
    out = [Heading(1, 0, "Executive summary"), Heading(2, 0, "1. Introduction")]
    methods = pages[1].text.index("2. Methods")
    out.append(Heading(2, methods, "2. Methods"))
    return out


@pytest.mark.parametrize("counter_kind", ["approximate", "model"])
def test_offsets_are_exact_and_chunks_stay_on_their_page(counter_kind: str) -> None:
    count = approximate_tokens if counter_kind == "approximate" else token_counter(_tokenizer_file())
    pages = _pages()
    settings = ChunkSettings(chunk_tokens=60, overlap_tokens=10)
    chunks = chunk_document(pages, _headings(pages), settings, count)
    by_page = {p.page: p for p in pages}
    assert chunks
    for chunk in chunks:
        page = by_page[chunk.page]
        assert page.text[chunk.start : chunk.end] == chunk.text
        assert chunk.page_label == page.label and chunk.doc_id == page.doc_id
        assert chunk.text.strip() == chunk.text and chunk.text
    assert {c.page for c in chunks} == {1, 2, 3, 5}  # the empty page has none


def test_chunks_never_exceed_the_limit_in_model_word_pieces() -> None:
    count = token_counter(_tokenizer_file())
    settings = ChunkSettings()
    pages = _pages()
    chunks = chunk_document(pages, _headings(pages), settings, count)
    for chunk in chunks:
        assert count(chunk.text) <= settings.chunk_tokens
        embedded = embedding_text(chunk, "A long document title " * 20, settings)
        assert count(embedded) + 2 <= MODEL_WORD_PIECES, "title and section context must not push text past the model"


def test_default_chunk_and_context_fit_the_model_window() -> None:
    s = ChunkSettings()
    # context_chars of context is at most about one word piece per character / 3, plus the separator
    assert s.chunk_tokens + s.context_chars // 3 + 1 + 2 <= MODEL_WORD_PIECES
    assert 0 <= s.overlap_tokens < s.chunk_tokens


def test_sections_follow_headings_and_carry_over_pages() -> None:
    pages = _pages()
    chunks = chunk_document(pages, _headings(pages), ChunkSettings(chunk_tokens=60, overlap_tokens=10), approximate_tokens)
    first = [c for c in chunks if c.page == 1]
    assert all(c.section == "Executive summary" for c in first)
    methods_at = pages[1].text.index("2. Methods")
    for c in (c for c in chunks if c.page == 2):
        assert c.section == ("2. Methods" if c.start >= methods_at else "1. Introduction")
        assert not (c.start < methods_at < c.end - 20), "a chunk should not straddle two sections"
    assert all(c.section == "2. Methods" for c in chunks if c.page in (3, 5))


def test_a_contents_page_does_not_become_the_section_of_later_pages() -> None:
    pages = [
        Page("r.pdf", 1, "i", "Contents\nIntroduction 1\nFindings 4"),
        Page("r.pdf", 2, "ii", "List of figures\nFigure 1 Referrals 3"),
        Page("r.pdf", 3, "1", "The programme funded projects in many local authorities."),
        Page("r.pdf", 4, "2", "Findings\nCaseloads fell in most projects."),
        Page("r.pdf", 5, "3", "Managers reported lower agency staff costs."),
    ]
    headings = [Heading(1, 0, "Contents"), Heading(2, 0, "List of figures"), Heading(4, 0, "Findings")]
    chunks = chunk_document(pages, headings, ChunkSettings(min_section_tokens=1), approximate_tokens)
    sections = {c.page: c.section for c in chunks}
    assert sections == {1: "Contents", 2: "List of figures", 3: "", 4: "Findings", 5: "Findings"}


def test_chunks_come_in_reading_order_even_in_repeated_text() -> None:
    page = Page("r.txt", 1, "1", ("same words again " * 40).strip())
    chunks = chunk_document([page], [], ChunkSettings(chunk_tokens=20, overlap_tokens=5), approximate_tokens)
    starts = [c.start for c in chunks]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    assert chunks[-1].end == len(page.text)


def test_embedding_text_prefixes_title_and_section() -> None:
    pages = _pages()
    chunk = chunk_document(pages, _headings(pages), ChunkSettings(), approximate_tokens)[0]
    text = embedding_text(chunk, "Wave 1 report", ChunkSettings())
    assert text == f"Wave 1 report - Executive summary\n{chunk.text}"
    assert embedding_text(chunk, "", ChunkSettings(context_chars=10)) == f"Executive \n{chunk.text}"


def test_file_words() -> None:
    assert file_words("corpus/ofsted-leeds_ilacs-2018.pdf") == "ofsted leeds ilacs 2018"
    assert file_words("notes") == "notes"
    assert file_words("corpus/adcs-pressures-phase9_v2a.pdf") == "adcs pressures phase 9 v 2 a"


def test_repetitive_page_is_chunked_with_exact_offsets() -> None:
    """Two megabytes of one repeated word: every chunk sits where it says (locating was quadratic)."""
    text = "placement " * 200_000
    page = Page(doc_id="d", page=1, label="1", text=text.strip())
    chunks = chunk_document([page], [], ChunkSettings(), approximate_tokens)
    assert len(chunks) > 100
    assert all(page.text[c.start:c.end] == c.text for c in chunks)
    assert max(c.end for c in chunks) == len(page.text)
