"""Helpers for the Streamlit app that need no Streamlit: safe Markdown, highlighting, exports, source links.

Text from documents is untrusted: a PDF may contain HTML, Markdown links or
images. Everything shown with ``st.markdown`` goes through ``escape_markdown``
first, so it renders as the literal characters and nothing else. Exported
Markdown uses the lighter ``escape_export`` so the file stays readable as
plain text while still rendering inert in a Markdown viewer.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import shutil
import string
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from .export import MARKDOWN_ENTITY, MARKDOWN_SPECIAL
from .files import sha256_file
from .records import Answer, Document, Passage, Unit
from .structure import page_units
from .text import find_spans

_PUNCTUATION = frozenset(string.punctuation)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_LEADING_SPACE = re.compile(r"(?m)^[ \t\u00a0]+")


# --- Markdown escaping -------------------------------------------------------------------


def _normalise(text: str) -> str:
    """Unix newlines, no control characters, no indentation (four spaces would start a code block)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub(" ", text)
    return _LEADING_SPACE.sub("", text)


# GitHub-flavoured Markdown turns bare "www.", "http://" and e-mail addresses into links even
# when every punctuation mark is escaped (it links the text after escapes are resolved). An
# invisible word joiner before the name, or after the "@", stops that without changing what is read.
_AUTOLINK_START = re.compile(r"(?i)(?<!\u2060)\b(?=https?:|ftp:|mailto:|www\.|xmpp:)")
_AT = re.compile(r"@(?!\u2060)")


def defuse_autolinks(text: str) -> str:
    """Text in which no bare URL, ``www.`` name or e-mail address becomes a link."""
    return _AT.sub("@\u2060", _AUTOLINK_START.sub("\u2060", text))


def _escape_chars(text: str) -> str:
    return "".join("\\" + c if c in _PUNCTUATION else c for c in defuse_autolinks(text))


def escape_markdown(text: str) -> str:
    """``text`` as Markdown that renders as exactly these characters.

    Every ASCII punctuation character gets a backslash (CommonMark allows that
    for all of them), so no link, image, emphasis, heading, list, table, math,
    HTML tag or entity can start; leading indentation is dropped so no code
    block starts either.
    """
    return _escape_chars(_normalise(text))


_EXPORT_LINE_START = re.compile(r"(?m)^(>|[#+=-](?=\s|$)|\d+(?=[.)](?:\s|$)))")


def escape_export(text: str) -> str:
    """Light escaping for downloaded Markdown: only what would start markup.

    Brackets, angle brackets, emphasis and code marks, pipes, tildes, dollars
    and entity-like ampersands get a backslash, and a heading, quote or list
    marker at the start of a line; "4.1", "self-harm" and "Q&A" stay as they
    are, so the file reads cleanly when pasted as plain text.
    """
    text = MARKDOWN_SPECIAL.sub(r"\\\1", _normalise(text))
    text = MARKDOWN_ENTITY.sub(r"\\&", text)
    return _EXPORT_LINE_START.sub(lambda m: m.group(1) + "\\" if m.group(1)[0].isdigit() else "\\" + m.group(1), text)


def paragraphs(text: str) -> list[str]:
    """The text's paragraphs with the PDF's hard line breaks inside them joined."""
    return [" ".join(line.strip() for line in block.split("\n") if line.strip())
            for block in re.split(r"\n\s*\n", _normalise(text)) if block.strip()]


def quote_block(text: str) -> str:
    """Escaped text as a Markdown block quote: one quoted line per paragraph, blank quoted lines between."""
    return "\n>\n".join(f"> {escape_export(p)}" for p in paragraphs(text))


# --- highlighting ------------------------------------------------------------------------


def _bold(segment: str) -> str:
    """Escaped segment in bold, line by line (emphasis cannot cross a line break)."""
    out = []
    for line in segment.split("\n"):
        core = line.strip()
        if not core:
            out.append(line)
            continue
        lead = line[: len(line) - len(line.lstrip())]
        trail = line[len(line.rstrip()) :]
        out.append(f"{lead}**{_escape_chars(core)}**{trail}")
    return "\n".join(out)


