"""Clean extracted page text and find section headings; pure functions only.

Cleaning works page by page, so a sentence never moves to another page:
running headers and footers (lines repeated at the top or bottom of many
pages) are dropped, words hyphenated across line breaks are rejoined,
ligatures and odd bullets are normalised and whitespace is collapsed.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

from .readers import RawDocument, RawPage
from .records import Heading, Page

# Characters NFKC leaves alone but that read badly or split words.
_CHAR_MAP = str.maketrans(
    {
        "\u00ad": "",  # soft hyphen
        "\u200b": "",  # zero-width space
        "\ufeff": "",
        "\u2022": "-",  # bullet
        "\u25aa": "-",
        "\u25cf": "-",
        "\u25e6": "-",
        "\u2023": "-",
        "\u2043": "-",
        "\u25a0": "-",
        "\t": " ",
    }
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_PRIVATE_USE = re.compile(r"[\ue000-\uf8ff]")  # symbol-font glyphs, nearly always bullets
_SPACES = re.compile(r"[ \u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_HYPHEN_BREAK = re.compile(r"([A-Za-z])-\n([a-z]\S*) ?")
_EDGE_LINES = 3
_PAGE_NUMBER_LINE = re.compile(r"^(?:page\s+)?[-\u2013(]?\s*(\d{1,4})\s*[-\u2013)]?(?:\s+of\s+\d{1,4})?$", re.I)


def normalise(text: str) -> str:
    """NFKC, a small character map, no control characters, single spaces, trimmed lines."""
    text = unicodedata.normalize("NFKC", text).translate(_CHAR_MAP)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    text = _PRIVATE_USE.sub("-", text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return "\n".join(lines)


def rejoin_hyphenation(text: str) -> str:
    """Join 'infor-\\nmation' into 'information\\n' (the line break moves after the word)."""
    return _HYPHEN_BREAK.sub(lambda m: m.group(1) + m.group(2) + "\n", text)


def _line_key(line: str) -> str:
    """A line's identity for repeat detection: digits and case do not count."""
    return re.sub(r"\d+", "#", line.lower()).strip()


def running_lines(pages: Sequence[Sequence[str]], min_share: float = 0.5) -> set[str]:
    """Keys of lines that sit near the top or bottom of many pages (headers, footers).

    Needs at least three pages: on shorter documents nothing repeats meaningfully.
    """
    n = len(pages)
    if n < 3:
        return set()
    counts: Counter[str] = Counter()
    for lines in pages:
        content = [line for line in lines if line]
        edge = set(_line_key(line) for line in content[:_EDGE_LINES] + content[-_EDGE_LINES:])
        counts.update(key for key in edge if key)
    threshold = max(3, int(n * min_share + 0.999))
    return {key for key, count in counts.items() if count >= threshold}


def _strip_edges(lines: list[str], keys: set[str]) -> tuple[list[str], int | None]:
    """Drop running lines and lone page numbers at a page's edges.

    Returns the kept lines and the printed page number seen there, if any.
    """
    printed: int | None = None
    content_idx = [i for i, line in enumerate(lines) if line]
    edge = set(content_idx[:_EDGE_LINES] + content_idx[-_EDGE_LINES:])
    keep: list[str] = []
    for i, line in enumerate(lines):
        if i in edge:
            number = _PAGE_NUMBER_LINE.match(line)
            if number:
                printed = int(number.group(1))
                continue
            if _line_key(line) in keys:
                found = re.findall(r"\b(\d{1,4})\b", line)
                if len(found) == 1 and printed is None:
                    printed = int(found[0])
                continue
        keep.append(line)
    return keep, printed


def infer_labels(printed: Sequence[int | None], min_share: float = 0.4) -> list[str] | None:
    """Printed page numbers from a constant offset to the physical page, when one dominates.

    Pages before the numbering starts (cover, contents) get an empty label.
    """
    n = len(printed)
    offsets = Counter(p - (i + 1) for i, p in enumerate(printed) if p is not None)
    if not offsets:
        return None
    offset, count = offsets.most_common(1)[0]
    if count < max(3, int(n * min_share)) or offset == 0:
        return None
    return [str(i + 1 + offset) if i + 1 + offset >= 1 else "" for i in range(n)]


