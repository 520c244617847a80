"""Property-based tests: the cleaner, the chunker and FTS query quoting hold for any input."""

from __future__ import annotations

import re
import sqlite3
import string

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from qa.chunking import ChunkSettings, approximate_tokens, chunk_document
from qa.clean import clean_document, clean_pages, find_headings, normalise, rejoin_hyphenation, vocabulary
from qa.readers import RawDocument, RawPage
from qa.records import Page
from qa.retrieve import fts_query

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text with the characters that cause trouble: ligatures, soft hyphens, combining marks,
# odd spaces and line breaks, controls, private-use bullets, surrogates excluded.
tricky = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8", exclude_categories=["Cs"]),
        st.sampled_from(list("\ufb01\ufb02\u00ad\u0301\u0308\u00a0\u2003\u200b\ufeff\r\n\t\x0c\uf0b7\u2022- ")),
    ),
    max_size=200,
)
words = st.one_of(st.sampled_from(["care", "Care", "children", "families", "infor", "mation", "multi", "agency", "Leeds"]),
                  st.text(alphabet=string.ascii_letters, min_size=1, max_size=10))
line = st.lists(st.one_of(words, st.sampled_from(["-", "1.", "2", "and", "the", "Page 3", "#", "•"])),
                min_size=0, max_size=12).map(" ".join)
page_text = st.lists(line, min_size=0, max_size=14).map("\n".join)


@FAST
@given(tricky)
@example("e\u00ad\u0301")
@example("\u1100\u200b\u1161")
def test_normalise_is_idempotent(text: str) -> None:
    once = normalise(text)
    assert normalise(once) == once


@FAST
@given(tricky)
def test_normalise_leaves_no_controls_or_edge_spaces(text: str) -> None:
    out = normalise(text)
    assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\r\t]", out)
    for piece in out.split("\n"):
        assert piece == piece.strip()
        assert "  " not in piece


def _squash(text: str) -> str:
    """Letters and digits only: what must survive cleaning, in order."""
    return re.sub(r"[\W_]+", "", text)


def _is_subsequence(small: str, big: str) -> bool:
    it = iter(big)
    return all(ch in it for ch in small)


@FAST
@given(st.lists(page_text, min_size=1, max_size=7), st.sampled_from(["Annual report", "Report 2016 - DfE", ""]))
def test_cleaning_never_moves_text_between_pages(bodies: list[str], header: str) -> None:
    """Each cleaned page is made only of its own raw page's characters, in order."""
    raws = [RawPage(page=i + 1, label=str(i + 1), text=(f"{header}\n" if header else "") + body + f"\n{i + 1}")
            for i, body in enumerate(bodies)]
    texts, printed = clean_pages(raws)
    assert len(texts) == len(raws) == len(printed)
    for raw, cleaned in zip(raws, texts, strict=True):
        assert _is_subsequence(_squash(cleaned), _squash(normalise(raw.text)))


@FAST
@given(st.lists(st.lists(words, min_size=1, max_size=8).map(" ".join), min_size=3, max_size=6))
def test_page_bodies_survive_header_and_footer_removal(middles: list[str]) -> None:
    """Lines in the middle of a page (not at its edges) are never removed, whatever they say."""
    raws = [RawPage(page=i + 1, label="", text=f"Running head\nA\nB\nC\nmiddle {w}\nD\nE\nF\nPage {i + 1}")
            for i, w in enumerate(middles)]
    texts, printed = clean_pages(raws)
    for i, text in enumerate(texts):
        lines = text.split("\n")
        assert "Running head" not in lines and f"Page {i + 1}" not in lines
        assert f"middle {middles[i]}" in lines
    assert printed == list(range(1, len(raws) + 1))


@FAST
@given(page_text)
def test_hyphen_rejoining_keeps_every_letter(text: str) -> None:
    out = rejoin_hyphenation(text, vocabulary([text]))
    assert _squash(out) == _squash(text)


def _pages(texts: list[str]) -> list[Page]:
    return [Page(doc_id="d.txt", page=i + 1, label=str(i + 1), text=t) for i, t in enumerate(texts)]