def _keep_short_lines(rendered: str, source: str) -> str:
    """Hard line breaks after the source's short lines (headings, paragraph ends).

    PDF text keeps the printed line wraps; Markdown joins lines, which suits
    wrapped lines but runs headings into the text. A line much shorter than
    the longest one ended early, so its break is kept.
    """
    src = source.split("\n")
    out = rendered.split("\n")
    widest = max((len(line.rstrip()) for line in src), default=0)
    if len(src) != len(out) or widest < 40:
        return rendered
    for i in range(len(src) - 1):
        if src[i].strip() and src[i + 1].strip() and len(src[i].rstrip()) < 0.75 * widest:
            out[i] = out[i].rstrip() + "  "
    return "\n".join(out)


def highlight_markdown(text: str, sentences: Iterable[str] = ()) -> str:
    """Escaped Markdown of a passage with the given sentences in bold and its short lines kept."""
    text = _normalise(text)
    out: list[str] = []
    pos = 0
    for start, end in find_spans(text, sentences):
        out.append(_escape_chars(text[pos:start]))
        out.append(_bold(text[start:end]))
        pos = end
    out.append(_escape_chars(text[pos:]))
    return _keep_short_lines("".join(out), text)


_HEADING_MARKS = re.compile(r"#{1,6}[ \t]*")
_SPACES = re.compile(r"\s+")


def _marked(text: str, start: int, end: int, spans: Sequence[tuple[int, int]]) -> str:
    """``text[start:end]`` on one line, escaped, with the parts inside ``spans`` in bold."""
    out: list[str] = []
    pos = start
    for a, b in spans:
        a, b = max(a, start), min(b, end)
        if a >= b:
            continue
        out.append(_escape_chars(_SPACES.sub(" ", text[pos:a])))
        piece = _SPACES.sub(" ", text[a:b])
        core = piece.strip()
        if core:
            lead = " " if piece[:1] == " " else ""
            trail = " " if piece[-1:] == " " else ""
            out.append(f"{lead}**{_escape_chars(core)}**{trail}")
        pos = b
    out.append(_escape_chars(_SPACES.sub(" ", text[pos:end])))
    return "".join(out).strip()


