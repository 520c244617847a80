"""Streamlit chat over the Innovation Programme evaluations: cited, extractive answers.

Start it with ``make run`` (or ``streamlit run app.py``). Like the CLI it reads
QA_INDEX_DIR, QA_CORPUS_DIR and QA_MODEL. Retrieval and answering live in
``qa``; this file only renders. Text from documents is untrusted and always
escaped (``qa.ui.escape_markdown``) before it is shown; no HTML is ever allowed.
"""

from __future__ import annotations

import os
import shlex
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st

from qa import ui
from qa.embed import Embedder, load_embedder, set_threads
from qa.engine import Engine, corpus_dir, index_dir
from qa.errors import IndexMismatchError, IndexMissingError, QAError
from qa.ingest import discover
from qa.records import Document, Passage

STATIC_DIR = Path(__file__).resolve().parent / "static"  # served under /app/static/ (server.enableStaticServing)
TITLE = "Evidence Q&A"
EXAMPLES = (
    "How much money did the first round put in, and into how many projects?",
    "What did the wave 1 evaluation recommend?",
    "Did the projects manage to cut social workers' caseloads?",
)
esc = ui.escape_markdown


# --- the engine: loaded once per process, shared by every browser session -------------------


@st.cache_resource(show_spinner="Loading the embedding model (first visit only)…")
def load_model(model: str) -> Embedder:
    return load_embedder(model)


@st.cache_resource(show_spinner="Loading the embedding model and opening the index (first visit only)…")
def load_engine(index: str, model: str) -> Engine:
    """The engine for an index folder; with no QA_MODEL it uses the model the index was built with."""
    set_threads(1)  # one thread answers a short query fastest
    return Engine(index, embedder=load_model(model) if model else None)


@st.cache_resource(show_spinner=False)
def source_url(_engine: Engine, doc_id: str, content_hash: str, static_dir: str) -> str | None:
    """Publish a source under the static folder once per version; its URL, or None when unavailable."""
    document = _engine.store.documents.get(doc_id)
    if document is None or document.content_hash != content_hash:
        return None
    texts: list[str] = []
    if document.kind == "html":
        texts = [p.text for n in range(1, document.n_pages + 1) if (p := _engine.page(doc_id, n)) is not None]
    return ui.publish_source(document, _engine.source_path(doc_id), Path(static_dir), texts)


def open_engine() -> Engine | None:
    """The shared engine, or None after telling the user what to do."""
    index = index_dir()
    try:
        return load_engine(str(index.resolve()), os.environ.get("QA_MODEL", "").strip())
    except IndexMissingError as exc:
        show_setup(index, exc)
    except QAError as exc:
        st.error(f"The index cannot be used: {exc}")
        st.info("After rebuilding the index, reload this page.")
    return None


def show_setup(index: Path, exc: QAError) -> None:
    """The empty state: no index yet, so say how to build one."""
    corpus = corpus_dir()
    files = discover(corpus)[0] if corpus.is_dir() else []
    st.title(TITLE)
    if not files:
        st.info(
            f"There is nothing to search yet: the corpus folder **{esc(str(corpus))}** has no documents. "
            "Put the evaluation reports there (PDF, Markdown, text or HTML), or download the official ones "
            "with `qa fetch`, then build the index and start the app:"
        )
    else:
        st.info(
            f"The corpus folder **{esc(str(corpus))}** holds {len(files)} documents, but there is no index "
            f"at **{esc(str(index))}** yet. Build it (a few minutes for a large corpus), then reload this page:"
        )
    st.code(f"qa ingest {shlex.quote(str(corpus))} --index {shlex.quote(str(index))}\n"
            "# or, from the project folder, build and start in one go:\nmake run", language="bash")
    st.caption(esc(str(exc)))


# --- sidebar: corpus overview, filters, collection, downloads ----------------------------


@dataclass(frozen=True)
class Filters:
    """What the sidebar restricts a question to, and how it reads in the chat."""

    docs: list[str] | None
    year_from: int | None
    year_to: int | None
    top_k: int
    description: str


def _year(document: Document) -> str:
    return str(document.year) if document.year else "n.d."


