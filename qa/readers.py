"""Read source files into raw pages: PDF (pypdf), plain text, Markdown and HTML.

Every failure becomes a ``DocumentError`` whose reason tells the user what the
file is and what to do, so an ingest can skip it and carry on.
"""

from __future__ import annotations

import codecs
import hashlib
import html
import logging
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from .errors import DocumentError

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".pdf", ".txt", ".md", ".markdown", ".html", ".htm")
DEFAULT_MAX_PAGES = 5000
DEFAULT_MAX_CHARS = 20_000_000


@dataclass(frozen=True)
class RawPage:
    """Text of one physical page (1-based) as extracted, with its printed label.

    ``label_is_printed`` is True when the label came from the file itself
    (PDF /PageLabels), False when it is only the physical number.
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


def file_hash(data: bytes) -> str:
    """sha256 of a file's bytes: how ingest tells a changed file."""
    return hashlib.sha256(data).hexdigest()


def read_document(
    path: Path,
    rel_path: str,
    *,
    max_pages: int = DEFAULT_MAX_PAGES,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> RawDocument:
    """Read one file by its suffix; raise ``DocumentError`` when it cannot be read."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DocumentError(rel_path, f"cannot be read ({exc.strerror or exc}); check its permissions") from exc
    if not data:
        raise DocumentError(rel_path, "empty file (0 bytes); replace it with the real document or remove it")
    suffix = path.suffix.lower()
    digest = file_hash(data)
    if suffix == ".pdf":
        return _read_pdf(data, rel_path, digest, max_pages=max_pages, max_chars=max_chars)
    text = decode_text(data, rel_path)
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
    if not text.strip():
        raise DocumentError(rel_path, "contains no text; nothing to index")
    return RawDocument(
        rel_path=rel_path,
        kind=kind,
        pages=(RawPage(page=1, label="1", text=text),),
        content_hash=digest,
        title=title,
        truncated=truncated,
    )


def decode_text(data: bytes, rel_path: str) -> str:
    """Decode a text file: BOM first (UTF-8/16/32), then UTF-8, then Windows-1252.

    A file with NUL bytes and no UTF-16/32 BOM is binary, not text.
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
                return data.decode(encoding)
            except UnicodeDecodeError as exc:
                raise DocumentError(rel_path, f"starts with a {encoding} byte-order mark but is not valid {encoding}; re-save it as UTF-8") from exc
    if b"\x00" in data[:8192]:
        raise DocumentError(rel_path, "looks binary (NUL bytes), not text; convert it to PDF or UTF-8 text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        log.info("%s is not UTF-8; reading it as Windows-1252", rel_path)
        return data.decode("cp1252", errors="replace")


class _TextExtractor(HTMLParser):
    """Collect visible text of an HTML page, one block element per line."""

    _BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "table", "ul", "ol", "title"}
    _SKIP = {"script", "style", "noscript", "template", "head"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self._skip = 0
        self._in_title = False
        self._heading = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        if tag in self._SKIP:
            self._skip += 1
        if tag in self._BLOCK:
            self.parts.append("\n")
        if re.fullmatch(r"h[1-6]", tag):
            self.parts.append("#" * int(tag[1]) + " ")
            self._heading = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in self._SKIP and self._skip:
            self._skip -= 1
        if tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
            return
        if not self._skip:
            self.parts.append(data)


def html_to_text(source: str) -> tuple[str, str]:
    """Return (title, visible text) of an HTML page; headings become Markdown '#' lines."""
    parser = _TextExtractor()
    parser.feed(source)
    parser.close()
    text = "".join(parser.parts)
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r"\n\s*\n+", "\n\n", text)
    return html.unescape(parser.title).strip(), text.strip()


def _looks_like_html(data: bytes) -> bool:
    head = data[:1024].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head", b"<body"))


def _read_pdf(data: bytes, rel_path: str, digest: str, *, max_pages: int, max_chars: int) -> RawDocument:
    import io

    import pypdf
    from pypdf.errors import PdfReadError

    if b"%PDF-" not in data[:1024]:
        if _looks_like_html(data):
            raise DocumentError(rel_path, "is an HTML page saved with a .pdf name (often a download error page), not a PDF; download the real PDF again")
        raise DocumentError(rel_path, "is not a PDF (no %PDF header); check the file or download it again")
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:
                ok = reader.decrypt("")
            except Exception as exc:  # pypdf raises several types for unsupported crypto
                raise DocumentError(rel_path, f"is encrypted and cannot be opened ({exc}); save an unprotected copy") from exc
            if not ok:
                raise DocumentError(rel_path, "is password-protected; save an unprotected copy and ingest that")
        n_pages = len(reader.pages)
    except DocumentError:
        raise
    except (PdfReadError, Exception) as exc:  # noqa: BLE001 - any parser failure means "unreadable"
        raise DocumentError(rel_path, f"is damaged or truncated and pypdf cannot open it ({type(exc).__name__}: {exc}); download it again") from exc
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
        except Exception as exc:  # noqa: BLE001 - one bad page must not lose the document
            log.warning("%s: page %d could not be read (%s); it is left out", rel_path, index + 1, exc)
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
    if not any(len(p.text.strip()) >= 20 for p in pages):
        if failed and len(failed) == len(pages):
            raise DocumentError(rel_path, "no page could be read by pypdf; the file is damaged, download it again")
        raise DocumentError(rel_path, "has no text layer (a scanned or image-only PDF); run OCR on it first (for example `ocrmypdf in.pdf out.pdf`) and ingest the result")

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
    )


