"""Quotes and references to take away: plain text, Markdown, Word, BibTeX and RIS.

A trainer collects single sentences as quotes, each with its short citation
(``"…" (Title, 2017, p. 4)``); a researcher takes the cited documents into a
reference manager. Nothing here needs Streamlit. Document text is untrusted:
the Markdown export neutralises only what would start markup (so "4.1", "-"
and "Q&A" stay as typed), BibTeX braces are balanced and RIS fields are one line.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .cite import page_reference
from .records import Chunk, Document, EvidenceTable, Passage

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_SPACES = re.compile(r"[ \t\u00a0]*\n[ \t\u00a0]*|[ \t\u00a0]{2,}")


def one_line(text: str) -> str:
    """Text with the PDF's hard line breaks and runs of spaces joined into single spaces."""
    text = _CONTROL.sub(" ", text.replace("\r\n", "\n").replace("\r", "\n"))
    return _SPACES.sub(" ", text).strip()


def accessed_date(day: dt.date | None = None) -> str:
    """'30 November 2026': the date a reference was accessed, in the Harvard style."""
    day = day or dt.date.today()
    return f"{day.day} {day:%B %Y}"


@dataclass(frozen=True)
class Quote:
    """One sentence kept from a source, holding the document and chunk it cites, so it needs no index.

    Only the sentence and the question it answered are the quote's own; title,
    year, page and the rest are read from the cited document and chunk, so a
    quote cannot disagree with the source it names.
    """

    text: str  # the sentence on one line
    question: str
    document: Document
    chunk: Chunk

    @property
    def doc_id(self) -> str:
        return self.document.doc_id

    @property
    def page(self) -> int:
        """The physical page (1-based) the sentence is on."""
        return self.chunk.page

    @property
    def title(self) -> str:
        return one_line(self.document.title)

    @property
    def year_text(self) -> str:
        return str(self.document.year) if self.document.year else "n.d."

    @property
    def where(self) -> str:
        """'p. 4', 'p. iv (PDF p. 4)' or "section '…'", as the source is cited."""
        return one_line(page_reference(self.document, self.chunk))

    @property
    def key(self) -> str:
        """Identity of a quote: the same sentence of the same page is one pin."""
        return f"{self.doc_id}#{self.page}:{one_line(self.text).casefold()}"

    @property
    def short(self) -> str:
        """'(Title, 2017, p. 4)': the in-text citation."""
        where = self.where
        parts = [self.title, self.year_text] + ([where] if where else [])
        return "(" + ", ".join(parts) + ")"

    @property
    def cited(self) -> str:
        """'“The sentence.” (Title, 2017, p. 4)': the quote as pasted into course notes."""
        return f"“{one_line(self.text)}” {self.short}"


def quote_from(passage: Passage, sentence: str, question: str) -> Quote:
    """A quote of one sentence of a passage."""
    return Quote(text=one_line(sentence), question=one_line(question), document=passage.document, chunk=passage.chunk)


def reference(quote_or_doc: Quote | Document, accessed: str) -> str:
    """A Harvard-style reference of the document (not the page), with its URL and the accessed date."""
    meta = (quote_or_doc.document if isinstance(quote_or_doc, Quote) else quote_or_doc).meta
    title, publisher, url = one_line(meta.title), one_line(meta.publisher), meta.url.strip()
    author = one_line(meta.authors) or publisher or "Anon."
    parts = [f"{author} ({meta.year or 'n.d.'}) {title}."]
    if publisher and publisher != author:
        parts.append(f"{publisher}.")
    if url:
        parts.append(f"Available at: {url} (Accessed: {accessed}).")
    return " ".join(parts)


def _with_references(word: Any, quotes: Sequence[Quote], accessed: str) -> bytes:
    """The Word document's bytes, closed by the full references of the quoted documents."""
    word.add_heading("References", level=2)
    for q in _unique_docs(quotes):
        word.add_paragraph(_docx_safe(reference(q, accessed)))
    out = io.BytesIO()
    word.save(out)
    return out.getvalue()


def _unique_docs(quotes: Sequence[Quote]) -> list[Quote]:
    seen: dict[str, Quote] = {}
    for q in quotes:
        seen.setdefault(q.doc_id, q)
    return list(seen.values())


