"""Read source files into raw pages: PDF (pypdf), plain text, Markdown and HTML.

A PDF's pages are its physical pages. A text, Markdown or HTML document has
none, so it is cut into pages at its headings (and long sections at
paragraph breaks): a page is then one section, small enough to be one
passage, and put together the pages are the document's text exactly.

Every failure becomes a ``DocumentError`` whose reason tells the user what the
file is and what to do, so an ingest can skip it and carry on.
"""

from __future__ import annotations

import codecs
import logging
import re
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from .errors import DocumentError
from .files import sha256_file

if TYPE_CHECKING:  # bs4 is imported lazily at run time, only when an HTML page is read
    from bs4 import Tag
    from pypdf import PdfReader

log = logging.getLogger(__name__)
# pypdf warns once per oddity it repairs (thousands of lines for one hostile file);
# the reader reports what matters (pages left out, files skipped) itself.
logging.getLogger("pypdf").setLevel(logging.ERROR)

SUPPORTED_SUFFIXES = (".pdf", ".txt", ".md", ".markdown", ".html", ".htm")
DEFAULT_MAX_PAGES = 5000
DEFAULT_MAX_CHARS = 20_000_000


@dataclass(frozen=True)
class RawPage:
    """Text of one page (1-based) as extracted, with its printed label.

    For a PDF, a physical page; for a text document, a section or part of one
    (see ``text_pages``), labelled with its number. ``label_is_printed`` is
    True when the label came from the file itself (PDF /PageLabels), False
    when it is only the page's number.
    """

    page: int
    label: str
    text: str
    label_is_printed: bool = False


@dataclass(frozen=True)
class RawDocument:
    """What a reader extracts from one file before cleaning."""

    rel_path: str
    kind: str
    pages: tuple[RawPage, ...]
    content_hash: str
    title: str = ""
    author: str = ""
    year: int | None = None
    outline: tuple[tuple[int, str], ...] = ()  # (1-based page, heading)
    truncated: str = ""  # why the text was cut short, when it was
    notes: tuple[str, ...] = ()  # other things the user should hear about (pages left out)


