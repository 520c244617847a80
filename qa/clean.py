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
# The look-behind starts a match only at the start of a word: without it the engine tried
# every position inside a long run of word characters, each time scanning to its end
# (quadratic: a 40,000-character "word" took 25 s, a 10 MB one never finished).
_HYPHEN_BREAK = re.compile(r"(?<!\w)(\w*[A-Za-z])-\n([a-z][\w'\u2019]*(?:-[A-Za-z][\w'\u2019]*)*)[ \n]?")
_VOCAB_WORD = re.compile(r"[A-Za-z]+(?:-[A-Za-z]+)*")
_EDGE_LINES = 3
_PAGE_NUMBER_LINE = re.compile(r"^(?:page\s+)?[-\u2013(]?\s*(\d{1,4})\s*[-\u2013)]?(?:\s+of\s+\d{1,4})?$", re.I)


def normalise(text: str) -> str:
    """NFKC, a small character map, no control characters, single spaces, trimmed lines.

    Characters are removed before NFKC, not after, so that what is left composes
    once and for all: ``normalise(normalise(t)) == normalise(t)``.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text.translate(_CHAR_MAP))
    text = _PRIVATE_USE.sub("-", text)
    text = unicodedata.normalize("NFKC", text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return "\n".join(lines)


# Words after a line-end hyphen that show a suspended compound ("short- and long-term").
_SUSPENDED = {"and", "or", "to", "nor"}


def vocabulary(texts: Sequence[str]) -> set[str]:
    """Lower-cased words and hyphenated compounds of a document, to settle line-end hyphens."""
    words: set[str] = set()
    for text in texts:
        words.update(m.lower() for m in _VOCAB_WORD.findall(text))
    return words


def rejoin_hyphenation(text: str, words: set[str] | None = None) -> str:
    """Mend words broken at a line-end hyphen; the line break moves after the word.

    'infor-\\nmation' becomes 'information' when the document spells it so
    elsewhere (or when no vocabulary is given); a compound broken at its own
    hyphen ('multi-\\nagency') keeps it; 'short-\\nand long-term' keeps the hyphen
    and gets its space back. Nothing moves between pages: this works on one
    page's text.
    """

    def mend(m: re.Match[str]) -> str:
        first, second = m.group(1), m.group(2)
        if second.lower() in _SUSPENDED:
            return f"{first}- {second}\n"
        joined = first + second
        if words is None:
            return joined + "\n"
        stem = re.match(r"[A-Za-z]+", second)
        compound = f"{first}-{stem.group(0) if stem else second}".lower()
        whole = (first + (stem.group(0) if stem else second)).lower()
        if compound not in words and whole in words:
            return joined + "\n"
        return f"{first}-{second}\n"

    return _HYPHEN_BREAK.sub(mend, text)


def _line_key(line: str) -> str:
    """A line's identity for repeat detection: digits and case do not count."""
    return re.sub(r"\d+", "#", line.lower()).strip()


def running_lines(pages: Sequence[Sequence[str]], min_share: float = 0.5) -> set[str]:
    """Keys of lines that sit near the top or bottom of many pages (headers, footers).

    From three pages on, a line must recur on at least three and on ``min_share``
    of them; a two-page document's running lines are those on both pages'
    first or last line, where nothing but a header or footer repeats.
    """
    n = len(pages)
    if n < 2:
        return set()
    if n == 2:
        first, second = ([_line_key(line) for line in lines if line] for lines in pages)
        if not first or not second:
            return set()
        same = {first[0]} & {second[0]} | {first[-1]} & {second[-1]}
        return {key for key in same if len(key) > 3}
    counts: Counter[str] = Counter()
    for lines in pages:
        content = [line for line in lines if line]
        edge = set(_line_key(line) for line in content[:_EDGE_LINES] + content[-_EDGE_LINES:])
        counts.update(key for key in edge if key)
    threshold = max(3, int(n * min_share + 0.999))
    return {key for key, count in counts.items() if count >= threshold}