def quotes_text(quotes: Sequence[Quote], accessed: str, title: str = "Quotes") -> str:
    """The collection as plain text: numbered quotes with citations, then the references."""
    lines = [title, ""]
    for n, q in enumerate(quotes, start=1):
        lines += [f"{n}. {q.cited}", ""]
    lines += ["References", ""]
    lines += [reference(q, accessed) for q in _unique_docs(quotes)]
    return "\n".join(lines).rstrip() + "\n"


# Markdown's special characters and an entity-like "&name;": escaped in every Markdown this package writes.
MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|~$])")
MARKDOWN_ENTITY = re.compile(r"&(?=#?\w+;)")
_MD_LINE_START = re.compile(r"^([#>+=-]|\d+(?=[.)]\s))")


def markdown_text(text: str) -> str:
    """One line of untrusted text as Markdown: characters that start markup are escaped, nothing else.

    Prose such as "4.1", "self-harm" or "Q&A" keeps its characters; brackets,
    angle brackets, emphasis and code marks, pipes and entity-like ampersands
    get a backslash, so no link, image, tag or entity can form.
    """
    text = MARKDOWN_SPECIAL.sub(r"\\\1", one_line(text))
    text = MARKDOWN_ENTITY.sub(r"\\&", text)
    return _MD_LINE_START.sub(r"\\\1", text)


def quotes_markdown(quotes: Sequence[Quote], accessed: str, title: str = "Quotes") -> str:
    """The collection as Markdown: each quote a block quote with its citation, then the references."""
    parts = [f"# {markdown_text(title)}", ""]
    for q in quotes:
        parts += [f"> “{markdown_text(q.text)}” {markdown_text(q.short)}", ""]
    parts += ["## References", ""]
    parts += [f"- {markdown_text(reference(q, accessed))}" for q in _unique_docs(quotes)]
    return "\n".join(parts).rstrip() + "\n"


def _docx_safe(text: str) -> str:
    """Text Word accepts: XML forbids most control characters."""
    return "".join(c for c in text if c in "\t\n" or unicodedata.category(c) != "Cc")


def quotes_docx(quotes: Sequence[Quote], accessed: str, title: str = "Quotes") -> bytes:
    """The collection as a Word document: a heading, each quote with its citation, then the references."""
    from docx import Document as WordDocument  # imported here: only exports need it

    word = WordDocument()
    word.core_properties.title = _docx_safe(title)
    word.add_heading(_docx_safe(title), level=1)
    for q in quotes:
        para = word.add_paragraph(style="Quote")
        para.add_run(_docx_safe(f"“{one_line(q.text)}” "))
        para.add_run(_docx_safe(q.short))
    return _with_references(word, quotes, accessed)


# --- reference managers -----------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """What a reference manager needs about one cited document."""

    doc_id: str
    title: str
    authors: str
    year: int | None
    publisher: str
    url: str

    @classmethod
    def of(cls, item: Quote | Passage | Document) -> Source:
        """The cited document of a quote or passage, or the document itself."""
        document = item if isinstance(item, Document) else item.document
        m = document.meta
        return cls(document.doc_id, one_line(m.title), one_line(m.authors), m.year, one_line(m.publisher), m.url.strip())


def sources_of(items: Iterable[Quote | Document | Passage]) -> list[Source]:
    """The distinct documents behind quotes, documents or passages, in order of first citation."""
    seen: dict[str, Source] = {}
    for item in items:
        source = Source.of(item)
        seen.setdefault(source.doc_id, source)
    return list(seen.values())


def _bib_value(text: str) -> str:
    """A BibTeX field value: LaTeX specials escaped, so braces stay balanced and nothing runs."""
    specials = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "%": r"\%", "&": r"\&", "#": r"\#",
                "$": r"\$", "_": r"\_", "^": r"\^{}", "~": r"\~{}"}
    return "".join(specials.get(c, c) for c in one_line(text))


def _bib_key(source: Source, used: set[str]) -> str:
    words = re.findall(r"[A-Za-z0-9]+", unicodedata.normalize("NFKD", source.title))
    base = (words[0].lower() if words else "doc") + (str(source.year) if source.year else "nd")
    base += "".join(w.lower() for w in words[1:3])
    key, n = base, 1
    while key in used:
        n += 1
        key = f"{base}{chr(ord('a') + n - 1) if n <= 26 else n}"
    used.add(key)
    return key