def card_markdown(text: str, sentences: Iterable[str] = (), *, cut_before: bool = False, cut_after: bool = False,
                  found: Sequence[Unit] | None = None) -> str:
    """Escaped Markdown of passage or page text read as its units, with the given sentences in bold.

    Document text carries its own layout marks: "##" before a Markdown heading,
    "- " before a list item, and in a PDF a heading is only a short line of its
    own. Shown as it is, the marks appear literally and a heading runs into the
    sentence before it. Here each unit ``qa.text.units`` finds is placed as
    what it is: a heading on its own line in bold without its "#" marks, a list
    item as a Markdown list item without its bullet (a numbered item on a line
    of its own with its number, which may be cited), sentences joined over the
    PDF's wrapped lines into paragraphs (a new paragraph after a blank line or
    a line that ended early). All document text is escaped, so nothing in it
    can start markup of its own. ``cut_before`` and ``cut_after`` add "…"
    where the text is an excerpt of a longer page. ``found`` are the text's
    units as ingest stored them (see ``qa.structure``); without them (or when
    the text needs normalising, which moves offsets) they are read here.
    """
    shown = _normalise(text)
    if found is None or shown != text:
        found = page_units(shown)
    text = shown
    spans = find_spans(text, sentences)
    widest = max((len(line.rstrip()) for line in text.split("\n")), default=0)
    blocks: list[tuple[str, str]] = []  # (kind, Markdown): "heading", "item" or "para"
    para: list[str] = []
    last = 0  # end of the previous unit

    def close() -> None:
        if para:
            blocks.append(("para", " ".join(para)))
            para.clear()

    for unit in found:
        gap = text[last:unit.start]
        line_gap = gap[gap.rfind("\n") + 1:]
        if unit.kind != "item" and line_gap.strip():  # a footnote's or a table row's number: shown as on the page
            unit = Unit(unit.start - len(line_gap.lstrip()), unit.end, "", unit.kind)
            gap = gap[: len(gap) - len(line_gap.lstrip())]
        if unit.kind == "heading":
            close()
            lead = _HEADING_MARKS.match(text, unit.start)
            shown = _marked(text, lead.end() if lead else unit.start, unit.end, ())  # bold already
            if shown:
                blocks.append(("heading", f"**{shown}**"))
        elif unit.kind == "item":
            close()
            marker = text[text.rfind("\n", 0, unit.start) + 1:unit.start].strip()
            body = _marked(text, unit.start, unit.end, spans)
            if marker[:1].isalnum() or marker[:1] == "(":  # "1." or "(a)": the number is part of what is read
                blocks.append(("numbered", f"{_escape_chars(marker)} {body}"))
            else:
                blocks.append(("item", "- " + body))
        elif unit.kind == "field":  # a "label: value" line or a table's row: a line of its own
            close()
            blocks.append(("para", _marked(text, unit.start, unit.end, spans)))
        else:
            line_start = text.rfind("\n", 0, last) + 1
            ended_early = "\n" in gap and len(text[line_start:last].rstrip()) < 0.75 * widest
            if para and ("\n\n" in gap or ended_early):
                close()
            para.append(_marked(text, unit.start, unit.end, spans))
        last = unit.end
    close()
    if cut_before and blocks and blocks[0][0] == "para":  # a heading or list item starts afresh anyway
        blocks[0] = ("para", "…" + blocks[0][1])
    if cut_after and blocks:
        kind, body = blocks[-1]
        blocks[-1] = (kind, body + (" …" if body.rstrip("*").endswith((".", "!", "?", ":", ";")) else "…"))
    out: list[str] = []
    for i, (kind, body) in enumerate(blocks):
        if i:
            same = kind == blocks[i - 1][0]
            out.append("\n" if same and kind == "item" else "  \n" if same and kind == "numbered" else "\n\n")
        out.append(body)
    return "".join(out)


def sentences_for(answer: Answer, rank: int) -> list[str]:
    """The answer sentences taken from the passage of this rank."""
    return [s.text for s in answer.sentences if rank in s.passages]


def markers(ranks: Sequence[int]) -> str:
    """``[1][3]``: citation markers for passage ranks."""
    return "".join(f"[{r}]" for r in ranks)


def relevance(passage: Passage) -> float:
    """The passage's cosine similarity to the query, clipped to 0..1 for a progress bar."""
    return min(1.0, max(0.0, float(passage.dense_score)))


# --- conversation and exports ------------------------------------------------------------


@dataclass(frozen=True)
class Turn:
    """One question of a conversation with its answer, or the error that stopped it."""

    question: str
    answer: Answer | None = None
    error: str = ""
    filters: str = ""  # a human description of the filters in force, "" when none
    standalone: bool = False  # asked without the earlier questions as context


def _year(document: Document) -> str:
    return str(document.year) if document.year else "n.d."


def passage_markdown(passage: Passage, heading: str = "") -> str:
    """A passage for export: heading, location, the text quoted and the full reference."""
    c = passage.chunk
    lines = [f"**{heading or f'[{passage.rank}]'}** {escape_export(passage.citation.short)}"]
    if c.section:
        lines.append(f"Section: {escape_export(c.section)}")
    lines += ["", quote_block(c.text), "", f"Reference: {escape_export(passage.citation.reference)}", ""]
    return "\n".join(lines)


def answer_markdown(answer: Answer) -> str:
    """The answer sentences with their citation markers, or the not-covered notice."""
    if not answer.passages:
        return "_No passage matched the question and filters._\n"
    if not answer.found:
        return "_The corpus does not appear to cover this question. The closest passages below are weak matches._\n"
    return "\n".join(f"- {escape_export(s.text)} {escape_export(markers(s.passages))}" for s in answer.sentences) + "\n"