_KNOWN_HEADINGS = {
    "summary", "executive summary", "introduction", "background", "conclusion", "conclusions",
    "recommendations", "key findings", "findings", "methodology", "methods", "foreword",
    "acknowledgements", "references", "glossary", "overview", "context", "next steps",
    "discussion", "limitations", "about this report", "contents", "appendix", "annex",
}
_NUMBERED = re.compile(
    r"^(?:(?:\d{1,2}(?:\.\d{1,2}){0,3}\.?)|(?:[A-Z]\.)|(?:(?:chapter|section|part|annex|appendix)\s+[A-Z0-9]{1,3}[.:]?))\s+(\S.*)$",
    re.I,
)
_MARKDOWN = re.compile(r"^(#{1,6})\s+(\S.*?)\s*#*$")


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def heading_text(line: str, outline: set[str] | None = None) -> str | None:
    """The heading a line states, or None when it is ordinary text."""
    line = line.strip()
    if not line or len(line) > 110:
        return None
    md = _MARKDOWN.match(line)
    if md:
        return md.group(2).strip()
    normed = _norm(line)
    if outline and normed in outline:
        return line
    if re.search(r"(\.{3,}|\s\d{1,3})$", line):  # contents-page entry: title ... 12
        return None
    if normed in _KNOWN_HEADINGS and not line.endswith((".", ",", ";")):
        return line.rstrip(":")
    numbered = _NUMBERED.match(line)
    if numbered:
        rest = numbered.group(1)
        words = rest.split()
        letters = sum(c.isalpha() for c in rest)
        if (
            rest[:1].isupper()
            and len(words) <= 12
            and len(line) <= 90
            and letters >= 0.6 * len(rest.replace(" ", ""))
            and not rest.endswith((".", ",", ";"))
        ):
            return line
        return None
    words = line.split()
    if 2 <= len(words) <= 10 and line.upper() == line and sum(c.isalpha() for c in line) >= 6:
        return line.title() if len(line) > 3 else line
    return None


def find_headings(page: int, text: str, outline: set[str] | None = None) -> list[Heading]:
    """Headings on one page with their character offsets in ``text``.

    A line followed by one starting in lower case is the first line of a
    numbered paragraph, not a heading (Ofsted and statutory guidance number
    their paragraphs), unless the outline names it.
    """
    found: list[Heading] = []
    lines = text.split("\n")
    offset = 0
    for i, line in enumerate(lines):
        heading = heading_text(line, outline)
        if heading:
            following = next((nxt for nxt in lines[i + 1 :] if nxt.strip()), "")
            continues = following[:1].islower() or line.rstrip().endswith((",", "-"))
            if not continues or (outline and _norm(line) in outline) or line.startswith("#"):
                found.append(Heading(page=page, offset=offset, text=heading))
        offset += len(line) + 1
    return found


def clean_pages(raw_pages: Sequence[RawPage]) -> tuple[list[str], list[int | None]]:
    """Cleaned text of each page, and the printed page numbers seen at page edges."""
    split = [normalise(p.text).split("\n") for p in raw_pages]
    keys = running_lines(split)
    texts: list[str] = []
    printed: list[int | None] = []
    for lines in split:
        kept, number = _strip_edges(lines, keys)
        printed.append(number)
        text = rejoin_hyphenation("\n".join(kept))
        text = re.sub(r"\n{3,}", "\n\n", text).strip()
        texts.append(text)
    return texts, printed


def clean_document(raw: RawDocument) -> tuple[list[Page], list[Heading]]:
    """Pages with cleaned text and printed labels, and the document's headings in order."""
    texts, printed = clean_pages(raw.pages)
    labels = [p.label for p in raw.pages]
    if raw.kind == "pdf" and not any(p.label_is_printed for p in raw.pages):
        inferred = infer_labels(printed)
        if inferred:
            labels = inferred
    outline = {_norm(title) for _, title in raw.outline} or None
    pages: list[Page] = []
    headings: list[Heading] = []
    for raw_page, text, label in zip(raw.pages, texts, labels):
        pages.append(Page(doc_id=raw.rel_path, page=raw_page.page, label=label, text=text))
        headings.extend(find_headings(raw_page.page, text, outline))
    return pages, headings