def _authors(source: Source) -> list[str]:
    return [a.strip() for a in re.split(r"\s*;\s*|\s+and\s+", source.authors) if a.strip()]


def bibtex(sources: Sequence[Source], accessed: dt.date | None = None) -> str:
    """@misc entries (reports) with title, author, year, publisher, URL and the accessed date."""
    day = (accessed or dt.date.today()).isoformat()
    used: set[str] = set()
    entries = []
    for s in sources:
        fields = [("title", "{" + _bib_value(s.title) + "}")]  # inner braces keep the title's capitals
        authors = _authors(s)
        if authors:
            fields.append(("author", " and ".join("{" + _bib_value(a) + "}" for a in authors)))
        if s.year:
            fields.append(("year", str(s.year)))
        if s.publisher:
            fields.append(("publisher", _bib_value(s.publisher)))
            fields.append(("institution", _bib_value(s.publisher)))
        if s.url:
            fields.append(("url", _bib_value(s.url).replace(r"\_", "_").replace(r"\%", "%").replace(r"\#", "#")
                           .replace(r"\&", "&").replace(r"\~{}", "~")))
            fields.append(("urldate", day))
            fields.append(("note", f"Accessed {day}"))
        body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields)
        entries.append(f"@misc{{{_bib_key(s, used)},\n{body}\n}}\n")
    return "\n".join(entries)


def ris(sources: Sequence[Source], accessed: dt.date | None = None) -> str:
    """RIS records (type RPRT) with title, authors, year, publisher, URL and the accessed date."""
    day = accessed or dt.date.today()
    records = []
    for s in sources:
        lines = ["TY  - RPRT", f"TI  - {one_line(s.title)}"]
        lines += [f"AU  - {a}" for a in _authors(s)]
        if s.year:
            lines += [f"PY  - {s.year}", f"DA  - {s.year}"]
        if s.publisher:
            lines.append(f"PB  - {s.publisher}")
        if s.url:
            lines += [f"UR  - {s.url}", f"Y2  - {day:%Y/%m/%d}"]
        lines.append("ER  - ")
        records.append("\r\n".join(lines) + "\r\n")
    return "\r\n".join(records)


# --- the evidence table: one row per report ------------------------------------------------------

TABLE_COLUMNS = ("question", "row", "title", "year", "document", "page", "page_label", "section", "quote", "score",
                 "citation", "reference")


def table_quotes(table: EvidenceTable) -> list[Quote]:
    """The table's rows as quotes (the same citation, reference and pin identity as any quote)."""
    return [quote_from(row.passage, row.text, table.question) for row in table.rows]


def _csv_cell(value: object) -> str:
    """A CSV cell on one line that a spreadsheet will not run as a formula."""
    text = "" if value is None else one_line(str(value))
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def table_csv(table: EvidenceTable, accessed: str) -> str:
    """The evidence table as CSV: per report its quote, where it is, the citation and the full reference."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(TABLE_COLUMNS)
    for n, (row, q) in enumerate(zip(table.rows, table_quotes(table), strict=True), start=1):
        writer.writerow([_csv_cell(v) for v in (
            table.question, n, q.title, q.year_text, q.doc_id, q.page, row.chunk.page_label, row.chunk.section, q.text,
            f"{row.score:.3f}", q.short, reference(q, accessed),
        )])
    return buffer.getvalue()


def table_docx(table: EvidenceTable, accessed: str, title: str = "Across the reports") -> bytes:
    """The evidence table as a Word document: the question, a table (report, year, quote, page), then the references."""
    from docx import Document as WordDocument  # imported here: only exports need it

    quotes = table_quotes(table)
    word = WordDocument()
    word.core_properties.title = _docx_safe(title)
    word.add_heading(_docx_safe(title), level=1)
    word.add_paragraph(_docx_safe(f"Question: {one_line(table.question)}"))
    grid = word.add_table(rows=1, cols=4)
    grid.style = "Table Grid"
    for cell, name in zip(grid.rows[0].cells, ("Report", "Year", "Quote", "Where"), strict=True):
        cell.text = name
    for q in quotes:
        cells = grid.add_row().cells
        for cell, value in zip(cells, (q.title, q.year_text, f"“{q.text}”", q.where or "—"), strict=True):
            cell.text = _docx_safe(value)
    if not quotes:
        word.add_paragraph("No report answers this question.")
    return _with_references(word, quotes, accessed)
