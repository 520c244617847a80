"""Split cleaned pages into chunks sized in the embedding model's own tokens.

A chunk never spans two pages and records its page, printed label, the nearest
section heading above it and its character offsets in the page, so that
``page.text[chunk.start:chunk.end] == chunk.text`` always holds. Pages are
first cut at headings, so a chunk does not straddle two sections.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from itertools import pairwise
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the splitter loads when text is first cut, not for `qa --help` or `qa fetch`
    from langchain_text_splitters import RecursiveCharacterTextSplitter

from .records import Chunk, Heading, Page

TokenCounter = Callable[[str], int]


@dataclass(frozen=True)
class ChunkSettings:
    """How text is cut; recorded in the index manifest so a change asks for a rebuild."""

    chunk_tokens: int = 180
    overlap_tokens: int = 30
    min_section_tokens: int = 40
    context_chars: int = 160  # title and section prefixed to the embedded text
    # Raised whenever cleaning, heading or title rules change what a file turns into, so
    # an index built by older rules asks for a rebuild rather than mixing the two.
    text_rules: int = 3

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


_WORDPIECE = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def approximate_tokens(text: str) -> int:
    """A tokenizer-free count close to word pieces: words plus punctuation, long words count more."""
    return sum(1 + len(piece) // 8 for piece in _WORDPIECE.findall(text))


@lru_cache(maxsize=4)
def token_counter(tokenizer_file: str | None) -> TokenCounter:
    """Count tokens with the model's tokenizer.json, or approximately when there is none."""
    if not tokenizer_file:
        return approximate_tokens
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(tokenizer_file)
    tokenizer.no_truncation()
    tokenizer.no_padding()

    def count(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    return count


def _splitter(settings: ChunkSettings, count: TokenCounter) -> RecursiveCharacterTextSplitter:
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    return RecursiveCharacterTextSplitter(
        chunk_size=settings.chunk_tokens,
        chunk_overlap=settings.overlap_tokens,
        length_function=count,
        separators=["\n\n", "\n", ". ", "; ", ", ", " ", ""],
        keep_separator="end",
        strip_whitespace=True,
    )


def _segments(page: Page, headings: Sequence[Heading], count: TokenCounter, min_tokens: int) -> list[tuple[int, int]]:
    """Cut a page's text at its headings; a short segment joins the one after it."""
    cuts = sorted({0, *(h.offset for h in headings if 0 < h.offset < len(page.text))})
    bounds = [(start, end) for start, end in pairwise([*cuts, len(page.text)]) if page.text[start:end].strip()]
    merged: list[tuple[int, int]] = []
    pending: int | None = None
    for start, end in bounds:
        begin = start if pending is None else pending
        if count(page.text[begin:end]) < min_tokens and (start, end) != bounds[-1]:
            pending = begin
            continue
        merged.append((begin, end))
        pending = None
    if pending is not None:
        merged.append((pending, len(page.text)))
    return merged


def _locate(text: str, piece: str, cursor: int, last_end: int, limit: int) -> int:
    """Where the splitter's next ``piece`` sits in ``text``, or -1.

    A piece starts after the previous one's start, no later than the previous
    end (plus whitespace), and reaches past that end. In repeated text several
    spans match; the last one that still touches the previous piece is it.
    """
    reach = last_end
    while reach < limit and text[reach].isspace():
        reach += 1
    # The last occurrence starting no later than ``reach``: one backward search, where
    # stepping through every occurrence was quadratic on repetitive text. An earlier
    # occurrence ends earlier, so if this one does not reach past ``last_end`` none does.
    best = text.rfind(piece, cursor, min(limit, reach + len(piece)))
    if best < 0 or best + len(piece) <= last_end:
        best = text.find(piece, cursor, limit)
    return best


def chunk_document(
    pages: Sequence[Page],
    headings: Sequence[Heading],
    settings: ChunkSettings,
    count: TokenCounter,
    max_chunks: int | None = None,
) -> list[Chunk]:
    """All chunks of one document, in reading order, each with its section heading.

    With ``max_chunks``, only the first that many: pages after the one where the
    count is reached are not cut at all, so the work stops with the cap.
    """
    splitter = _splitter(settings, count)
    by_page: dict[int, list[Heading]] = {}
    for heading in headings:
        by_page.setdefault(heading.page, []).append(heading)
    chunks: list[Chunk] = []
    current_section = ""
    for page in pages:
        page_headings = sorted(by_page.get(page.page, []), key=lambda h: h.offset)
        for seg_start, seg_end in _segments(page, page_headings, count, settings.min_section_tokens):
            cursor = seg_start
            last_end = seg_start
            for piece in splitter.split_text(page.text[seg_start:seg_end]):
                start = _locate(page.text, piece, cursor, last_end, seg_end)
                if start < 0:  # the splitter only strips whitespace, so this is a bug guard
                    start = page.text.find(piece, seg_start, seg_end)
                if start < 0:
                    continue
                end = start + len(piece)
                cursor = start + 1
                last_end = max(last_end, end)
                section = current_section
                for heading in page_headings:
                    # A heading counts for a chunk when it stands above it or in its first third.
                    if heading.offset <= start + (end - start) // 3:
                        section = heading.text
                chunks.append(
                    Chunk(
                        doc_id=page.doc_id,
                        page=page.page,
                        page_label=page.label,
                        section=section,
                        start=start,
                        end=end,
                        text=piece,
                    )
                )
        if page_headings:
            last = page_headings[-1].text
            current_section = "" if _LISTING.match(last) else last
        if max_chunks is not None and len(chunks) >= max_chunks:
            return chunks[:max_chunks]
    return chunks


# Headings of lists that point elsewhere: the pages after a contents page are not "in" it.
_LISTING = re.compile(r"^\W*(?:table of )?(?:contents|list of (?:figures|tables|charts|boxes))\W*$", re.I)


_DIGITS_IN_WORD = re.compile(r"(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])")


def file_words(doc_id: str) -> str:
    """A document's file name as words ("reports/ofsted-leeds-2018.pdf" -> "ofsted leeds 2018").

    File names of downloaded reports often say what titles do not (place, year,
    body), so the lexical index searches them with the title, and the abstain
    checks look there for a question's names and numbers. A number run into a
    word stands on its own: "pressures-phase9" names phase 9.
    """
    stem = doc_id.rsplit("/", 1)[-1]
    stem = stem.rsplit(".", 1)[0] if "." in stem else stem
    return " ".join(_DIGITS_IN_WORD.sub(" ", re.sub(r"[\W_]+", " ", stem)).split())


def embedding_text(chunk: Chunk, title: str, settings: ChunkSettings) -> str:
    """The text that is embedded: document title and section as context, then the chunk."""
    context = " - ".join(part for part in (title.strip(), chunk.section.strip()) if part)
    context = context[: settings.context_chars]
    return f"{context}\n{chunk.text}" if context else chunk.text
