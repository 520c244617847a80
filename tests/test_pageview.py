"""The excerpt around quoted sentences, and the PDF page drawn with the quote marked."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from qa import pageview

from conftest import make_pdf

QUOTE = "The Stockport project supported 420 families with a key worker."


def test_excerpt_is_the_quote_with_a_few_lines_around_it() -> None:
    lines = [f"Line {n} of filler text that runs on." for n in range(20)]
    lines[10] = QUOTE
    text = "\n".join(lines)
    start, end = pageview.excerpt_span(text, [QUOTE], lines=2)
    shown = text[start:end]
    assert QUOTE in shown
    assert shown.startswith("Line 8") and shown.endswith("Line 12 of filler text that runs on.")
    assert len(shown) < len(text) / 2


def test_excerpt_without_a_quote_is_the_opening_cut_at_a_word() -> None:
    text = "word " * 200
    start, end = pageview.excerpt_span(text, [], chars=100)
    assert start == 0 and 50 < end <= 100 and text[end] == " "


def test_quotes_are_found_despite_line_breaks_ligatures_and_case() -> None:
    page = "Intro.\r\nThe Stockport project sup-\r\nported 420 ﬁve families.\r\nOther text."
    (start, end), = pageview.find_quotes(page, ["the stockport project supported 420 five families."])
    assert page[start:end].startswith("The Stockport") and page[start:end].endswith("families")
    assert pageview.find_quotes(page, ["Nothing like this is on the page at all."]) == []


@pytest.fixture
def pdf(tmp_path: Path) -> Path:
    return make_pdf(tmp_path / "a.pdf", [f"Key workers in Stockport\n\n{QUOTE} Families said the key worker helped.",
                                         "Second page without the quote."])


def test_the_page_is_drawn_with_the_quote_marked(pdf: Path) -> None:
    from PIL import Image

    pageview.clear_cache()
    image = pageview.render_pdf_page(pdf, 1, [QUOTE], key="v1")
    picture = np.asarray(Image.open(io.BytesIO(image.png)).convert("RGB")).astype(int)
    assert picture.shape[:2] == (image.height, image.width)
    assert image.boxes
    x0, y0, x1, y1 = image.boxes[0]
    assert 0 <= x0 < x1 <= image.width and 0 <= y0 < y1 <= image.height / 3  # near the top, where the text is
    inside = picture[y0 + 2 : y1 - 2, x0 + 4 : x1 - 2].reshape(-1, 3)
    yellowish = (inside[:, 0] > 200) & (inside[:, 2] < 200)
    assert yellowish.mean() > 0.3
    plain = pageview.render_pdf_page(pdf, 2, [QUOTE], key="v1")
    assert not plain.boxes  # not on that page: nothing is marked
    untouched = np.asarray(Image.open(io.BytesIO(plain.png)).convert("RGB")).astype(int).reshape(-1, 3)
    assert not ((untouched[:, 0] > 240) & (untouched[:, 1] > 200) & (untouched[:, 2] < 180)).any()


def test_rendered_pages_are_cached_by_version(pdf: Path) -> None:
    pageview.clear_cache()
    first = pageview.render_pdf_page(pdf, 1, [QUOTE], key="v1")
    assert pageview.render_pdf_page(pdf, 1, [QUOTE], key="v1") is first
    assert pageview.render_pdf_page(pdf, 1, [QUOTE], key="v2") is not first


def test_a_page_the_file_does_not_have_is_an_error(pdf: Path) -> None:
    with pytest.raises(ValueError, match="no page 3"):
        pageview.render_pdf_page(pdf, 3, [QUOTE], key="v1")
