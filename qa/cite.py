"""Citations built from a chunk's own fields: document metadata, page and printed label."""

from __future__ import annotations

from .records import Chunk, Citation, Document


def page_reference(document: Document, chunk: Chunk) -> str:
    """'p. 12' for a PDF whose printed label matches, 'p. iv (PDF p. 4)' when it differs.

    Text documents have no pages, so they are cited by section instead.
    """
    if document.kind != "pdf":
        return f"section '{chunk.section}'" if chunk.section else ""
    label = chunk.page_label.strip()
    if not label:
        return f"PDF p. {chunk.page}"
    if label == str(chunk.page):
        return f"p. {label}"
    return f"p. {label} (PDF p. {chunk.page})"


def make_citation(document: Document, chunk: Chunk) -> Citation:
    """``Title (Year), p. LABEL`` and a Harvard-style reference with the URL when known."""
    meta = document.meta
    year = str(meta.year) if meta.year else "n.d."
    where = page_reference(document, chunk)
    short = f"{meta.title} ({year})" + (f", {where}" if where else "")
    author = meta.authors or meta.publisher or "Anon."
    parts = [f"{author} ({year}) {meta.title}."]
    if meta.publisher and meta.publisher != author:
        parts.append(f"{meta.publisher}.")
    if where:
        parts.append(f"{where}.")
    if meta.url:
        parts.append(f"Available at: {meta.url}")
    return Citation(short=short, reference=" ".join(parts))