def conversation_markdown(turns: Sequence[Turn], title: str = "Evidence Q&A conversation") -> str:
    """The whole conversation: each question, its answer and its passages quoted with citations."""
    parts = [f"# {escape_export(title)}", ""]
    for number, turn in enumerate(turns, start=1):
        parts += [f"## {number}. {escape_export(turn.question)}", ""]
        if turn.error:
            parts += [f"_Error: {escape_export(turn.error)}_", ""]
            continue
        answer = turn.answer
        if answer is None:
            continue
        if answer.query.strip() != turn.question.strip():
            parts += [f"_Searched for:_ {escape_export(answer.query)}", ""]
        if turn.filters:
            parts += [f"_Filters:_ {escape_export(turn.filters)}", ""]
        parts += [answer_markdown(answer), "### Sources" if answer.found else "### Closest passages (weak matches)", ""]
        parts += [passage_markdown(p) for p in answer.passages]
    return "\n".join(parts).rstrip() + "\n"


CSV_COLUMNS = ("question", "rank", "citation", "reference", "document", "title", "year", "page", "page_label",
               "section", "url", "similarity", "passage")


def _cell(value: object) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def citations_csv(rows: Iterable[tuple[str, Passage]]) -> str:
    """One CSV row per (question, passage): the citation, its location and the passage text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for question, p in rows:
        d, c = p.document, p.chunk
        writer.writerow([_cell(v) for v in (
            question, p.rank, p.citation.short, p.citation.reference, d.doc_id, d.title, d.year or "", c.page,
            c.page_label, c.section, d.meta.url, f"{p.dense_score:.3f}", c.text,
        )])
    return buffer.getvalue()


def conversation_rows(turns: Sequence[Turn]) -> list[tuple[str, Passage]]:
    """(question, passage) for every passage shown in a conversation."""
    return [(t.question, p) for t in turns if t.answer is not None for p in t.answer.passages]


def describe_filters(titles: Sequence[str], years: tuple[int, int] | None) -> str:
    """'2 documents; 2015-2017': what the sidebar filters restrict, '' when nothing."""
    parts = []
    if titles:
        parts.append(titles[0] if len(titles) == 1 else f"{len(titles)} documents")
    if years:
        parts.append(f"{years[0]}–{years[1]}" if years[0] != years[1] else str(years[0]))
    return "; ".join(parts)


# --- opening sources in the browser ------------------------------------------------------

STATIC_ROUTE = "app/static"
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"  # the folder beside app.py that Streamlit serves there
_PUBLISH_LOCK = threading.Lock()


def _safe_name(doc_id: str) -> str:
    name = Path(doc_id).name
    return re.sub(r"[^\w.\-]+", "_", name).strip("._") or "document"


def published_name(document: Document) -> str:
    """Where a source is served under the static folder: ``corpus/<hash>/<name>``.

    The content hash keeps different versions (and different corpora) apart;
    text sources get ``.txt`` so the browser shows them as plain text instead
    of running or downloading them.
    """
    name = _safe_name(document.doc_id)
    if document.kind != "pdf":
        name += ".txt"
    return f"corpus/{document.content_hash[:16]}/{name}"


def publish_source(document: Document, source: Path | None, static_dir: Path, pages_text: Sequence[str] = ()) -> str | None:
    """Put a document where the app's static route serves it; its URL relative to the app, or None.

    A source is copied only when its bytes still match what was indexed, so the
    page number in the link is right. An HTML source
    is never served as HTML (it would run in the app's origin): its indexed
    text, ``pages_text``, is served instead; Markdown and text files are
    served as they are, as plain text.
    """
    rel = published_name(document)
    target = static_dir / rel
    url = f"{STATIC_ROUTE}/{quote(rel)}"
    if target.is_file():
        return url
    with _PUBLISH_LOCK:
        if target.is_file():
            return url
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            if document.kind == "html" or source is None:
                if not pages_text:
                    return None
                tmp.write_text("\n\n".join(pages_text), encoding="utf-8")
            else:
                shutil.copyfile(source, tmp)  # a copy, not a link: later edits to the corpus cannot reach it
                if sha256_file(tmp) != document.content_hash:
                    return None
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    return url


def publish_page_image(document: Document, page: int, png: bytes, static_dir: Path) -> str:
    """Serve a drawn page (PNG) beside its document's copy; its URL relative to the app.

    A page drawn in a card is as wide as the card (on a phone, under 300 pixels);
    opened on its own the browser shows it at full size and lets the reader zoom.
    The name holds the image's own hash, so each drawing of the page (other
    quotes marked) has its own file; ``prune_published`` deletes them with the
    source copies after an index change, and they are drawn again when asked for.
    """
    digest = hashlib.sha256(png).hexdigest()[:16]
    rel = f"corpus/{document.content_hash[:16]}/pages/{_safe_name(document.doc_id)}-p{page}-{digest}.png"
    target = static_dir / rel
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            tmp.write_bytes(png)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    return f"{STATIC_ROUTE}/{quote(rel)}"


def page_url(url: str, document: Document, page: int) -> str:
    """The link that opens a source at a physical page (PDF viewers read ``#page=N``)."""
    return f"{url}#page={page}" if document.kind == "pdf" else url


def prune_published(static_dir: Path, keep: Iterable[str]) -> list[str]:
    """Delete published copies that are not in ``keep`` (``published_name`` values); what was deleted.

    Run after every index change, so a document removed from the corpus, or
    an older version of a changed one, is no longer served at its old URL.
    Files being written (dot-named temporaries) are left alone.
    """
    root = static_dir / "corpus"
    if not root.is_dir():
        return []
    wanted = {str(Path(k)) for k in keep}
    removed: list[str] = []
    with _PUBLISH_LOCK:
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                rel = str(path.relative_to(static_dir))
                if rel not in wanted:
                    path.unlink(missing_ok=True)
                    removed.append(rel)
        for folder in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            try:
                folder.rmdir()  # only empty folders go
            except OSError:
                pass
    return removed


def unpublish(static_dir: Path, documents: Iterable[Document]) -> list[str]:
    """Delete the published copies of these document versions (and their emptied folders); what was deleted.

    Run by the ingest that drops or replaces them, so a removed document is
    not served while no app is running to prune the folder. A version still
    indexed elsewhere is published again when the app next links to it.
    """
    removed: list[str] = []
    with _PUBLISH_LOCK:
        for document in documents:
            rel = published_name(document)
            target = static_dir / rel
            if target.is_file() or target.is_symlink():
                target.unlink(missing_ok=True)
                removed.append(rel)
            try:
                target.parent.rmdir()  # only an empty folder goes
            except OSError:
                pass
    return removed


# --- the look: colours chosen for contrast (WCAG AA, 4.5:1 for text) ---------------------------

TEXT = "#1b1f24"
FADED_TEXT = "#454c57"  # captions, widget and metric labels (Streamlit's default is the text colour at 60%)
PLACEHOLDER = "#59606b"
BACKGROUND = "#ffffff"
SIDEBAR = "#f0f2f6"
# While a question runs, Streamlit fades what the run has not redrawn yet to a third of its colour
# (about 1.8:1 for text). The conversation stays as it is (the reply area says it is searching);
# the sidebar, redrawn last, fades only as far as keeps its captions at 4.5:1.
STALE_MAIN = 1
STALE_SIDEBAR = 0.85

APP_CSS = f"""<style>
[data-testid="stCaptionContainer"], [data-testid="stCaptionContainer"] *,
[data-testid="stWidgetLabel"], [data-testid="stWidgetLabel"] *,
[data-testid="stMetricLabel"], [data-testid="stMetricLabel"] *,
[data-testid="stImageCaption"] {{ color: {FADED_TEXT} !important; opacity: 1 !important; }}
[data-testid="stChatInputTextArea"]::placeholder {{ color: {PLACEHOLDER} !important; opacity: 1 !important; }}
h3[id^="source-"] {{ font-size: 1.15rem !important; line-height: 1.4 !important; padding: 0.1rem 0 !important;
  scroll-margin-top: 4.5rem; }}
[data-testid="stChatMessage"] {{ scroll-margin-top: 4rem; }}
[data-testid="stMain"] [data-stale="true"] {{ opacity: {STALE_MAIN} !important; transition: none !important; }}
[data-testid="stSidebar"] [data-stale="true"] {{ opacity: {STALE_SIDEBAR} !important; }}
</style>"""
