"""Text, Markdown and HTML documents read into pages cut at their sections.

Each page is an exact slice of the document text (nothing lost or repeated),
starts at a heading or at a paragraph break of a long section, and cleaning
and chunking then give every passage the heading of its own text.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from qa.chunking import ChunkSettings, approximate_tokens, chunk_document
from qa.clean import clean_document, title_heading
from qa.ingest import parse_file
from qa.readers import PAGE_CHARS, read_document, text_headings, text_pages

from conftest import SHARED

SEED = SHARED / "seeds" / "000_faf52dcf25dc814f.txt"
PARAGRAPH = ("Edge of care teams worked with adolescents and their families over several months, "
             "and social workers kept their caseloads small enough to visit every week. ")


def _sections(raw_text: str, name: str, tmp_path: Path) -> list[tuple[int, str, str]]:
    """(page, section, chunk text) of every chunk of a file read, cleaned and chunked."""
    path = tmp_path / name
    path.write_text(raw_text, encoding="utf-8")
    parsed = parse_file(str(path), name, None, ChunkSettings(), None, 5000, 1_000_000)
    return [(c.page, c.section, c.text) for c in parsed.chunks]


# --- pages are exact slices -------------------------------------------------------------------

_block = st.one_of(
    st.builds(lambda level, words: "#" * level + " " + " ".join(words).title(),
              st.integers(1, 4),
              st.lists(st.sampled_from(["care", "leavers", "findings", "cost", "Leeds"]), min_size=1, max_size=5)),
    st.builds(lambda n, word: (word + " " + PARAGRAPH) * n, st.integers(1, 30), st.sampled_from(["Kinship", "Fostering", "A"])),
    st.sampled_from(["Systemic practice", "WHAT WORKS", "```", "- a list item", "Photo: somebody", "Title\n=====", "", "   "]),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=400),
)


@settings(max_examples=150, deadline=None)
@given(blocks=st.lists(_block, max_size=25), kind=st.sampled_from(["txt", "md", "html"]),
       separator=st.sampled_from(["\n\n", "\n", "\n\n\n"]), limit=st.sampled_from([300, 1000, PAGE_CHARS]))
def test_pages_put_together_are_the_text(blocks: list[str], kind: str, separator: str, limit: int) -> None:
    text = separator.join(blocks)
    pages, outline = text_pages(text, kind, limit)
    assert "".join(p.text for p in pages) == text
    assert [p.page for p in pages] == list(range(1, len(pages) + 1))
    assert [p.label for p in pages] == [str(p.page) for p in pages]
    assert all(len(p.text) <= limit for p in pages)
    assert all(p.text for p in pages) or text == ""
    assert [page for page, _ in outline] == sorted(page for page, _ in outline)
    assert all(1 <= page <= len(pages) for page, _ in outline)
    assert all(heading in pages[page - 1].text for page, heading in outline)


@settings(max_examples=100, deadline=None)
@given(sizes=st.lists(st.integers(0, 40), min_size=1, max_size=8))
@example(sizes=[0, 19])  # an empty section before one that just fits: sharing its page would cut it
def test_pages_hold_whole_sections_up_to_the_page_size(sizes: list[int]) -> None:
    """A page starts at a heading and holds whole sections while they fit; only a long section is split."""
    parts = [f"## Section {i}\n\n" + PARAGRAPH * n for i, n in enumerate(sizes)]
    text = "\n".join(parts)
    pages, _ = text_pages(text, "md")
    assert "".join(p.text for p in pages) == text
    bounds = [0]
    for page in pages:
        bounds.append(bounds[-1] + len(page.text))
    start = 0
    for part in parts:  # a section that fits on a page is never cut
        if len(part) <= PAGE_CHARS:
            assert not any(start < b < start + len(part) for b in bounds), part[:14]
        start += len(part) + 1


def test_short_documents_stay_one_page(tmp_path: Path) -> None:
    (tmp_path / "note.txt").write_text("Plain notes about leaving care.\nA second line.\n", encoding="utf-8")
    (tmp_path / "note.md").write_text("# Notes\n\nSome notes about kinship care.\n", encoding="utf-8")
    for name in ("note.txt", "note.md"):
        raw = read_document(tmp_path / name, name)
        assert len(raw.pages) == 1 and raw.pages[0].text == (tmp_path / name).read_text(encoding="utf-8")


def test_a_long_section_is_cut_at_paragraph_breaks_near_the_page_size() -> None:
    paragraphs = [f"Paragraph {i}. " + PARAGRAPH * 3 for i in range(30)]
    text = "# Findings\n\n" + "\n\n".join(paragraphs) + "\n"
    pages, outline = text_pages(text, "md")
    assert len(pages) >= len(text) // PAGE_CHARS
    assert all(PAGE_CHARS // 3 <= len(p.text) <= PAGE_CHARS for p in pages)
    for page in pages[:-1]:
        assert page.text.endswith("\n\n")  # cut at a paragraph break, not inside one
    for page in pages[1:]:
        assert page.text.startswith("Paragraph ")
    assert outline == ((1, "Findings"),)


def test_a_section_without_paragraphs_is_cut_at_sentences() -> None:
    text = "Findings\n\n" + "One sentence about caseloads fell. " * 300
    pages, _ = text_pages(text, "txt")
    assert len(pages) > 1 and "".join(p.text for p in pages) == text
    for page in pages[:-1]:
        assert page.text.endswith(". ")


def test_windows_line_ends_read_as_plain_line_ends(tmp_path: Path) -> None:
    (tmp_path / "w.md").write_bytes(b"# One\r\n\r\n" + PARAGRAPH.encode() + b"\r\n\r\n## Two\r\n\r\nMore text here.\r\n")
    raw = read_document(tmp_path / "w.md", "w.md")
    assert "".join(p.text for p in raw.pages) == "# One\n\n" + PARAGRAPH + "\n\n## Two\n\nMore text here.\n"
    assert [p.text.split("\n")[0] for p in raw.pages] == ["# One"]  # two short sections share a page
    assert [title for _, title in raw.outline] == ["One", "Two"]


def test_character_cap_applies_before_the_cut_into_pages(tmp_path: Path) -> None:
    (tmp_path / "long.md").write_text(("## Part\n\n" + PARAGRAPH * 20 + "\n\n") * 10, encoding="utf-8")
    raw = read_document(tmp_path / "long.md", "long.md", max_chars=5000)
    assert sum(len(p.text) for p in raw.pages) == 5000 and len(raw.pages) >= 2
    assert "--max-chars" in raw.truncated


# --- headings ---------------------------------------------------------------------------------

def test_markdown_headings_fences_and_underlines() -> None:
    text = ("Report title\n============\n\nIntro.\n\n## Method ##\n\nText.\n\n```\n# not a heading\n```\n\n"
            "Results\n-------\n\nMore.\n\n- a list item\n---\n")
    found = [(h.text, text[h.offset:].split("\n")[0]) for h in text_headings(text, "md")]
    assert found == [("Report title", "Report title"), ("Method", "## Method ##"), ("Results", "Results")]


def test_plain_text_headings_are_stand_alone_title_lines() -> None:
    text = (
        "Councils need more time, evaluation says\n\n"
        "Photo: Somebody/Agency\n\n"
        "The evaluation found that all projects which had intended\n"
        "to reduce caseloads had done so.\n\n"
        "Other findings that led to improvements were:\n\n"
        "Systemic practice\n\n"
        "The report said improvements came from systemic practice.\n\n"
        "  1. commenter November 17, 2017 at 10:44 am #\n\n"
        "2 What the report recommended\n\n"
        "It recommended more time.\n\n"
        "Findings of the\n\n"
        "Page 4\n\n"
        "Table 2 Referrals by council\n\n"
        "Short line ending in a full stop.\n"
    )
    found = [h.text for h in text_headings(text, "txt")]
    assert found == ["Councils need more time, evaluation says", "Systemic practice", "2 What the report recommended"]
    # Markdown and HTML text do not guess: only their marked headings count.
    assert text_headings(text, "md") == [] and text_headings(text, "html") == []


def test_each_chunk_is_cited_to_the_section_its_text_is_in(tmp_path: Path) -> None:
    """The section of a passage is the heading above its own text, never a later one."""
    sections = ["1 What deregulation means", "2 Why projects were slow", "3 What could be said", "4 Further reading"]
    text = "# Sample briefing\n\nAn introduction. " + PARAGRAPH + "\n\n" + "\n\n".join(
        f"## {title}\n\n" + f"Body of part {title[0]}. " + PARAGRAPH * 3 for title in sections
    )
    chunks = _sections(text, "brief.md", tmp_path)
    assert {section for _, section, _ in chunks} >= set(sections)
    for _, section, chunk_text in chunks:
        if "An introduction." in chunk_text:  # a short opening joins the section after it
            assert section in ("Sample briefing", sections[0])
        for title in sections:
            if f"Body of part {title[0]}." in chunk_text:
                assert section == title


def test_continuation_pages_keep_their_section(tmp_path: Path) -> None:
    words = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", "May", "June", "July",
             "August", "Autumn"]
    body = "\n\n".join(f"The {word} visit was recorded. " + PARAGRAPH * 4 for word in words)
    text = "Leaving care\n\n" + body + "\n\nStaying close\n\n" + PARAGRAPH
    chunks = _sections(text, "notes.txt", tmp_path)
    pages = sorted({page for page, _, _ in chunks})
    assert len(pages) >= 3
    last = pages[-1]
    assert {section for page, section, _ in chunks if page != last} == {"Leaving care"}
    assert {section for page, section, _ in chunks if page == last} == {"Staying close"}
    assert all(f"The {word} visit was recorded." in " ".join(c for _, _, c in chunks) for word in words)


@pytest.mark.parametrize("name", ["deregulation-needs-more-time.md", "wave-1-recommendations.md",
                                  "where-to-find-the-official-reports.md", "article.txt"])
def test_cleaning_keeps_every_line_of_real_text_documents(name: str) -> None:
    """Cleaning looks for running headers and page numbers at page edges; text pages have none to lose."""
    path = SEED if name == "article.txt" else Path(__file__).resolve().parents[1] / "corpus" / name
    if not path.is_file():
        pytest.skip(f"needs {path} (absent in this checkout)")
    raw = read_document(path, name)
    pages, headings = clean_document(raw)
    for raw_page, page in zip(raw.pages, pages, strict=True):
        kept = [line.strip() for line in page.text.split("\n") if line.strip()]
        assert len(kept) == len([line for line in raw_page.text.split("\n") if line.strip()])
    assert [h.text for h in headings] == [title for _, title in raw.outline]


def test_headings_alike_but_for_a_number_survive_cleaning(tmp_path: Path) -> None:
    body = PARAGRAPH * (PAGE_CHARS // 2 // len(PARAGRAPH) + 1)  # two parts do not fit on one page
    text = "\n\n".join(f"## Part {i}\n\nFinding number {i}. {body}\n\nSee the table below." for i in range(1, 5))
    (tmp_path / "parts.md").write_text(text, encoding="utf-8")
    raw = read_document(tmp_path / "parts.md", "parts.md")
    assert len(raw.pages) == 4
    pages, headings = clean_document(raw)
    assert [h.text for h in headings] == [f"Part {i}" for i in range(1, 5)]
    assert all("See the table below." in page.text for page in pages)


# --- the news article -------------------------------------------------------------------------

@pytest.mark.shared
def test_news_article_reads_into_several_sections(tmp_path: Path) -> None:
    if not SEED.is_file():
        pytest.skip(f"needs the news article at {SEED} (absent in this checkout)")
    raw = read_document(SEED, "seeds/article.txt")
    text = SEED.read_text(encoding="utf-8").replace("\r\n", "\n")
    assert "".join(p.text for p in raw.pages) == text
    assert len(raw.pages) >= 2 and all(len(p.text) <= PAGE_CHARS for p in raw.pages)
    pages, headings = clean_document(raw)
    assert title_heading(headings).startswith("\u2018Deregulation\u2019 in children\u2019s social work")
    chunks = chunk_document(pages, headings, ChunkSettings(), approximate_tokens)
    by_page: dict[int, set[str]] = {}
    for chunk in chunks:
        by_page.setdefault(chunk.page, set()).add(chunk.section)
    assert set(by_page) == {p.page for p in raw.pages}
    assert all(sections and "" not in sections for sections in by_page.values())
    quoted = {c.section for c in chunks if "Cardiff University would be the research partner" in c.text}
    assert quoted == {"What Works Centre"}
    quoted = {c.section for c in chunks if "Co-located multi-professional teams" in c.text}
    assert quoted == {"Systemic practice"}
