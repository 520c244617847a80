"""Where a quote sits: a short excerpt around the quoted sentences, and the PDF page with them marked.

pypdf stays the text reader; pypdfium2 only draws a page and tells where its
characters are, so the quoted sentences can be found on the page and boxed.
Matching ignores case, spacing, punctuation and ligatures (the index holds
cleaned text; PDFium reports the raw characters). PDFium is not thread-safe,
so every call into it holds one lock, and rendered pages are cached.
"""

from __future__ import annotations

import io
import logging
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .text import find_spans

log = logging.getLogger(__name__)

_PDFIUM_LOCK = threading.Lock()
_CACHE: OrderedDict[tuple, PageImage] = OrderedDict()
_CACHE_SIZE = 64
HIGHLIGHT = (255, 214, 0)  # a yellow fill...
OUTLINE = (160, 82, 0)  # ...with a dark outline, so the mark does not rely on colour alone

# --- the excerpt around the quoted sentences -------------------------------------------------

def excerpt_span(text: str, sentences: Sequence[str], lines: int = 2, chars: int = 320) -> tuple[int, int]:
    """The span of ``text`` to show: the quoted sentences and a few lines around them.

    Without a quoted sentence in the text (a weak match), the opening ``chars``
    characters, cut at a line or word end.
    """
    spans = find_spans(text, sentences)
    if not spans:
        end = min(len(text), chars)
        if end < len(text):
            cut = max(text.rfind("\n", 0, end), text.rfind(" ", 0, end))
            end = cut if cut > chars // 2 else end
        return 0, end
    start, end = spans[0][0], spans[-1][1]
    for _ in range(lines):  # back over `lines` line breaks, but not further than `chars`
        prev = text.rfind("\n", 0, max(0, start - 1))
        if prev < 0 or spans[0][0] - prev > chars:
            start = 0 if spans[0][0] <= chars and prev < 0 else start
            break
        start = prev + 1
    for _ in range(lines):
        nxt = text.find("\n", end + 1)
        if nxt < 0 or nxt - spans[-1][1] > chars:
            end = len(text) if len(text) - spans[-1][1] <= chars and nxt < 0 else end
            break
        end = nxt
    return start, end

# --- finding quotes on a PDF page --------------------------------------------------------------

def _fold(text: str) -> tuple[str, list[int]]:
    """Letters and digits only, case-folded, with the index in ``text`` each kept character came from."""
    kept: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        for c in unicodedata.normalize("NFKC", ch).casefold():
            if c.isalnum():
                kept.append(c)
                where.append(i)
    return "".join(kept), where

def find_quotes(page_text: str, quotes: Sequence[str]) -> list[tuple[int, int]]:
    """(start, end) character ranges of each quote in ``page_text``, compared on letters and digits only.

    A quote that is not found whole (a line the reader ordered differently) is
    looked for in halves, so at least the part that is there gets marked.
    """
    folded, where = _fold(page_text)
    found: list[tuple[int, int]] = []

    def locate(target: str) -> bool:
        if len(target) < 12:
            return False
        hit = folded.find(target)
        if hit < 0:
            return False
        found.append((where[hit], where[hit + len(target) - 1] + 1))
        return True

    for quote in quotes:
        target = _fold(quote)[0]
        if not locate(target):
            half = len(target) // 2
            locate(target[:half])
            locate(target[half:])
    return sorted(found)

@dataclass(frozen=True)
class PageImage:
    """A rendered page: PNG bytes, its size, and the boxes drawn (in pixels), one per marked line."""

    png: bytes
    width: int
    height: int
    boxes: tuple[tuple[int, int, int, int], ...]

def render_pdf_page(path: Path, page: int, quotes: Sequence[str], *, key: str = "", scale: float = 1.5) -> PageImage:
    """Physical page ``page`` (1-based) of the PDF at ``path`` as PNG, with ``quotes`` boxed in yellow.

    ``key`` (the document's content hash) names the cache entry, so a changed
    file is drawn again. Raises ``ValueError`` for a page the file does not have.
    """
    cache_key = (key or str(path), page, tuple(quotes), scale)
    with _PDFIUM_LOCK:
        if cache_key in _CACHE:
            _CACHE.move_to_end(cache_key)
            return _CACHE[cache_key]
        image = _render(path, page, quotes, scale)
        _CACHE[cache_key] = image
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
        return image

def _render(path: Path, page: int, quotes: Sequence[str], scale: float) -> PageImage:
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c
    from PIL import Image, ImageDraw

    pdf = pdfium.PdfDocument(str(path))
    try:
        if not 1 <= page <= len(pdf):
            raise ValueError(f"{path.name} has no page {page}")
        pdf_page = pdf[page - 1]
        textpage = pdf_page.get_textpage()
        n = textpage.count_chars()
        text = "".join(chr(pdfium_c.FPDFText_GetUnicode(textpage.raw, i) or 32) for i in range(n))
        rects: list[tuple[float, float, float, float]] = []
        for start, end in find_quotes(text, quotes):
            for i in range(textpage.count_rects(start, end - start)):
                rects.append(textpage.get_rect(i))
        bitmap = pdf_page.render(scale=scale)
        base = bitmap.to_pil().convert("RGB")
        left, top = 0.0, float(pdf_page.get_height())  # page space: origin bottom left (the box getters miss inherited boxes)
        boxes = []
        for x0, y0, x1, y1 in rects:
            box = (int((x0 - left) * scale) - 2, int((top - y1) * scale) - 2,
                   int((x1 - left) * scale) + 2, int((top - y0) * scale) + 2)
            boxes.append(box)
        if boxes:
            overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
            draw = ImageDraw.Draw(overlay)
            for box in boxes:
                draw.rectangle(box, fill=(*HIGHLIGHT, 110))
            base = Image.alpha_composite(base.convert("RGBA"), overlay).convert("RGB")
            draw = ImageDraw.Draw(base)
            for x0, y0, _x1, y1 in boxes:
                draw.line([(x0 - 3, y0), (x0 - 3, y1)], fill=OUTLINE, width=3)  # a bar in the margin of each line
        textpage.close()
        pdf_page.close()
    finally:
        pdf.close()
    out = io.BytesIO()
    base.save(out, format="PNG", optimize=False)
    return PageImage(out.getvalue(), base.width, base.height, tuple(boxes))

def clear_cache() -> None:
    """Forget rendered pages (tests; after the corpus changed)."""
    with _PDFIUM_LOCK:
        _CACHE.clear()