def sidebar(engine: Engine) -> Filters:
    """Corpus overview and the filters; returns the filters for the next question."""
    state = st.session_state
    info = engine.info()
    documents = sorted(engine.documents(), key=lambda d: (d.year or 0, d.title))
    by_id = {d.doc_id: d for d in documents}
    with st.sidebar:
        st.header("Corpus")
        a, b, c = st.columns(3)
        a.metric("Documents", info.documents)
        b.metric("Pages", info.pages)
        c.metric("Passages", info.chunks)
        st.caption(f"Model {esc(info.model)} · index built {esc(info.built_at)}")
        with st.expander("Documents"):
            table = pd.DataFrame(
                [{"Title": d.title, "Year": _year(d), "Pages": d.n_pages, "File": d.doc_id} for d in documents]
            )
            st.dataframe(table, hide_index=True, width="stretch")
        years = Counter(d.year for d in documents if d.year)
        if years:
            chart = pd.DataFrame({"Year": [str(y) for y in sorted(years)], "Documents": [years[y] for y in sorted(years)]})
            st.bar_chart(chart, x="Year", y="Documents", height=160)

        st.header("Filters")
        if "filter_docs" in state:  # drop documents an ingest removed since the last run
            state.filter_docs = [d for d in state.filter_docs if d in by_id]
        chosen = st.multiselect(
            "Documents", options=list(by_id), key="filter_docs", placeholder="All documents",
            format_func=lambda doc_id: f"{by_id[doc_id].title} ({_year(by_id[doc_id])})",
        )
        span: tuple[int, int] | None = None
        if len(years) >= 2:
            low, high = min(years), max(years)
            saved = state.get("filter_years")
            if saved is not None and not (low <= saved[0] <= saved[1] <= high):
                del state["filter_years"]
            picked = st.slider("Years", low, high, (low, high), key="filter_years",
                               help="Documents without a year are left out when the range is narrowed.")
            span = (int(picked[0]), int(picked[1])) if tuple(picked) != (low, high) else None
        top_k = st.slider("Passages per answer", 1, 10, 5, key="top_k")

    titles = [by_id[d].title for d in chosen]
    return Filters(
        docs=list(chosen) or None, year_from=span[0] if span else None, year_to=span[1] if span else None,
        top_k=int(top_k), description=ui.describe_filters(titles, span),
    )


def sidebar_exports() -> None:
    """The collection and the downloads, drawn after the question so they include its answer."""
    state = st.session_state
    with st.sidebar:
        st.header("Collection")
        pins: list[ui.Pin] = state.pins
        if pins:
            for number, pin in enumerate(pins, start=1):
                st.caption(f"{number}\\. {esc(pin.passage.citation.short)}")
            st.download_button("Collection (Markdown)", ui.pins_markdown(pins), file_name="pinned-passages.md",
                               mime="text/markdown", on_click="ignore", icon=":material/download:", key="dl_pins_md")
            st.download_button("Collection citations (CSV)", ui.citations_csv((p.question, p.passage) for p in pins),
                               file_name="pinned-citations.csv", mime="text/csv", on_click="ignore",
                               icon=":material/download:", key="dl_pins_csv")
            st.button("Clear collection", on_click=pins.clear, key="clear_pins")
        else:
            st.caption("Pin passages to collect them here, then download them with their citations.")

        st.header("Conversation")
        turns: list[ui.Turn] = state.turns
        st.download_button("Conversation (Markdown)", ui.conversation_markdown(turns), file_name="conversation.md",
                           mime="text/markdown", on_click="ignore", disabled=not turns,
                           icon=":material/download:", key="dl_conversation_md")
        st.download_button("Citations (CSV)", ui.citations_csv(ui.conversation_rows(turns)), file_name="citations.csv",
                           mime="text/csv", on_click="ignore", disabled=not turns,
                           icon=":material/download:", key="dl_citations_csv")
        st.button("Clear conversation", on_click=turns.clear, disabled=not turns, key="clear_conversation")


# --- the conversation -----------------------------------------------------------------------


def toggle_pin(question: str, passage: Passage) -> None:
    """Add a passage to the collection, or take it out if it is there."""
    pins: list[ui.Pin] = st.session_state.pins
    key = ui.pin_key(passage)
    kept = [p for p in pins if p.key != key]
    if len(kept) == len(pins):
        kept.append(ui.Pin(question, passage))
    pins[:] = kept