def _page_labels(reader: object, n: int) -> list[tuple[str, bool]]:
    """Printed labels from /PageLabels when the PDF has them, else physical numbers."""
    has_labels = False
    try:
        has_labels = "/PageLabels" in reader.trailer["/Root"]  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001
        has_labels = False
    if has_labels:
        try:
            labels = list(reader.page_labels)[:n]  # type: ignore[attr-defined]
            if len(labels) == n:
                return [(str(label) or str(i + 1), True) for i, label in enumerate(labels)]
        except Exception as exc:  # noqa: BLE001
            log.info("ignoring unreadable /PageLabels: %s", exc)
    return [(str(i + 1), False) for i in range(n)]


def _pdf_metadata(reader: object) -> tuple[str, str, int | None]:
    try:
        meta = reader.metadata or {}  # type: ignore[attr-defined]
        title = str(meta.get("/Title") or "").strip()
        author = str(meta.get("/Author") or "").strip()
        date = str(meta.get("/CreationDate") or "")
    except Exception:  # noqa: BLE001
        return "", "", None
    year_match = re.match(r"D?:?(\d{4})", date)
    year = int(year_match.group(1)) if year_match else None
    if year is not None and not 1900 <= year <= 2100:
        year = None
    # Placeholder titles left by office software are not titles.
    if re.fullmatch(r"(untitled|microsoft word.*|document\d*|.*\.(docx?|pdf|indd))", title, flags=re.I):
        title = ""
    return title, author, year


def _outline(reader: object, limit: int = 2000) -> tuple[tuple[int, str], ...]:
    """Flatten the PDF outline (bookmarks) to (1-based page, title) pairs."""
    found: list[tuple[int, str]] = []

    def walk(items: object, depth: int) -> None:
        if depth > 8 or len(found) >= limit:
            return
        for item in items:  # type: ignore[attr-defined]
            if isinstance(item, list):
                walk(item, depth + 1)
                continue
            try:
                page = reader.get_destination_page_number(item)  # type: ignore[attr-defined]
                title = str(item.title or "").strip()
            except Exception:  # noqa: BLE001
                continue
            if page is not None and page >= 0 and title:
                found.append((page + 1, title))

    try:
        walk(reader.outline, 0)  # type: ignore[attr-defined]
    except Exception as exc:  # noqa: BLE001
        log.info("ignoring unreadable outline: %s", exc)
    return tuple(found)
