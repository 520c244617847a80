"""Across the reports: one question answered document by document, as an evidence table.

Researchers map what each report found, trainers want one finding per source;
a single answer's five passages often come from one or two reports. Here each
document is searched on its own (as ``qa ask --doc`` restricts a question to
one document, see ``Engine.ask_by_report``), and its passages go through the
same answer machinery (``qa.answer``) and the same abstention (``qa.abstain``)
as a single answer, applied per row: a document whose passages lack the
question's names and numbers, or whose best unit scores too low, gets no row.

``evidence_table`` is the pure core: it takes each document's passages and a
way to embed texts, and returns the rows. All documents' answer units are
embedded in one call, so the table costs one encoder pass, not one per
document.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from . import abstain
from . import answer as answering
from .answer import AnswerSettings
from .records import EvidenceTable, Passage, ReportRow

SORTS = ("score", "year")


@dataclass(frozen=True)
class TableSettings:
    """How much of each document the table reads (chosen by measurement: docs/benchmarks.md).

    ``passages``: passages retrieved per document, for the evidence check;
    ``read``: of those, how many have their sentences read as answer units;
    ``candidates``: answer units per document embedded and scored (those
    sharing most of the question's words, as for a single answer). A single
    answer reads three passages and embeds up to 24 units; a table of twenty
    documents embedding as many each would take about twenty times as long.
    On the development questions over the shared corpus, five units per
    document keep every row that 24 give and the same quoted unit in nine rows
    of ten; reading only the first passage loses a quarter of the rows.
    """

    passages: int = 3
    read: int = 3
    candidates: int = 5


def answer_settings(base: AnswerSettings, table: TableSettings) -> AnswerSettings:
    """The single answer's settings, quoting one sentence (or one list) per document and reading ``table``'s share."""
    return replace(base, max_sentences=1, from_passages=min(base.from_passages, table.read, table.passages),
                   max_candidates=min(base.max_candidates, table.candidates))


def sort_rows(rows: Sequence[ReportRow], sort: str) -> tuple[ReportRow, ...]:
    """Rows best first ("score"), or oldest first with undated documents last ("year"; best first within a year)."""
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {', '.join(SORTS)}, not {sort!r}")
    by_score = sorted(rows, key=lambda r: (-r.score, r.document.doc_id))
    if sort == "score":
        return tuple(by_score)
    return tuple(sorted(by_score, key=lambda r: (r.document.year is None, r.document.year or 0)))


def evidence_table(
    question: str,
    query: str,
    per_doc: Mapping[str, Sequence[Passage]],
    query_vec: np.ndarray,
    *,
    vectors: Callable[[Sequence[answering.Candidate]], np.ndarray],
    title_vectors: Callable[[Sequence[str]], Mapping[str, np.ndarray]],
    in_corpus: Callable[[str], bool],
    label: Callable[[Passage], str],
    policy: abstain.AbstainPolicy,
    settings: AnswerSettings,
    sort: str = "score",
) -> EvidenceTable:
    """Per document, its best answering unit; documents that do not answer are left out.

    ``per_doc`` maps each searched document to its passages (best first, ranks
    from 1), as a search restricted to that document returns them. ``vectors``
    gives the candidate units' normalised vectors, ``title_vectors`` gives the vectors
    of document titles, ``in_corpus`` says whether a word occurs anywhere in
    the index and ``label`` names a passage (section, title, file name), as
    for a single answer. ``settings`` is usually ``answer_settings(...)``.
    """
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {', '.join(SORTS)}, not {sort!r}")
    # 1. The evidence check per document: what a single answer checks of its passages.
    kept: list[tuple[Sequence[Passage], list[answering.Candidate]]] = []
    for passages in per_doc.values():
        if not passages:
            continue
        best_dense = max(p.dense_score for p in passages)
        if not abstain.evidence(query, [(p.chunk.text, label(p)) for p in passages], best_dense, in_corpus, policy):
            continue
        cands = answering.candidates(passages, settings, query)
        if cands:
            kept.append((passages, cands))
    if not kept:
        return EvidenceTable(question=question, query=query, rows=(), searched=len(per_doc), sort=sort)
    # 2. Every document's units' vectors at once (stored at ingest; any without one embedded in one call).
    vecs = vectors([c for _, cands in kept for c in cands])
    titles = title_vectors([c.title for _, cands in kept for c in cands]) if settings.title_weight > 0 else {}
    # 3. Per document, the answer's choice and the answer's abstention.
    rows: list[ReportRow] = []
    at = 0
    for passages, cands in kept:
        own_vecs = vecs[at : at + len(cands)]
        at += len(cands)
        own = own_vecs @ query_vec
        if settings.title_weight > 0:
            near = answering.closeness(own_vecs, np.stack([titles[c.title] for c in cands]), query_vec,
                                       settings.title_weight)
            chosen, best = answering.choose(query, cands, near, settings, own=own)
        else:
            chosen, best = answering.choose(query, cands, own, settings)
        if not chosen:
            continue
        by_rank = {p.rank: p for p in passages}
        first = chosen[0].passages[0] if chosen[0].passages else passages[0].rank
        passage = by_rank.get(first, passages[0])
        # A list's items all come from one passage; a unit found elsewhere too stays with the first one's page.
        units = tuple(s.text for s in chosen if first in s.passages) or (chosen[0].text,)
        if not abstain.answered(query, best, [*units, label(passage)], policy):
            continue
        rows.append(ReportRow(passage=passage, units=units, score=round(float(best), 4)))
    return EvidenceTable(question=question, query=query, rows=sort_rows(rows, sort), searched=len(per_doc), sort=sort)


# --- output: the JSON object and the terminal table ------------------------------------------------


def row_to_json(row: ReportRow) -> dict[str, object]:
    """One row as ``qa ask --by-report --json`` prints it (README: the command line)."""
    chunk, document = row.chunk, row.document
    return {
        "doc": chunk.doc_id,
        "title": document.title,
        "year": document.year,
        "page": chunk.page,
        "page_label": chunk.page_label,
        "section": chunk.section,
        "text": row.text,
        "score": row.score,
        "citation": row.citation.short,
        "reference": row.citation.reference,
    }


def table_to_json(table: EvidenceTable) -> dict[str, object]:
    """The whole table: the question, what was searched, and one object per answering report."""
    return {
        "question": table.question,
        "query": table.query,
        "sort": table.sort,
        "searched": table.searched,
        "reports": [row_to_json(r) for r in table.rows],
    }


def format_table(table: EvidenceTable, width: int = 100) -> str:
    """Readable terminal output: per report its title and year, citation and the quoted unit."""
    import textwrap

    if not table.rows:
        return (f"None of the {table.searched} reports searched answers this question "
                "(the corpus does not cover it report by report).")
    order = "best first" if table.sort == "score" else "oldest first"
    lines = [f"{len(table.rows)} of {table.searched} reports answer ({order}):", ""]
    for n, row in enumerate(table.rows, start=1):
        year = row.document.year or "n.d."
        lines.append(textwrap.fill(f"{n}. {row.document.title} ({year})", width=width, subsequent_indent="   "))
        lines.append(f"   {row.citation.short}  (score {row.score:.2f})")
        lines.append(textwrap.fill(f"“{row.text}”", width=width, initial_indent="   ", subsequent_indent="    "))
        lines.append(f"   {row.chunk.doc_id}")
        lines.append("")
    return "\n".join(lines).rstrip()
