"""Frozen dataclasses shared by every stage: the project's vocabulary.

documents -> pages -> chunks -> (vectors, chunk store) -> passages -> answer.
A citation is built from a chunk's own fields (document, page, label), never
re-derived from text, so what is cited is what was stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields

# C0 and C1 control characters and the bidirectional overrides: text from a PDF's
# metadata or a page label that holds them could rewrite a terminal (``\x1b[2J``,
# a window title) or reorder what a reader sees.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def plain(text: str) -> str:
    """``text`` on one line without control characters: each run of them becomes one space."""
    return " ".join(CONTROL_CHARACTERS.sub(" ", text).split()) if CONTROL_CHARACTERS.search(text) else text


def _clean_fields(record: object, names: tuple[str, ...]) -> None:
    """Clean the named string fields of a frozen record as it is built: where untrusted text enters."""
    for name in names:
        value = getattr(record, name)
        if isinstance(value, str):
            cleaned = plain(value)
            if cleaned is not value:
                object.__setattr__(record, name, cleaned)


@dataclass(frozen=True)
class DocMeta:
    """Bibliographic metadata of one source file."""

    title: str
    authors: str = ""
    year: int | None = None
    publisher: str = ""
    url: str = ""
    licence: str = ""

    def __post_init__(self) -> None:
        _clean_fields(self, tuple(f.name for f in fields(self) if f.name != "year"))


@dataclass(frozen=True)
class Document:
    """One source file of the corpus.

    ``doc_id`` is the file's path relative to the corpus folder, in POSIX form;
    it is what ``--doc`` filters on and what the JSON output calls ``doc``.
    """

    doc_id: str
    meta: DocMeta
    content_hash: str
    kind: str  # "pdf", "txt", "md" or "html"
    n_pages: int

    @property
    def title(self) -> str:
        return self.meta.title

    @property
    def year(self) -> int | None:
        return self.meta.year


@dataclass(frozen=True)
class Unit:
    """A piece of a page or passage: ``text[start:end]`` of the text it was cut from.

    ``kind`` is "heading", "sentence", "leadin" (a sentence that ends in a colon
    and introduces a list), "item" (one entry of a list), "field" (a "label:
    value" line or a judgement table's row) or "fragment" (text that is not a
    whole sentence: a table row, a title). ``lead`` is, for an item, the index
    of its lead-in unit on its page (the list's identity); ``lead_in`` that
    lead-in's text and ``heading`` the headings the unit stands under on its
    page (the last two levels, "Findings: Caseloads"). ``vector`` is the row of
    the unit's stored vector in its index generation (quotable units only).
    """

    start: int
    end: int
    text: str
    kind: str
    lead: int | None = None
    heading: str = ""
    lead_in: str = ""
    vector: int | None = None


@dataclass(frozen=True)
class Page:
    """The cleaned text of one physical page (1-based) with its printed label.

    ``units`` is the page cut into headings, sentences, list items and fields,
    once, at ingest (see ``qa.structure``): question time reads them and never
    splits text into sentences again.
    """

    doc_id: str
    page: int
    label: str
    text: str
    units: tuple[Unit, ...] = ()

    def __post_init__(self) -> None:
        _clean_fields(self, ("label",))


@dataclass(frozen=True)
class Heading:
    """A section heading found at ``offset`` in a page's cleaned text."""

    page: int
    offset: int
    text: str

    def __post_init__(self) -> None:
        _clean_fields(self, ("text",))


@dataclass(frozen=True)
class Chunk:
    """A span of one page: ``page.text[start:end] == text``.

    A chunk never spans two pages, so its page and label are exact.
    """

    doc_id: str
    page: int
    page_label: str
    section: str
    start: int
    end: int
    text: str

    def __post_init__(self) -> None:
        _clean_fields(self, ("section", "page_label"))


@dataclass(frozen=True)
class ParsedDocument:
    """What a reader and the cleaner make of one file, before embedding."""

    document: Document
    pages: tuple[Page, ...]
    chunks: tuple[Chunk, ...]
    truncated: str = ""  # why the text was cut short by a limit, when it was
    notes: tuple[str, ...] = ()  # other remarks worth a warning (pages left out)


@dataclass(frozen=True)
class Skipped:
    """A file left out of the index, with the reason a user can act on.

    ``passing`` marks a reason that may not hold next time (the file vanished
    or could not be opened, its reader crashed, ran out of time or memory):
    such a file is tried again by the next ingest even if its bytes are unchanged.
    """

    path: str
    reason: str
    passing: bool = False


@dataclass(frozen=True)
class Citation:
    """Ready-made citations of a passage.

    ``short`` reads ``Title (Year), p. LABEL``; ``reference`` is Harvard style
    with the URL when known.
    """

    short: str
    reference: str


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its document, rank (1-based), scores and citation.

    ``units`` are the page's stored units that lie wholly inside the passage,
    with offsets into ``chunk.text`` (empty for a passage built by hand).
    """

    rank: int
    chunk_id: int
    chunk: Chunk
    document: Document
    score: float
    dense_score: float
    lexical_score: float
    citation: Citation
    units: tuple[Unit, ...] = ()


@dataclass(frozen=True)
class AnswerSentence:
    """One sentence copied verbatim from passages, with the ranks it comes from."""

    text: str
    passages: tuple[int, ...]


@dataclass(frozen=True)
class Answer:
    """The reply to one question.

    ``query`` is what was searched (the question, or the question with earlier
    turns as context). ``found`` is False when the corpus does not answer it;
    ``passages`` then holds the closest, weak matches and ``sentences`` is empty.
    ``merged`` is True when the question was taken as a follow-up and searched
    together with the previous turn (``query`` then shows both), so a reader can
    be offered to search the question on its own. ``on_topic`` says whether its
    passages held the question's names together (the evidence test), answered or
    not: a follow-up may join a turn on the corpus's topics whose answer was
    declined (None: as ``found``).
    """

    question: str
    query: str
    found: bool
    sentences: tuple[AnswerSentence, ...]
    passages: tuple[Passage, ...]
    merged: bool = False
    on_topic: bool | None = None

    @property
    def joinable(self) -> bool:
        """Whether a follow-up may be searched together with this turn."""
        return self.found if self.on_topic is None else self.on_topic


@dataclass(frozen=True)
class IngestReport:
    """Summary of one ingest run."""

    documents: int
    pages: int
    chunks: int
    embedded_chunks: int
    new_or_changed: tuple[str, ...]
    removed: tuple[str, ...]
    skipped: tuple[Skipped, ...]
    seconds: float
    index_dir: str = ""
    notes: tuple[str, ...] = ()  # documents read only in part (page or size caps, unreadable pages)


@dataclass(frozen=True)
class IndexInfo:
    """What ``qa info`` shows: size, model and provenance of an index."""

    index_dir: str
    corpus_dir: str
    built_at: str
    model: str
    model_hash: str
    dimension: int
    documents: int
    pages: int
    chunks: int
    chunking: dict[str, object] = field(default_factory=dict)
    generation: str = ""


@dataclass(frozen=True)
class ReportRow:
    """One document's best answering unit for a question: a row of the evidence table.

    ``units`` holds the quoted unit: one sentence, or the items of a list when
    a list answers (as a single answer quotes a list whole). Each is copied
    verbatim (whitespace folded) from ``passage``, which holds the document,
    the chunk (page, printed label, section) and the citation built from that
    chunk's own fields. ``score`` is the unit's score on the scale the
    abstention threshold is set on.
    """

    passage: Passage
    units: tuple[str, ...]
    score: float

    @property
    def text(self) -> str:
        """The quoted unit on one line; a list's items one after another, "; " after an item without its own stop."""
        out = ""
        for unit in self.units:
            out += ("" if not out else " " if out[-1] in ".;:!?" else "; ") + unit
        return out

    @property
    def document(self) -> Document:
        return self.passage.document

    @property
    def chunk(self) -> Chunk:
        return self.passage.chunk

    @property
    def citation(self) -> Citation:
        return self.passage.citation


@dataclass(frozen=True)
class EvidenceTable:
    """A question answered report by report: one row per document that answers it.

    ``searched`` counts the documents searched (all, or those the filters let
    through); documents that do not answer have no row. ``sort`` is "score"
    (best first) or "year" (oldest first).
    """

    question: str
    query: str
    rows: tuple[ReportRow, ...]
    searched: int
    sort: str = "score"