def read_document(
    path: Path,
    rel_path: str,
    *,
    max_pages: int = DEFAULT_MAX_PAGES,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> RawDocument:
    """Read one file by its suffix; raise ``DocumentError`` when it cannot be read.

    Memory stays bounded by the limits: a text file is read only as far as
    ``max_chars`` characters can reach, and a PDF is parsed from the file on disk.
    ``max_pages`` applies to PDFs; a text document's pages are its sections,
    bounded by ``max_chars`` instead. Line ends of text documents read as
    ``\n``; that and HTML's conversion to text are the only changes the
    reader makes, so a text page is an exact slice of the text it read.
    """
    try:
        size = path.stat().st_size
        digest = sha256_file(path)
        suffix = path.suffix.lower()
        if size == 0:
            raise DocumentError(rel_path, "empty file (0 bytes); replace it with the real document or remove it")
        if suffix == ".pdf":
            with path.open("rb") as handle:
                return _read_pdf(handle, rel_path, digest, max_pages=max_pages, max_chars=max_chars)
        with path.open("rb") as handle:
            # 4 bytes per character is the most any supported encoding needs, plus a BOM.
            data = handle.read(max_chars * 4 + 4)
            cut = bool(handle.read(1))
    except OSError as exc:
        raise DocumentError(rel_path, f"cannot be read ({exc.strerror or exc}); check its permissions") from exc
    text = decode_text(data, rel_path, partial=cut).replace("\r\n", "\n").replace("\r", "\n")
    del data
    if suffix in (".html", ".htm"):
        title, text = html_to_text(text)
        kind = "html"
    else:
        title = ""
        kind = "md" if suffix in (".md", ".markdown") else "txt"
    truncated = ""
    if len(text) > max_chars:
        truncated = f"only the first {max_chars:,} characters were indexed (raise --max-chars to index all)"
        text = text[:max_chars]
    elif cut:  # HTML whose visible text fits, from a source that did not
        truncated = f"only the first {max_chars * 4:,} bytes were read (raise --max-chars to index all)"
    if not text.strip():
        raise DocumentError(rel_path, "contains no text; nothing to index")
    pages, outline = text_pages(text, kind)
    return RawDocument(
        rel_path=rel_path,
        kind=kind,
        pages=pages,
        content_hash=digest,
        title=title,
        outline=outline,
        truncated=truncated,
    )


# --- pages of text documents --------------------------------------------------------------------

PAGE_CHARS = 3000  # a section longer than this is cut at a paragraph (else line, sentence) boundary
_TINY_SECTION = 120  # a heading with less text than this under it shares the next section's page
_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(\S.*?)(?:[ \t]+#+)?[ \t]*$")
_SETEXT_RULE = re.compile(r"^ {0,3}(?:=+|-{2,})[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(?:```|~~~)")
_LIST_MARK = re.compile(r"^\s*(?:[-*+\u2022\u2013>|]|\d+[.)]\s|[a-z][.)]\s)")
_NUMBERED_HEADING = re.compile(r"^(?:\d{1,2}(?:\.\d{1,2}){0,3}\.?\s+)?[A-Z\u00c0-\u00de\u2018\u201c'\"(]")
_DANGLING_END = {"a", "an", "the", "and", "or", "of", "to", "in", "on", "for", "with", "by", "from", "at", "as"}
_BREAKS = (
    re.compile(r"\n[ \t]*\n\s*"),  # paragraph
    re.compile(r"\n"),  # line
    re.compile(r"(?<=[.!?])[\"'\u2019\u201d)\]]*[ \t]+"),  # sentence
    re.compile(r"\s+"),  # word
)


@dataclass(frozen=True)
class TextHeading:
    """A heading found in a text document: where its line starts and what it says."""

    offset: int
    text: str


def text_headings(text: str, kind: str) -> list[TextHeading]:
    """Headings of a text, Markdown or HTML-derived document, in order.

    Markdown: ``#`` lines and underlined (setext) headings, not inside code
    fences. HTML text carries its h1-h6 as ``#`` lines. Plain text also gets
    short stand-alone lines that read as titles (capitalised, no end
    punctuation, no colon, blank lines around), and a one-line first
    paragraph, which is the document's title.
    """
    found: list[TextHeading] = []
    lines = text.split("\n")
    starts = []
    offset = 0
    for line in lines:
        starts.append(offset)
        offset += len(line) + 1
    fenced = False
    first = True  # no text seen yet: a first line may be the document's title
    for i, line in enumerate(lines):
        if _FENCE.match(line):
            fenced = not fenced
            first = False
            continue
        if fenced or not line.strip():
            continue
        is_first, first = first, False
        atx = _ATX.match(line)
        if atx:
            found.append(TextHeading(starts[i], atx.group(2).strip()))
            continue
        before = i == 0 or not lines[i - 1].strip()
        after = i + 1 < len(lines) and lines[i + 1]
        if kind != "html" and before and after and _SETEXT_RULE.match(after) and not _LIST_MARK.match(line):
            found.append(TextHeading(starts[i], line.strip()))
            continue
        if kind == "txt" and before and (i + 1 >= len(lines) or not lines[i + 1].strip()):
            if _plain_heading(line, first=is_first):
                found.append(TextHeading(starts[i], line.strip()))
    return found


_NOT_HEADING = re.compile(r"^(?:page\s+\d|(?:figure|table|chart|box|source|note)s?\s+\d)", re.I)


def _plain_heading(line: str, *, first: bool) -> bool:
    """A stand-alone plain-text line that reads as a heading (or, first in the file, a title)."""
    if line[:1].isspace() or _LIST_MARK.match(line) or _NOT_HEADING.match(line):
        return False
    stripped = line.strip()
    words = stripped.split()
    letters = sum(c.isalpha() for c in stripped)
    return (
        len(stripped) <= (110 if first else 80)
        and len(words) <= (20 if first else 10)
        and bool(_NUMBERED_HEADING.match(stripped))
        and letters >= 3
        and letters >= 0.6 * len("".join(words))
        and ":" not in stripped
        and not stripped.endswith((".", ",", ";", "!", "-", "\u2026"))
        and words[-1].lower() not in _DANGLING_END
    )


def page_spans(text: str, headings: list[TextHeading], limit: int = PAGE_CHARS) -> list[tuple[int, int]]:
    """Cut ``text`` into consecutive (start, end) spans that cover it exactly.

    A page starts at a heading and holds whole sections up to ``limit``
    characters; a heading with (almost) nothing under it shares the next
    section's page, unless that would cut a section that fits a page on its
    own. A section longer than ``limit`` is cut into nearly equal
    parts at paragraph breaks (else lines, sentences, words).
    """
    cuts = [0]
    # The heading that opens the current page, if one does: its own line is not "text under it".
    opener = headings[0] if headings and not text[: headings[0].offset].strip() else None
    for i, heading in enumerate(headings):
        if heading.offset <= cuts[-1]:
            continue
        body_start = cuts[-1] if opener is None else text.find("\n", opener.offset, heading.offset) + 1 or heading.offset
        after = next((headings[j].offset for j in range(i + 1, len(headings)) if headings[j].offset > heading.offset),
                     len(text))
        fits_alone = after - heading.offset <= limit < after - cuts[-1]  # sharing would cut a section that fits
        if len(text[body_start : heading.offset].strip()) < _TINY_SECTION and not fits_alone:
            continue  # (almost) nothing under the page's heading yet: this section shares its page
        cuts.append(heading.offset)
        opener = heading
    # Whole sections share a page up to ``limit`` characters: a page of a few short sections reads
    # (and is retrieved) as one passage, while each chunk still cites its own section heading.
    packed: list[tuple[int, int]] = []
    for start, end in pairwise([*cuts, len(text)]):
        if packed and end - packed[-1][0] <= limit:
            packed[-1] = (packed[-1][0], end)
        else:
            packed.append((start, end))
    spans: list[tuple[int, int]] = []
    for start, end in packed:
        pos = start
        for cut in _long_cuts(text, start, end, limit):
            spans.append((pos, cut))
            pos = cut
        spans.append((pos, end))
    return spans


def _long_cuts(text: str, start: int, end: int, limit: int) -> list[int]:
    """Where to cut ``text[start:end]`` so no part is longer than ``limit`` (near-equal parts)."""
    cuts: list[int] = []
    pos = start
    while end - pos > limit:
        parts = -(-(end - pos) // limit)
        ideal = pos + (end - pos) // parts
        lo, hi = pos + limit // 3, pos + limit
        cut = hi
        for pattern in _BREAKS:
            ends = [m.end() for m in pattern.finditer(text, lo, hi) if lo < m.end() <= hi and m.end() < end]
            if ends:
                cut = min(ends, key=lambda e: abs(e - ideal))
                break
        cuts.append(cut)
        pos = cut
    return cuts


def text_pages(text: str, kind: str, limit: int = PAGE_CHARS) -> tuple[tuple[RawPage, ...], tuple[tuple[int, str], ...]]:
    """Pages of a text document, and its headings as an outline of (page, heading).

    The pages' texts put together are exactly ``text``. Each page's label is its
    number: a text has no printed page numbers, and its citations name the
    section instead. The outline lets cleaning know plain-text and underlined
    headings, which it cannot tell from ordinary lines by itself.
    """
    headings = text_headings(text, kind)
    spans = page_spans(text, headings, limit)
    pages = tuple(RawPage(page=n, label=str(n), text=text[s:e]) for n, (s, e) in enumerate(spans, start=1))
    outline: list[tuple[int, str]] = []
    index = 0
    for heading in headings:
        while index + 1 < len(spans) and spans[index + 1][0] <= heading.offset:
            index += 1
        outline.append((index + 1, heading.text))
    return pages, tuple(outline)


def decode_text(data: bytes, rel_path: str, *, partial: bool = False) -> str:
    """Decode a text file: BOM first (UTF-8/16/32), then UTF-8, then Windows-1252.

    UTF-16 without a BOM is recognised by its NUL bytes; any other file with
    NUL bytes is binary, not text. A UTF-8 file with a few damaged bytes stays
    UTF-8 (the damaged bytes become U+FFFD) rather than turning every accent
    into mojibake. ``partial`` says ``data`` is only the start of the file, so
    a character cut in two at the end is not an error.
    """
    for bom, encoding in (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return _decode(data, encoding, partial)
            except UnicodeDecodeError as exc:
                raise DocumentError(rel_path, f"starts with a {encoding} byte-order mark but is not valid {encoding}; re-save it "
                                              "as UTF-8") from exc
    head = data[:8192]
    if b"\x00" in head:
        utf16 = _utf16_without_bom(head)
        if utf16:
            log.info("%s has no byte-order mark but reads as %s", rel_path, utf16)
            return data.decode(utf16, errors="replace" if not partial else "ignore")
        raise DocumentError(rel_path, "looks binary (NUL bytes), not text; convert it to PDF or UTF-8 text")
    try:
        return _decode(data, "utf-8", partial)
    except UnicodeDecodeError:
        pass
    lenient = data.decode("utf-8", errors="replace")
    damaged = lenient.count("\ufffd") - data.count(b"\xef\xbf\xbd")
    well_formed = sum(1 for ch in lenient if ord(ch) > 127 and ch != "\ufffd")
    if well_formed > damaged:
        log.info("%s is UTF-8 with %d damaged byte sequence(s); they read as U+FFFD", rel_path, damaged)
        return lenient
    log.info("%s is not UTF-8; reading it as Windows-1252", rel_path)
    return data.decode("cp1252", errors="replace")


def _decode(data: bytes, encoding: str, partial: bool) -> str:
    """Strict decode; when ``data`` is a prefix, only its very end may be a cut character."""
    if not partial:
        return data.decode(encoding)
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    return decoder.decode(data, final=False)


def _utf16_without_bom(head: bytes) -> str | None:
    """'utf-16-le' or 'utf-16-be' when NULs sit in every other byte, as in mostly-ASCII UTF-16."""
    even, odd = head[0::2], head[1::2]
    if len(head) < 4:
        return None
    if odd.count(0) >= 0.9 * len(odd) and even.count(0) <= 0.1 * len(even):
        return "utf-16-le"
    if even.count(0) >= 0.9 * len(even) and odd.count(0) <= 0.1 * len(odd):
        return "utf-16-be"
    return None


# --- HTML -------------------------------------------------------------------------------------

# Never indexed: code, styling, embedded objects, form controls and menus. Not <form> itself:
# some sites wrap the whole page in one.
_HTML_DROP = ("script", "style", "noscript", "template", "head", "svg", "math", "iframe", "object",
              "embed", "canvas", "button", "select", "input", "textarea", "nav", "dialog")
# Page furniture by role or by class: menus, breadcrumbs, banners, "Is this page useful?".
_CHROME_ROLES = {"navigation", "search", "banner", "contentinfo", "complementary"}
_CHROME_CLASS = re.compile(
    r"breadcrumb|skip-link|cookie-(?:banner|message)|gem-c-feedback|govuk-feedback|related-nav|phase-banner|"
    r"print-link|share-links",
    re.I,
)
_SECTIONING = ("article", "main", "section")
# Elements that end a line, and those that stand as a paragraph of their own.
_HTML_LINE = {"div", "li", "dt", "dd", "tr", "thead", "tbody", "tfoot", "caption", "figcaption", "summary", "legend",
              "option", "label"}
_HTML_PARAGRAPH = {"p", "ul", "ol", "dl", "blockquote", "pre", "figure", "section", "article", "main", "aside",
                   "details", "hr", "address", "fieldset", "header", "footer", "table", "body", "html", "hgroup"}
_HTML_SPACE = re.compile(r"[ \t\n\r\f\v]+")  # HTML's own whitespace; a no-break space is text
_HTML_TABLE = {"table", "thead", "tbody", "tfoot", "tr"}  # "table" is a paragraph, a row a line
_LINE = "\x00L"  # break markers, resolved once the whole page is walked
_PARA = "\x00P"
_CELL = "\x00C"


def html_to_text(source: str) -> tuple[str, str]:
    """Return (title, visible main text) of an HTML page.

    Parsed with BeautifulSoup (stdlib ``html.parser``), so broken markup reads as a
    browser would show it. Only the main content is kept when the page marks it
    (``<main>``, ``role=main``, ``#main-content``/``#content``, a lone ``<article>``),
    as on GOV.UK; navigation, banners, footers, breadcrumbs, forms, scripts and
    styles are never indexed. Headings become Markdown ``#`` lines (so they become
    sections), table rows become lines with cells joined by `` | ``, and each list
    item, term and definition gets a line of its own, so cells never run together.
    """
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(source.replace("\x00", ""), "html.parser")  # NUL is no text, and marks breaks below
    # The page's <title>, not one labelling an inline SVG picture.
    title_tag = next((t for t in soup.find_all("title") if t.find_parent("svg") is None), None)
    title = " ".join(title_tag.get_text(" ").split()) if title_tag else ""
    title = re.sub(r"\s+[-\u2013|]\s+GOV\.UK$", "", title)
    _drop_chrome(soup)
    root = _main_content(soup)
    return title, _flatten(root)


def _drop_chrome(soup: Tag) -> None:
    """Remove everything that is not document text (see ``_HTML_DROP`` and ``_CHROME_*``).

    One walk from the top that never enters a removed element, so the cost
    stays linear however deeply the markup nests. A header, footer or aside
    inside an article, section or main belongs to it and stays, and so does
    a page-level header holding the page's <h1>.
    """
    from bs4 import Tag

    doomed: list[Tag] = []
    stack: list[tuple[Tag, bool]] = [(soup, False)]  # (element, inside a sectioning element)
    while stack:
        parent, sectioned = stack.pop()
        for tag in parent.contents:
            if not isinstance(tag, Tag):
                continue
            role = str(tag.get("role") or "").lower()
            classes = tag.get("class") or ()
            classes = classes if isinstance(classes, str) else " ".join(classes)
            # A page-level header is the site's banner, unless it holds the page's own title.
            title_header = tag.name == "header" and not sectioned and tag.find("h1") is not None
            if (
                tag.name in _HTML_DROP
                or tag.has_attr("hidden")
                or str(tag.get("aria-hidden") or "").lower() == "true"
                or role in _CHROME_ROLES
                or (classes and _CHROME_CLASS.search(classes))
                or (tag.name in ("header", "footer", "aside") and not sectioned and not title_header)
            ):
                doomed.append(tag)
            else:
                stack.append((tag, sectioned or title_header or tag.name in _SECTIONING))
    for tag in doomed:
        tag.decompose()


def _main_content(soup: Tag) -> Tag:
    """The element holding the page's own content, else the body.

    ``<main>`` or ``role=main`` with text is trusted; ``#main-content``, ``#content``
    or a lone ``<article>`` only when it holds more than half the page's text.
    """
    body = soup.find("body") or soup
    for tag in (soup.find("main"), soup.find(role="main")):
        if tag is not None and tag.get_text(strip=True):
            return tag
    # Weaker signs (an id, a lone article) count only when they hold most of the page's text.
    articles = soup.find_all("article")
    guesses = [soup.find(id="main-content"), soup.find(id="content")] + (list(articles) if len(articles) == 1 else [])
    whole = len("".join(body.get_text().split()))
    for tag in guesses:
        if tag is not None and len("".join(tag.get_text().split())) * 2 > whole:
            return tag
    return body


def _inline(tag: Tag) -> str:
    """A tag's text on one line, whitespace collapsed."""
    return " ".join(tag.get_text(" ").split())


def _flatten(root: Tag) -> str:
    """Visible text of ``root``, one block element per line, paragraphs apart.

    One walk with an explicit stack, so deeply nested (hostile) markup can
    neither exhaust Python's recursion limit nor take quadratic time. A table
    row is one line, its cells joined by " | "; inside a cell, blocks run on
    with a space so the row stays one line.
    """
    from bs4 import NavigableString, Tag
    from bs4.element import PreformattedString

    parts: list[str] = []
    # (node, entering, inside <pre>, inside a table cell)
    stack: list[tuple[object, bool, bool, bool]] = [(root, True, False, False)]
    while stack:
        node, entering, in_pre, in_cell = stack.pop()
        if isinstance(node, NavigableString):
            if not isinstance(node, PreformattedString):  # comments, doctypes, CDATA
                data = str(node)
                parts.append(data.replace("\n", _LINE) if in_pre and not in_cell else _HTML_SPACE.sub(" ", data))
            continue
        if not isinstance(node, Tag):
            continue
        name = node.name
        if in_cell:  # inside a cell every break is a space; a nested table's cells still part with " | "
            if name in ("td", "th") and entering:
                parts.append(_CELL)
            elif name in _HTML_PARAGRAPH or name in _HTML_LINE or name in _HTML_TABLE or name in ("br", "hr"):
                parts.append(" ")
        elif not entering:
            parts.append(_PARA if name in _HTML_PARAGRAPH else _LINE)
            continue
        elif re.fullmatch(r"h[1-6]", name):
            text = _inline(node)
            if text:
                parts.extend((_PARA, "#" * int(name[1]) + " " + text, _PARA))
            continue
        elif name in ("br", "hr"):
            parts.append(_PARA if name == "hr" else _LINE)
            continue
        elif name in ("td", "th"):
            parts.append(_CELL)
            in_cell = True
        elif name in _HTML_PARAGRAPH or name in _HTML_LINE or name in _HTML_TABLE:
            parts.append(_PARA if name in _HTML_PARAGRAPH else _LINE)
            if name == "li":
                parts.append("- ")
            stack.append((node, False, in_pre, in_cell))
        if not entering:
            continue
        in_pre = in_pre or name == "pre"
        stack.extend((child, True, in_pre, in_cell) for child in reversed(node.contents))
    text = "".join(parts)
    # Resolve breaks: a run of markers is a paragraph break if any of them is one.
    text = re.sub(r"[ \t]*(?:\x00[LP][ \t]*)+", lambda m: "\n\n" if _PARA in m.group(0) else "\n", text)
    # Cells: none before a row's first or after its last; one " | " between (empty cells drop out).
    # A cell holding only no-break spaces (a common placeholder) is empty too.
    text = re.sub(r"^[ \t\u00a0]*(?:\x00C[ \t\u00a0]*)+|[ \t\u00a0]*(?:\x00C[ \t\u00a0]*)+$", "", text, flags=re.M)
    text = re.sub(r"[ \t\u00a0]*(?:\x00C[ \t\u00a0]*)+", " | ", text)
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n[ \t]+", "\n", text)
    text = re.sub(r"^- *$\n?", "", text, flags=re.M)  # list items with no text
    text = re.sub(r"^- {2,}", "- ", text, flags=re.M)
    text = re.sub(r"\n{3,}", "\n\n", text)  # after empty items go, whose removal can join two breaks
    return text.strip()


def _looks_like_html(data: bytes) -> bool:
    head = data[:1024].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head", b"<body"))


def _read_pdf(handle: BinaryIO, rel_path: str, digest: str, *, max_pages: int, max_chars: int) -> RawDocument:
    import pypdf
    from pypdf.errors import DependencyError

    head = handle.read(1024)
    handle.seek(0)
    if b"%PDF-" not in head:
        if _looks_like_html(head):
            raise DocumentError(rel_path, "is an HTML page saved with a .pdf name (often a download error page), not a PDF; "
                                          "download the real PDF again")
        raise DocumentError(rel_path, "is not a PDF (no %PDF header); check the file or download it again")
    try:
        reader = pypdf.PdfReader(handle, strict=False)
        if reader.is_encrypted:
            try:
                ok = reader.decrypt("")
            except DependencyError as exc:
                raise DocumentError(rel_path, f"is encrypted with AES, which needs the `cryptography` package ({exc}); install "
                                              "it (`pip install cryptography`) or save an unprotected copy") from exc
            except Exception as exc:  # pypdf raises several types for unsupported crypto
                raise DocumentError(rel_path, f"is encrypted and cannot be opened ({exc}); save an unprotected copy") from exc
            if not ok:
                raise DocumentError(rel_path, "is password-protected; save an unprotected copy and ingest that")
        n_pages = len(reader.pages)
    except DocumentError:
        raise
    except RecursionError as exc:
        raise DocumentError(rel_path, "is nested too deeply for pypdf to open (a damaged or hostile file); download it "
                                      "again") from exc
    except Exception as exc:  # any parser failure means "unreadable"
        raise DocumentError(rel_path, f"is damaged or truncated and pypdf cannot open it ({type(exc).__name__}: {exc}); download "
                                      "it again") from exc
    if n_pages == 0:
        raise DocumentError(rel_path, "has no pages; download it again")

    truncated = ""
    if n_pages > max_pages:
        truncated = f"only the first {max_pages:,} of {n_pages:,} pages were indexed (raise --max-pages to index all)"
    labels = _page_labels(reader, min(n_pages, max_pages))
    pages: list[RawPage] = []
    chars = 0
    failed: list[int] = []
    for index in range(min(n_pages, max_pages)):
        try:
            text = reader.pages[index].extract_text() or ""
        except Exception as exc:  # one bad page must not lose the document
            log.info("%s: page %d could not be read (%s); it is left out", rel_path, index + 1, _short(exc))
            failed.append(index + 1)
            text = ""
        if chars + len(text) > max_chars:
            text = text[: max(0, max_chars - chars)]
            truncated = f"only the first {max_chars:,} characters were indexed (raise --max-chars to index all)"
        chars += len(text)
        label, printed = labels[index]
        pages.append(RawPage(page=index + 1, label=label, text=text, label_is_printed=printed))
        if truncated and chars >= max_chars:
            break
    with_text = sum(1 for p in pages if _has_text(p.text))
    if with_text == 0:
        if failed and len(failed) == len(pages):
            raise DocumentError(rel_path, "no page could be read by pypdf; the file is damaged, download it again")
        raise DocumentError(rel_path, "has no text layer (a scanned or image-only PDF); run OCR on it first (for example "
                                      "`ocrmypdf in.pdf out.pdf`) and ingest the result")
    # Mostly blank pages (not merely short ones, as on a slide) mean a scanned document
    # with a stray text page or two: indexing those would hide that the rest is missing.
    read = len(pages) - len(failed)
    blank = sum(1 for i, p in enumerate(pages, start=1) if i not in failed and len("".join(p.text.split())) < 5)
    if read >= 3 and blank * 2 > read:
        raise DocumentError(
            rel_path,
            f"has a text layer on only {read - blank} of {len(pages)} pages (a scanned PDF); "
            "run OCR on it first (for example `ocrmypdf --skip-text in.pdf out.pdf`) and ingest the result",
        )
    notes: tuple[str, ...] = ()
    if failed:
        shown = ", ".join(map(str, failed[:20])) + (" ..." if len(failed) > 20 else "")
        notes = (f"{len(failed)} page(s) could not be read and were left out ({shown}); the rest is indexed",)

    meta = _pdf_metadata(reader)
    return RawDocument(
        rel_path=rel_path,
        kind="pdf",
        pages=tuple(pages),
        content_hash=digest,
        title=meta[0],
        author=meta[1],
        year=meta[2],
        outline=_outline(reader),
        truncated=truncated,
        notes=notes,
    )


def _has_text(text: str) -> bool:
    """A page carries real text: at least 20 visible characters, at least 10 of them letters."""
    visible = "".join(text.split())
    return len(visible) >= 20 and sum(c.isalpha() for c in visible) >= 10


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def _page_labels(reader: PdfReader, n: int) -> list[tuple[str, bool]]:
    """Printed labels from /PageLabels when the PDF has them, else physical numbers."""
    has_labels = False
    try:
        has_labels = "/PageLabels" in reader.root_object
    except Exception:
        has_labels = False
    if has_labels:
        try:
            labels = list(reader.page_labels)[:n]
            if len(labels) == n:
                return [(str(label) or str(i + 1), True) for i, label in enumerate(labels)]
        except Exception as exc:
            log.info("ignoring unreadable /PageLabels: %s", exc)
    return [(str(i + 1), False) for i in range(n)]


def _pdf_metadata(reader: PdfReader) -> tuple[str, str, int | None]:
    try:
        meta: dict[Any, Any] = reader.metadata or {}
        title = str(meta.get("/Title") or "").strip()
        author = str(meta.get("/Author") or "").strip()
        date = str(meta.get("/CreationDate") or "")
    except Exception:
        return "", "", None
    year_match = re.match(r"D?:?(\d{4})", date)
    year = int(year_match.group(1)) if year_match else None
    if year is not None and not 1900 <= year <= 2100:
        year = None
    return usable_title(title), author, year


_OFFICE_PREFIX = re.compile(r"^(?:microsoft\s+(?:word|powerpoint|excel)|powerpoint|word)\s*-\s*", re.I)
_PLACEHOLDER_TITLE = re.compile(
    r"(?:untitled.*|document\s*\d*|presentation\s*\d*|powerpoint presentation|slide\s*\d+|title|"
    r".*\btemplate\b.*|.*\bdraft\b.*|.*\.(?:docx?|pptx?|xlsx?|pdf|indd|rtf))",
    re.I,
)


def usable_title(title: str) -> str:
    """A PDF's metadata title when it names the document, else "".

    Office software leaves placeholders ("PowerPoint Presentation", "Microsoft
    Word - report.docx", the template's name, "Leeds - Draft report"); those
    would mislabel every citation and search hit. "Microsoft Word - " in front
    of a real title, or a file extension after one, is dropped and the title kept.
    """
    title = " ".join(title.split())
    title = _OFFICE_PREFIX.sub("", title).strip(" -")
    named = re.fullmatch(r"(.+\s.+)\.(?:docx?|pptx?|xlsx?|pdf|indd|rtf)", title, flags=re.I)
    if named:  # "Evaluation of the outcomes.docx": a title saved as a file name
        title = named.group(1).strip()
    if len(title) < 4 or not re.search(r"[A-Za-z]{3}", title) or _PLACEHOLDER_TITLE.fullmatch(title):
        return ""
    return title


def _outline(reader: PdfReader, limit: int = 2000) -> tuple[tuple[int, str], ...]:
    """Flatten the PDF outline (bookmarks) to (1-based page, title) pairs."""
    found: list[tuple[int, str]] = []

    def walk(items: list[Any], depth: int) -> None:
        if depth > 8 or len(found) >= limit:
            return
        for item in items:
            if isinstance(item, list):
                walk(item, depth + 1)
                continue
            try:
                page = reader.get_destination_page_number(item)
                title = str(item.title or "").strip()
            except Exception:
                continue
            if page is not None and page >= 0 and title:
                found.append((page + 1, title))

    try:
        walk(reader.outline, 0)
    except Exception as exc:
        log.info("ignoring unreadable outline: %s", exc)
    return tuple(found)