def render_passage(engine: Engine, turn: ui.Turn, number: int, passage: Passage) -> None:
    """One source card: heading, citation, similarity, highlighted text, reference, link, pin, context."""
    answer = turn.answer
    assert answer is not None
    doc, chunk = passage.document, passage.chunk
    with st.container(border=True):
        head, score = st.columns([4, 1])
        weak = "" if answer.found else " · _weak match_"
        head.markdown(f"**\\[{passage.rank}\\] {esc(doc.title)}** · {_year(doc)}{weak}")
        where = esc(passage.citation.short)
        if chunk.section and chunk.section not in passage.citation.short:
            where += f" · Section: {esc(chunk.section)}"
        head.caption(where)
        score.progress(ui.relevance(passage), text=f"Similarity {passage.dense_score:.2f}")
        st.markdown(ui.highlight_markdown(chunk.text, ui.sentences_for(answer, passage.rank)))
        st.code(passage.citation.reference, language=None, wrap_lines=True)
        left, right = st.columns(2)
        with left:
            url = None
            if st.get_option("server.enableStaticServing"):
                url = source_url(engine, doc.doc_id, doc.content_hash, str(STATIC_DIR))
            if url:
                page_label = esc(chunk.page_label or str(chunk.page))  # labels come from the PDF: escape them too
                label = f"Open at page {page_label}" if doc.kind == "pdf" else "Open the source text"
                st.link_button(label, ui.page_url(url, doc, chunk.page), icon=":material/open_in_new:",
                               help="Open at this page", key=f"open-{number}-{passage.rank}")
            else:
                st.caption("The source file is not available to open (moved, changed or not served).")
        with right:
            pinned = any(p.key == ui.pin_key(passage) for p in st.session_state.pins)
            st.button("Unpin" if pinned else "Pin", icon=":material/push_pin:", key=f"pin-{number}-{passage.rank}",
                      on_click=toggle_pin, args=(turn.question, passage),
                      help="Remove from your collection" if pinned else "Add to your collection (sidebar)")
        with st.expander("Show context"):
            before, after = engine.context(passage)
            if not before.strip() and not after.strip():
                st.caption("The passage is the whole page.")
            if before.strip():
                st.caption("Before the passage")
                st.markdown("…" + ui.highlight_markdown(before))
            if after.strip():
                st.caption("After the passage")
                st.markdown(ui.highlight_markdown(after) + "…")


def render_answer(engine: Engine, turn: ui.Turn, number: int) -> None:
    """The reply to one question: the quoted answer (or the not-covered notice), then its passages."""
    if turn.error:
        st.error(turn.error)
        return
    answer = turn.answer
    assert answer is not None
    if answer.query.strip() != turn.question.strip():
        st.caption(f"Searched for: {esc(answer.query)}")
    if turn.filters:
        st.caption(f"Filters: {esc(turn.filters)}")
    if not answer.passages:
        st.info("No passage matched. Widen the filters in the sidebar or rephrase the question.")
        return
    if answer.found:
        st.markdown("\n".join(f"- {esc(s.text)} {esc(ui.markers(s.passages))}" for s in answer.sentences))
        st.caption("Sentences quoted from the passages below; the numbers point to them.")
    else:
        st.warning(
            "The corpus does not cover this question: no passage answers it closely. "
            "The nearest passages are listed below as weak matches; check them before relying on them."
        )
    st.markdown("**Sources**" if answer.found else "**Closest passages (weak matches)**")
    for passage in answer.passages:
        render_passage(engine, turn, number, passage)


def queue_question(question: str) -> None:
    """Ask ``question`` on this run, as if typed (the example buttons)."""
    st.session_state.pending = question


def ask(engine: Engine, question: str, filters: Filters, turns: list[ui.Turn]) -> ui.Turn:
    """Ask with the filters and the earlier questions as context, after picking up a newer index."""
    try:
        engine.refresh()
        answer = engine.ask(
            question, top_k=filters.top_k, docs=filters.docs, year_from=filters.year_from, year_to=filters.year_to,
            history=[t.question for t in turns],
        )
    except QAError as exc:
        return ui.Turn(question=question, error=str(exc), filters=filters.description)
    return ui.Turn(question=question, answer=answer, filters=filters.description)


def main() -> None:
    """One run of the page: engine, sidebar, conversation, then the exports."""
    st.set_page_config(page_title=TITLE, page_icon=":material/menu_book:", layout="wide")
    state = st.session_state
    state.setdefault("turns", [])
    state.setdefault("pins", [])
    engine = open_engine()
    if engine is None:
        return
    try:
        if engine.refresh():
            st.toast(f"The index was updated: {engine.info().documents} documents.")
    except IndexMismatchError:
        load_engine.clear()  # rebuilt with another model: reopen with the model it names
        engine = open_engine()
        if engine is None:
            return
    filters = sidebar(engine)

    st.title(TITLE)
    st.caption("Plain-language questions over the evaluation reports of England's Children's Social Care "
               "Innovation Programme. Answers are sentences quoted from the reports, each with its source and page.")
    turns: list[ui.Turn] = state.turns
    typed = st.chat_input("Ask a question about the evaluation reports", key="question")
    question = typed or state.pop("pending", None)
    if not turns and not question:
        st.markdown("Try one of these, or type your own question below:")
        for number, example in enumerate(EXAMPLES):
            st.button(example, key=f"example-{number}", type="tertiary", icon=":material/chat:",
                      on_click=queue_question, args=(example,))
    for number, turn in enumerate(turns):
        with st.chat_message("user"):
            st.markdown(esc(turn.question))
        with st.chat_message("assistant"):
            render_answer(engine, turn, number)

    if isinstance(question, str) and question.strip():
        with st.chat_message("user"):
            st.markdown(esc(question))
        with st.chat_message("assistant"):
            with st.spinner("Searching the reports…"):
                turn = ask(engine, question.strip(), filters, turns)
            turns.append(turn)
            render_answer(engine, turn, len(turns) - 1)
    sidebar_exports()


main()
