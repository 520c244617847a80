"""Cleaning: running lines, hyphenation, normalisation, inferred page labels and headings."""

from __future__ import annotations

from pathlib import Path

from qa.clean import (
    clean_document,
    clean_pages,
    find_headings,
    heading_text,
    infer_labels,
    normalise,
    rejoin_hyphenation,
    running_lines,
    title_heading,
    vocabulary,
)
from qa.readers import RawDocument, RawPage, read_document
from qa.records import Heading

from conftest import make_pdf

BODIES = [
    "Kinship carers said the training helped them plan for contact.",
    "Edge of care teams worked intensively with adolescents and their parents.",
    "Family group conferences were offered before any care proceedings began.",
    "Social workers had smaller caseloads and more time for direct work.",
    "Young people leaving care kept their personal adviser until twenty five.",
]


def _raw(pages: list[str], kind: str = "pdf", printed: bool = False, outline: tuple = ()) -> RawDocument:
    return RawDocument(
        rel_path="doc.pdf", kind=kind, content_hash="h",
        pages=tuple(RawPage(page=i + 1, label=str(i + 1), text=t, label_is_printed=printed) for i, t in enumerate(pages)),
        outline=outline,
    )


def test_running_header_and_footer_are_removed_page_by_page(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "r.pdf", BODIES, header="Evaluation of the Innovation Programme", footer="Page {n} of 5")
    raw = read_document(path, "r.pdf")
    assert all("Innovation Programme" in p.text for p in raw.pages)  # the header was really there
    pages, _ = clean_document(raw)
    assert len(pages) == len(BODIES)
    for i, page in enumerate(pages):
        assert "Innovation Programme" not in page.text
        assert "Page" not in page.text
        # Exactly this page's body is left: nothing dropped, nothing moved in from another page.
        assert " ".join(page.text.split()) == BODIES[i]


def test_running_lines_need_three_pages_and_a_majority() -> None:
    # Two pages: only a line that is first or last on both counts; one page has none.
    assert running_lines([["Running header", "a", "Page 1"], ["Running header", "b", "Page 2"]]) == {"running header", "page #"}
    assert running_lines([["Introduction", "a"], ["Findings", "Introduction"]]) == set()
    assert running_lines([["Header", "a"]]) == set()
    pages = [["Report title", "Chapter two"] + [f"body {'pqrstu'[i - 1]} line {w}" for w in "abcdefgh"] + [f"Page {i}"]
             for i in range(1, 7)]
    pages[3] = ["different", "middle", "end"]
    # On 5 of 6 pages: the title and page footer repeat, "chapter two" too; no body line reaches 3.
    assert running_lines(pages) == {"report title", "chapter two", "page #"}
    assert running_lines(pages, min_share=0.9) == set()


def test_a_repeated_line_in_the_middle_of_pages_is_kept() -> None:
    lines = [f"top {i}\nintro {i}\nfirst {i}\nsecond {i}\nsee also\nmore {i}\nmore {i}b\nmore {i}c\nbottom {i}" for i in range(5)]
    texts, _ = clean_pages([RawPage(page=i + 1, label="", text=t) for i, t in enumerate(lines)])
    assert all("see also" in t for t in texts)


def test_hyphenation_rejoined_using_the_document_vocabulary() -> None:
    words = vocabulary(["information is shared", "a multi-agency team", "wellbeing matters"])
    assert rejoin_hyphenation("the infor-\nmation was shared", words) == "the information\nwas shared"
    assert rejoin_hyphenation("the multi-\nagency team", words) == "the multi-agency\nteam"
    assert rejoin_hyphenation("short-\nand long-term aims", words) == "short- and\nlong-term aims"
    assert rejoin_hyphenation("well-\nbeing-related work", words) == "wellbeing-related\nwork"
    assert rejoin_hyphenation("unknown frag-\nments here", words) == "unknown frag-ments\nhere"
    # Without a vocabulary every break is joined.
    assert rejoin_hyphenation("infor-\nmation\nnext") == "information\nnext"
    # A capitalised next line is a new sentence or a name, not the rest of a word.
    assert rejoin_hyphenation("Leeds-\nBradford") == "Leeds-\nBradford"


def test_hyphenation_in_clean_pages_stays_on_its_page() -> None:
    pages = [
        RawPage(page=1, label="1", text="Sharing infor-\nmation early matters."),
        RawPage(page=2, label="2", text="The information was shared with the multi-\nagency team."),
        RawPage(page=3, label="3", text="Each multi-agency meeting was minuted."),
    ]
    texts, _ = clean_pages(pages)
    assert texts[0] == "Sharing information\nearly matters."
    assert texts[1] == "The information was shared with the multi-agency\nteam."