def _edge_numbers(lines: Sequence[str], keys: set[str]) -> list[int]:
    """Numbers a page shows at its top or bottom edge that may be its page number.

    A lone number line counts, and so does a running line (header or footer)
    holding exactly one number, such as "Report title | 4". Outermost lines
    come first: the last line, the first, the one before the last, and so on.
    """
    content_idx = [i for i, line in enumerate(lines) if line]
    head, tail = content_idx[:_EDGE_LINES], content_idx[-_EDGE_LINES:][::-1]
    order = list(dict.fromkeys(i for pair in zip(tail, head, strict=True) for i in pair))
    order += [i for i in tail + head if i not in order]
    numbers: list[int] = []
    for i in order:
        number = _PAGE_NUMBER_LINE.match(lines[i])
        if number:
            numbers.append(int(number.group(1)))
        elif _line_key(lines[i]) in keys:
            found = re.findall(r"\b(\d{1,4})\b", lines[i])
            if len(found) == 1:
                numbers.append(int(found[0]))
    return numbers


def page_offsets(candidates: Sequence[Sequence[int]]) -> set[int]:
    """Offsets (printed number minus physical page) that recur, so are page numbering.

    A number that sits at a page's edge once, out of step with the rest, is more
    likely content (a figure, a table total) than a page number.
    """
    counts = Counter(offset for i, numbers in enumerate(candidates) for offset in {n - (i + 1) for n in numbers})
    return {offset for offset, count in counts.items() if count >= 2}


def _strip_edges(lines: list[str], keys: set[str], expected: set[int]) -> list[str]:
    """Drop running lines and page numbers at a page's edges; keep everything else.

    A line that plainly is a page number ("Page 4", "- 4 -", "4 of 20") goes.
    A bare number goes only when it is a number this page could carry
    (``expected``: its physical number, its PDF label, or one in step with the
    document's numbering); otherwise it is content and stays.
    """
    content_idx = [i for i, line in enumerate(lines) if line]
    edge = set(content_idx[:_EDGE_LINES] + content_idx[-_EDGE_LINES:])
    keep: list[str] = []
    for i, line in enumerate(lines):
        if i in edge:
            if line.isdigit():  # bare: a page number only when in step
                if int(line) in expected:
                    continue
            elif _PAGE_NUMBER_LINE.match(line) or _line_key(line) in keys:
                continue
        keep.append(line)
    return keep


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


# A heading does not end on a word that needs another after it.
_DANGLING = {
    "a", "an", "the", "and", "or", "but", "of", "to", "in", "on", "at", "for", "with", "by", "from",
    "into", "that", "which", "who", "is", "are", "was", "were", "be", "been", "has", "have", "as",
    "their", "its", "our", "this", "these", "those", "than", "not", "while", "whether",
}
_VERBS = {"is", "are", "was", "were", "has", "have", "had", "will", "can", "should", "must", "does", "do"}
_BARE_NUMBER = re.compile(r"^\d{1,3}\s")  # "7 Wave 1 case study..." - often a footnote


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
            and not rest.endswith((".", ",", ";", ":", "-"))
            and words[-1].lower() not in _DANGLING
            and not (len(words) > 6 and _VERBS & {w.lower() for w in words})  # a sentence, not a title
        ):
            return line
        return None
    words = line.split()
    if 2 <= len(words) <= 10 and line.upper() == line and sum(c.isalpha() for c in line) >= 6:
        return line.title() if len(line) > 3 else line
    return None


def title_heading(headings: Sequence[Heading], pages: int = 2) -> str:
    """A heading on the first pages that can stand as the document's title, or "".

    Generic headings ("Contents", "Executive summary") and numbered section
    headings ("1. Introduction") say nothing about which document this is.
    """
    for heading in headings:
        if heading.page > pages:
            break
        normed = _norm(heading.text)
        generic = normed in _KNOWN_HEADINGS or normed.startswith(("table of contents", "list of"))
        if len(normed) > 3 and not generic and not _NUMBERED.match(heading.text):
            return heading.text
    return ""


def _starts_lower(line: str) -> bool:
    """True when a line's first letter (after quotes and brackets) is lower case."""
    for char in line:
        if char.isalpha():
            return char.islower()
        if char.isdigit():
            return False
    return False