def _chunked(texts: list[str], size: int) -> tuple[list[Page], list]:
    raw = RawDocument(rel_path="d.txt", kind="txt", content_hash="h",
                      pages=tuple(RawPage(page=i + 1, label=str(i + 1), text=t) for i, t in enumerate(texts)))
    pages, headings = clean_document(raw)
    chunk_settings = ChunkSettings(chunk_tokens=size, overlap_tokens=size // 5, min_section_tokens=10)
    return pages, chunk_document(pages, headings, chunk_settings, approximate_tokens)


page_lists = st.lists(st.lists(line, min_size=0, max_size=40).map("\n".join), min_size=1, max_size=4)
sizes = st.integers(min_value=20, max_value=120)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(page_lists, sizes)
def test_chunk_offsets_point_at_the_chunk_text(texts: list[str], size: int) -> None:
    """Every chunk is an exact, trimmed, non-empty span of one page, and pages come in order."""
    pages, chunks = _chunked(texts, size)
    by_page = {p.page: p for p in pages}
    for chunk in chunks:
        page = by_page[chunk.page]
        assert page.text[chunk.start:chunk.end] == chunk.text
        assert chunk.text and chunk.text.strip() == chunk.text
        assert chunk.page_label == page.label
    assert [c.page for c in chunks] == sorted(c.page for c in chunks)
    # Every visible character of the page appears in some chunk's text.
    for page in pages:
        text_of_chunks = " ".join(c.text for c in chunks if c.page == page.page)
        assert set(_squash(page.text)) <= set(_squash(text_of_chunks))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(page_lists, sizes)
@example(["A A A A A A A A A\nA 1. A A A A 1. A A\nA"], 20)
def test_chunks_cover_every_page_in_order(texts: list[str], size: int) -> None:
    """Chunk offsets cover every non-whitespace character of each page, in reading order."""
    pages, chunks = _chunked(texts, size)
    covered = {p.page: [False] * len(p.text) for p in pages}
    last = (0, -1)
    for chunk in chunks:
        assert (chunk.page, chunk.start) > last  # reading order
        last = (chunk.page, chunk.start)
        for i in range(chunk.start, chunk.end):
            covered[chunk.page][i] = True
    for page in pages:
        missing = [i for i, ch in enumerate(page.text) if not ch.isspace() and not covered[page.page][i]]
        assert not missing, f"page {page.page}: {page.text[missing[0]:missing[0] + 30]!r} is in no chunk"


@FAST
@given(page_text)
def test_heading_offsets_point_at_their_line(text: str) -> None:
    for heading in find_headings(1, text):
        assert heading.offset == 0 or text[heading.offset - 1] == "\n"
        line_at = text[heading.offset:].split("\n", 1)[0]
        assert heading.text.lstrip("#").strip().lower() in line_at.lower() or line_at.lower() in heading.text.lower()


_DB = sqlite3.connect(":memory:", check_same_thread=False)
_DB.execute("CREATE VIRTUAL TABLE t USING fts5(text, section, title, tokenize = 'porter unicode61 remove_diacritics 2')")
_DB.execute("INSERT INTO t (text, section, title) VALUES ('kinship carers and foster care', 'Findings', 'Report')")


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=120))
@example('" OR AND NOT NEAR( * ^ - : col:x "unterminated')
@example("text:foo section:bar {a b}")
@example("NEAR(kinship carers, 2)")
@example("ǅ ǲ ﬁ İ ß 𝔘𝔫𝔦")
def test_fts_query_never_breaks_a_match(question: str) -> None:
    match = fts_query(question)
    assume(match is not None)
    _DB.execute("SELECT rowid FROM t WHERE t MATCH ? ORDER BY rank", (match,)).fetchall()


def test_fts_query_finds_what_it_should() -> None:
    match = fts_query("What did kinship carers say?")
    assert match is not None
    assert _DB.execute("SELECT rowid FROM t WHERE t MATCH ?", (match,)).fetchall() == [(1,)]