def test_nfkc_ligatures_and_odd_characters() -> None:
    assert normalise("\ufb01nding \ufb02ow e\ufb00ect") == "finding flow effect"
    assert normalise("co\u00adoperate") == "cooperate"
    assert normalise("a\u200bb\ufeffc") == "abc"
    assert normalise("\u2022 bullet\n\uf0b7 symbol bullet") == "- bullet\n- symbol bullet"
    assert normalise("  many \u00a0  spaces\t\there  ") == "many spaces here"
    assert normalise("line one\r\nline two\rline three") == "line one\nline two\nline three"
    assert normalise("bell\x07 and\x0c form feed") == "bell and form feed"
    assert normalise("e\u00ad\u0301") == normalise(normalise("e\u00ad\u0301")) == "\u00e9"


def test_infer_labels_from_offset_footer_numbers(tmp_path: Path) -> None:
    """No /PageLabels, but the footer prints 1 on the third physical page: labels follow the print."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_font("Helvetica", size=11)
    bodies = ["Cover of the report with its full title.", "Contents and a list of the chapters."] + BODIES
    for n, body in enumerate(bodies, start=1):
        pdf.add_page()
        pdf.set_xy(15, 30)
        pdf.multi_cell(180, 6, body)
        if n >= 3:
            pdf.set_xy(100, 280)
            pdf.cell(10, 6, str(n - 2))
    path = tmp_path / "offset.pdf"
    pdf.output(str(path))
    raw = read_document(path, "offset.pdf")
    assert not any(p.label_is_printed for p in raw.pages)
    pages, _ = clean_document(raw)
    assert [p.label for p in pages] == ["", "", "1", "2", "3", "4", "5"]
    assert all(not p.text.endswith(p.label) or not p.label for p in pages)  # the bare number is gone


def test_infer_labels_rules() -> None:
    assert infer_labels([None, None, 1, 2, 3, 4]) == ["", "", "1", "2", "3", "4"]
    assert infer_labels([1, 2, 3, 4]) is None  # same as physical numbers: nothing to infer
    assert infer_labels([None, 7, None, None, None, None, None, None]) is None  # one number is no pattern
    assert infer_labels([None] * 5) is None
    assert infer_labels([11, 12, 13, 99, 15]) == ["11", "12", "13", "14", "15"]


def test_a_lone_number_out_of_step_with_the_numbering_is_content() -> None:
    """Footer numbers run 3, 4, 5 ... from the first page; a table total of 48 ending page 2 stays."""
    pages = [f"{body}\n\n{n + 2}" for n, body in enumerate(BODIES, start=1)]
    pages[1] = f"{BODIES[1]}\nChildren supported in the year\n48\n\n4"
    pages[3] = f"Referrals by quarter\n17\n{BODIES[3]}\n\n6"
    texts, printed = clean_pages([RawPage(page=i + 1, label=str(i + 1), text=t) for i, t in enumerate(pages)])
    assert printed == [3, 4, 5, 6, 7]
    assert texts[1].endswith("in the year\n48") and "\n4" not in texts[1].replace("48", "")
    assert texts[3].startswith("Referrals by quarter\n17\n")
    for i in (0, 2, 4):
        assert texts[i] == BODIES[i]  # the real page numbers are gone
    # A number that is plainly a page number goes even out of step.
    texts, _ = clean_pages([RawPage(page=1, label="1", text="Page 9\nBody text of a one-page note.")])
    assert texts == ["Body text of a one-page note."]


def test_printed_labels_win_over_inferred_ones() -> None:
    raw = _raw([f"{body}\n\n{n + 20}" for n, body in enumerate(BODIES, start=1)], printed=True)
    pages, _ = clean_document(raw)
    assert [p.label for p in pages] == ["1", "2", "3", "4", "5"]


def test_text_documents_keep_their_single_label() -> None:
    pages, _ = clean_document(_raw(["# Notes\n\nSome text."], kind="md"))
    assert [p.label for p in pages] == ["1"]


def test_numbered_and_markdown_headings() -> None:
    text = "1. Introduction\nThe programme began in 2014.\n\n2.3 Findings on workforce\nCaseloads fell.\n# Markdown title\nBody."
    headings = find_headings(4, text)
    assert [h.text for h in headings] == ["1. Introduction", "2.3 Findings on workforce", "Markdown title"]
    for h in headings:
        assert h.page == 4
        assert text[h.offset:].startswith(("1. Introduction", "2.3 Findings", "# Markdown"))


def test_known_and_capitalised_headings() -> None:
    assert heading_text("Executive summary") == "Executive summary"
    assert heading_text("Recommendations:") == "Recommendations"
    assert heading_text("KEY FINDINGS FROM THE EVALUATION") == "Key Findings From The Evaluation"
    assert heading_text("Chapter 3: Outcomes for children") == "Chapter 3: Outcomes for children"
    assert heading_text("Summary.") is None


def test_ofsted_numbered_paragraphs_are_not_headings() -> None:
    text = (
        "6. Relationship-based practice is a clear feature of the work in Leeds, children\n"
        "are allocated a social worker in a timely way and, wherever possible, they\n"
        "remain with the same social worker.\n\n"
        "1. Children and families benefit from a well-established and well-resourced\n"
        "\u2018cluster\u2019 model of early help which appropriately meets needs.\n\n"
        "3. Leeds local authority have well-established multi-agency arrangements at the\n"
        "\u2018front door\u2019. These have replaced thresholds.\n\n"
        "7. Assessments seen were generally of a good quality and were detailed\n"
        "They were timely.\n"
    )
    assert find_headings(1, text) == []


def test_a_numbered_paragraph_whose_first_line_fills_the_width_is_not_a_heading() -> None:
    body = [
        "The inspection considered the experiences of children and young people who",
        "need help and protection, and the quality of the work of the local authority",
        "with partner agencies in the area during the four weeks of the inspection.",
    ]
    text = "\n".join([
        *body,
        "81. Joint work between the Family Court Division and the Children and Family",
        "Court Advisory and Support Service is effective and has reduced delays.",
        *body,
        "6.2 Findings on placements",
        *body,
    ])
    assert [h.text for h in find_headings(3, text)] == ["6.2 Findings on placements"]


def test_contents_page_lines_are_not_headings() -> None:
    contents = (
        "Contents\n"
        "1. Executive summary 5\n"
        "Background 5\n"
        "2. Background and context 12\n"
        "Introduction ........................ 3\n"
        "3.1 Method .... 14\n"
    )
    assert [h.text for h in find_headings(2, contents)] == ["Contents"]


def test_footnotes_at_the_foot_of_a_long_page_are_not_headings() -> None:
    body = "\n".join(f"Line {i} of the body text, which goes on for a while." for i in range(14))
    text = "2. Methods\n" + body + "\n7 Wave 1 case study areas: Dorset and Lincolnshire"
    assert [h.text for h in find_headings(1, text)] == ["2. Methods"]


def test_outline_names_headings_even_over_two_lines() -> None:
    outline = {"3 early perceptions understanding and buy in to the ffcp", "what worked well"}
    text = "3. Early perceptions, understanding and buy-in to the\nFFCP\nBody text here.\nWhat worked well\nmore text"
    headings = find_headings(9, text, outline)
    assert [h.text for h in headings] == ["3. Early perceptions, understanding and buy-in to the FFCP", "What worked well"]
    assert headings[0].offset == 0
    assert text[headings[1].offset:].startswith("What worked well")


def test_clean_document_headings_follow_pages() -> None:
    raw = _raw(["1. Introduction\nText on page one.", "Body of page two.\n2. Findings\nText."])
    pages, headings = clean_document(raw)
    assert [(h.page, h.text) for h in headings] == [(1, "1. Introduction"), (2, "2. Findings")]
    for h in headings:
        assert pages[h.page - 1].text[h.offset:].startswith(h.text)


def test_a_title_comes_from_a_heading_naming_the_document() -> None:
    generic = [Heading(1, 0, "Contents"), Heading(2, 0, "Executive summary"), Heading(2, 40, "1. Introduction")]
    assert title_heading(generic) == ""
    named = [Heading(1, 0, "Contents"), Heading(2, 0, "Evaluation of the Leeds family valued programme")]
    assert title_heading(named) == "Evaluation of the Leeds family valued programme"
    late = [Heading(1, 0, "Table of contents"), Heading(5, 0, "Residential care in Leeds")]
    assert title_heading(late) == ""  # a heading deep inside names a part, not the document


def test_hyphenation_is_linear_in_a_long_run_of_word_characters() -> None:
    """A 200,000-character "word" used to cost minutes (each position rescanned the run); now one pass."""
    from qa.clean import rejoin_hyphenation

    word = "a" * 200_000
    assert rejoin_hyphenation(word) == word
    assert rejoin_hyphenation(word + " infor-\nmation here") == word + " information\nhere"
    assert rejoin_hyphenation("x" * 100_000 + "-\nfoo bar") == "x" * 100_000 + "foo\nbar"