def find_headings(page: int, text: str, outline: set[str] | None = None) -> list[Heading]:
    """Headings on one page with their character offsets in ``text``.

    A line followed by one starting in lower case is the first line of a
    numbered paragraph, not a heading (Ofsted and statutory guidance number
    their paragraphs), unless the outline names it. A heading the outline
    names across two lines is found on its first line. A numbered line as wide
    as the page's body text is a paragraph that wrapped. A line starting with a
    bare number near the foot of a long page is a footnote.
    """
    found: list[Heading] = []
    lines = text.split("\n")
    content = [i for i, line in enumerate(lines) if line.strip()]
    foot = set(content[-max(3, len(content) // 4) :]) if len(content) >= 12 else set()
    widths = sorted(len(lines[i].strip()) for i in content)
    full = widths[(3 * len(widths)) // 4] if len(widths) >= 8 else 0  # a typical full line of body text
    offset = 0
    skip_to = -1
    for i, line in enumerate(lines):
        if i > skip_to and line.strip():
            following_index = next((j for j in range(i + 1, len(lines)) if lines[j].strip()), None)
            following = lines[following_index] if following_index is not None else ""
            two_lines = f"{line.strip()} {following.strip()}"
            if outline and following and _norm(line) not in outline and _norm(two_lines) in outline:
                found.append(Heading(page=page, offset=offset, text=two_lines))
                skip_to = following_index if following_index is not None else i
            else:
                heading = heading_text(line, outline)
                named = bool(outline and _norm(line) in outline)
                if heading and not named and not line.startswith("#"):
                    continues = _starts_lower(following) or line.rstrip().endswith((",", "-"))
                    # A numbered line as wide as the body text, with text under it, is the
                    # first line of a numbered paragraph that wrapped ("81. Joint work between ...").
                    wrapped = (full >= 60 and len(line.strip()) >= 0.85 * full and bool(following.strip())
                               and bool(_NUMBERED.match(line.strip())) and heading_text(following, outline) is None)
                    continues = continues or wrapped
                    footnote = i in foot and bool(_BARE_NUMBER.match(line.strip()))
                    if continues or footnote:
                        heading = None
                if heading:
                    found.append(Heading(page=page, offset=offset, text=heading))
        offset += len(line) + 1
    return found


def clean_pages(raw_pages: Sequence[RawPage], *, edges: bool = True) -> tuple[list[str], list[int | None]]:
    """Cleaned text of each page, and the printed page numbers seen at page edges.

    ``edges=False`` keeps every line: the pages of a text document are its own sections, with no
    running headers or page numbers to strip, and lines that repeat there are content.
    """
    normalised = [normalise(p.text) for p in raw_pages]
    words = vocabulary(normalised)
    split = [text.split("\n") for text in normalised]
    keys = running_lines(split) if edges else set()
    candidates = [_edge_numbers(lines, keys) if edges else [] for lines in split]
    offsets = page_offsets(candidates)
    printed = [
        next((n for n in numbers if n - (i + 1) in offsets), numbers[0] if numbers else None)
        for i, numbers in enumerate(candidates)
    ]
    texts: list[str] = []
    for raw_page, lines in zip(raw_pages, split, strict=True):
        expected = {raw_page.page + offset for offset in offsets} | {raw_page.page}
        if raw_page.label.isdigit():
            expected.add(int(raw_page.label))
        kept = _strip_edges(lines, keys, expected) if edges else lines
        text = rejoin_hyphenation("\n".join(kept), words)
        text = re.sub(r"\n{3,}", "\n\n", text).strip()
        texts.append(text)
    return texts, printed


def clean_document(raw: RawDocument) -> tuple[list[Page], list[Heading]]:
    """Pages with cleaned text and printed labels, and the document's headings in order."""
    texts, printed = clean_pages(raw.pages, edges=raw.kind == "pdf")
    labels = [p.label for p in raw.pages]
    if raw.kind == "pdf" and not any(p.label_is_printed for p in raw.pages):
        inferred = infer_labels(printed)
        if inferred:
            labels = inferred
    outline = {_norm(title) for _, title in raw.outline} or None
    pages: list[Page] = []
    headings: list[Heading] = []
    for raw_page, text, label in zip(raw.pages, texts, labels, strict=True):
        pages.append(Page(doc_id=raw.rel_path, page=raw_page.page, label=label, text=text))
        headings.extend(find_headings(raw_page.page, text, outline))
    return pages, headings
