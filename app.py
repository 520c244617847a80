"""Streamlit chat over the Innovation Programme evaluations: cited, extractive answers.

Start it with ``make run`` (or ``streamlit run app.py``). Like the CLI it reads
QA_INDEX_DIR, QA_CORPUS_DIR and QA_MODEL. Retrieval and answering live in
``qa``; this file only renders. Text from documents, the index and error
messages is untrusted and always escaped (``qa.ui.escape_markdown``) before it
is shown; the only HTML is the app's own style sheet and its scroll script.
"""

from __future__ import annotations

import json
import logging
import shlex
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import quote, urlencode

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from qa import export, pageview, reports, serving, sessions, ui
from qa.cite import page_reference
from qa.engine import Engine
from qa.errors import IndexMismatchError, IndexMissingError, QAError
from qa.ingest import discover
from qa.records import Answer, Document, EvidenceTable, Passage, ReportRow
from qa.settings import Settings
from qa.store import current_generation
from qa.structure import within

STATIC_DIR = Path(__file__).resolve().parent / "static"  # served under /app/static/ (server.enableStaticServing)
TITLE = "Evidence Q&A"
EXAMPLES = (
    "How much money did the first round put in, and into how many projects?",
    "What did the wave 1 evaluation recommend?",
    "Did the projects manage to cut social workers' caseloads?",
)
OFFICIAL = "https://www.gov.uk/government/collections/childrens-social-care-innovation-programme-insights-and-evaluation"
MAX_QUESTION = 1000
SOURCES_ORDER = "Sources, best match first: the search ranks them by meaning and by the question's words together."
WEAK_ORDER = "Closest passages, best first."
esc = ui.escape_markdown
log = logging.getLogger(__name__)


# --- the engine: loaded once per process, in the background from the server's start -------------


def settings() -> Settings:
    """Where the index and corpus are and which model embeds questions, from QA_INDEX_DIR, QA_CORPUS_DIR, QA_MODEL.

    Read once at the start of each run of the page (and once as the server starts)
    and passed down, so one run never sees two versions of the environment.
    """
    return Settings.from_env()


def loader_key(config: Settings) -> tuple[str, str]:
    """The index (resolved) and model that name the shared engine of these settings."""
    return str(config.index.resolve()), config.model


def static_dir() -> Path | None:
    """Where sources are published for "Open at page N", or None when static serving is off."""
    return STATIC_DIR if st.get_option("server.enableStaticServing") else None


def source_url(engine: Engine, document: Document) -> str | None:
    folder = static_dir()
    return serving.publish(engine, document, folder) if folder else None


def open_engine(config: Settings) -> Engine | None:
    """The shared engine (waiting for it on the first visit), or None after telling the user what to do."""
    key = loader_key(config)
    loader = serving.loader(*key, static_dir())
    if not loader.future.done():
        with st.spinner("Opening the index and loading the model (only after the server starts)…"):
            loader.future.exception()
    try:
        engine = loader.engine()
        if engine.refresh():
            st.toast(f"The index was updated: {engine.info().documents} documents.")
        loader.sync(engine)
        return engine
    except IndexMissingError as exc:
        serving.forget(*key)  # look again on the next visit: the index may have been built by then
        show_setup(config, exc)
    except IndexMismatchError as exc:
        if loader.future.exception() is None:  # rebuilt with another model since: reopen with the model it names
            serving.forget(*key)
            return open_engine(config)
        serving.forget(*key)
        st.error(f"The index cannot be used: {esc(str(exc))}")
        st.info("After rebuilding the index, reload this page.")
    except QAError as exc:
        serving.forget(*key)
        st.error(f"The index cannot be used: {esc(str(exc))}")
        st.info("After rebuilding the index, reload this page.")
    return None


def show_setup(config: Settings, exc: QAError) -> None:
    """The empty state: no index yet, so say how to build one."""
    corpus, index = config.corpus, config.index
    files = discover(corpus)[0] if corpus.is_dir() else []
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


# --- the conversation's memory: ?s= in the URL names it -------------------------------------


@st.cache_resource(show_spinner=False)
def conversations() -> sessions.Conversations:
    return sessions.Conversations()


def conversation() -> sessions.Conversation:
    """This browser's conversation, found again after a reload through ``?s=`` in the URL."""
    params = st.query_params
    sid = params.get("s")
    if not sessions.valid_id(sid):
        sid = st.session_state.get("sid") or sessions.new_id()
        params["s"] = sid
    st.session_state.sid = sid
    talk = conversations().get(str(sid))
    st.session_state.turns, st.session_state.pins = talk.turns, talk.pins  # the same lists, for tests and tools
    return talk


# --- sidebar: about, corpus, filters, collection, downloads -------------------------------------


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
    years = Counter(d.year for d in documents if d.year)
    with st.sidebar:
        with st.expander("About this corpus"):
            st.markdown(
                "The documents in `corpus/` are short **sample briefings** written for this project from the "
                "public record of England's Children's Social Care Innovation Programme (2014–2020); each says so "
                "on its first page. They are not official publications. The official evaluation reports are "
                f"published on GOV.UK under the Open Government Licence in the collection [Children's social care "
                f"innovation programme: insights and evaluation]({OFFICIAL}); `qa fetch` downloads them into "
                "the corpus."
            )
        st.header("Corpus")
        span_text = f", {min(years)}–{max(years)}" if years else ""
        st.markdown(f"{info.documents} documents, {info.pages} pages, {info.chunks} passages{span_text}.")
        st.caption(f"Model {esc(info.model)} · index built {esc(info.built_at)}")
        with st.expander("Documents"):
            lines = []
            for d in documents:
                url = source_url(engine, d)
                name = esc(d.title)
                pages = f"{d.n_pages} page{'s' if d.n_pages != 1 else ''}" if d.kind == "pdf" else d.kind.upper()
                lines.append(f"- {f'[{name}]({url})' if url else name} ({_year(d)}, {pages})")
            st.markdown("\n".join(lines) or "No documents.")

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


def move_pin(pins: list[export.Quote], index: int, step: int) -> None:
    """Move one quote up (-1) or down (+1) in the collection, or drop it (step 0)."""
    if not 0 <= index < len(pins):
        return
    if step == 0:
        del pins[index]
        return
    other = index + step
    if 0 <= other < len(pins):
        pins[index], pins[other] = pins[other], pins[index]


def sidebar_exports(talk: sessions.Conversation) -> None:
    """The collection and the downloads, drawn after the question so they include its answer."""
    accessed = export.accessed_date()
    with st.sidebar:
        st.header("Collection")
        pins = talk.pins
        if pins:
            for i, pin in enumerate(pins):
                with st.container(border=True):
                    st.markdown(f"{i + 1}\\. “{esc(pin.text)}” {esc(pin.short)}")
                    row = st.container(horizontal=True, gap="small")
                    row.button("Up", key=f"pin-up-{i}", icon=":material/arrow_upward:", disabled=i == 0,
                               on_click=move_pin, args=(pins, i, -1), help="Move this quote up")
                    row.button("Down", key=f"pin-down-{i}", icon=":material/arrow_downward:",
                               disabled=i == len(pins) - 1, on_click=move_pin, args=(pins, i, 1),
                               help="Move this quote down")
                    row.button("Remove", key=f"pin-drop-{i}", icon=":material/close:", on_click=move_pin,
                               args=(pins, i, 0), help="Take this quote out of the collection")
            sources = export.sources_of(pins)
            downloads = (
                ("Quotes (Word)", export.quotes_docx(pins, accessed), "quotes.docx",
                 "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "dl_quotes_docx"),
                ("Quotes (text)", export.quotes_text(pins, accessed), "quotes.txt", "text/plain", "dl_quotes_txt"),
                ("Quotes (Markdown)", export.quotes_markdown(pins, accessed), "quotes.md", "text/markdown",
                 "dl_quotes_md"),
                ("References (BibTeX)", export.bibtex(sources), "references.bib", "application/x-bibtex",
                 "dl_quotes_bib"),
                ("References (RIS)", export.ris(sources), "references.ris", "application/x-research-info-systems",
                 "dl_quotes_ris"),
            )
            for label, data, name, mime, key in downloads:
                st.download_button(label, data, file_name=name, mime=mime, on_click="ignore",
                                   icon=":material/download:", key=key)
            st.button("Clear collection", on_click=pins.clear, key="clear_pins")
        else:
            st.caption("Pin a quoted sentence from a source to collect it here with its citation, "
                       "then download the quotes for course notes or the references for a reference manager.")

        st.header("Conversation")
        turns = talk.turns
        cited = export.sources_of(p for _, p in ui.conversation_rows(turns))
        st.download_button("Conversation (Markdown)", ui.conversation_markdown(turns), file_name="conversation.md",
                           mime="text/markdown", on_click="ignore", disabled=not turns,
                           icon=":material/download:", key="dl_conversation_md")
        st.download_button("Citations (CSV)", ui.citations_csv(ui.conversation_rows(turns)), file_name="citations.csv",
                           mime="text/csv", on_click="ignore", disabled=not turns,
                           icon=":material/download:", key="dl_citations_csv")
        st.download_button("Cited documents (BibTeX)", export.bibtex(cited), file_name="cited-documents.bib",
                           mime="application/x-bibtex", on_click="ignore", disabled=not cited,
                           icon=":material/download:", key="dl_conversation_bib")
        st.download_button("Cited documents (RIS)", export.ris(cited), file_name="cited-documents.ris",
                           mime="application/x-research-info-systems", on_click="ignore", disabled=not cited,
                           icon=":material/download:", key="dl_conversation_ris")
        st.button("Clear conversation", on_click=turns.clear, disabled=not turns, key="clear_conversation")


# --- the conversation -----------------------------------------------------------------------


def anchor(number: int, rank: int) -> str:
    """The id of a source card, the target of the answer's [n] links."""
    return f"source-{number + 1}-{rank}"


def toggle_quote(pins: list[export.Quote], quote_: export.Quote) -> None:
    """Add a quote to the collection, or take it out if it is there."""
    kept = [p for p in pins if p.key != quote_.key]
    if len(kept) == len(pins):
        kept.append(quote_)
    pins[:] = kept


def render_page_view(engine: Engine, passage: Passage, sentences: list[str], key: str) -> None:
    """The cited page with the quoted sentences marked: an image for a PDF, highlighted text otherwise."""
    doc, chunk = passage.document, passage.chunk
    path = engine.source_path(doc.doc_id)
    if doc.kind == "pdf" and path is not None:
        marks = sentences or [chunk.text[:200]]
        try:
            image = pageview.render_pdf_page(path, chunk.page, marks, key=doc.content_hash)
        except (ValueError, OSError, RuntimeError) as exc:  # pdfium errors are RuntimeErrors
            st.caption(f"The page cannot be drawn: {esc(str(exc))}")
            return
        what = "the quoted sentences" if sentences else "the start of the passage"
        found = "marked in yellow with a bar in the margin" if image.boxes else "not found on the drawn page"
        folder, full = static_dir(), None
        try:  # the drawn page at full size, to open on its own (a phone shows the card's copy too small to read)
            full = ui.publish_page_image(doc, chunk.page, image.png, folder) if folder else None
        except OSError:
            log.warning("could not serve the drawn page %s of %s", chunk.page, doc.doc_id, exc_info=True)
        tap = " Tap or click the page to open it full size." if full else ""
        st.image(image.png, caption=f"PDF page {chunk.page}: {what} {found}.{tap}", width="stretch", link=full)
        return
    page = engine.page(doc.doc_id, chunk.page)
    st.markdown(ui.card_markdown(page.text if page else chunk.text, sentences or (),
                                 found=page.units if page and page.units else None))


def render_passage(engine: Engine, talk: sessions.Conversation, turn: ui.Turn, number: int, passage: Passage) -> None:
    """One source card: heading, location, the quoted sentences in a few lines, then page, context and pins."""
    answer = turn.answer
    assert answer is not None
    doc, chunk = passage.document, passage.chunk
    sentences = ui.sentences_for(answer, passage.rank)
    key = f"{number}-{passage.rank}"
    with st.container(border=True):
        st.subheader(f"\\[{passage.rank}\\] {esc(doc.title)}", anchor=anchor(number, passage.rank))
        parts = [_year(doc)] + ([page_reference(doc, chunk)] if doc.kind == "pdf" else [])
        if chunk.section:
            parts.append(f"Section: {chunk.section}")
        # No raw score here: the cards stand in fused-rank order, which no single score shown would match.
        where = esc(" · ".join(parts)) + ("" if answer.found else " · weak match")
        st.markdown(where)
        if sentences or st.toggle("Show the passage", key=f"more-{key}",
                                  help="A passage the answer does not quote: its text, page and context"):
            render_card_body(engine, talk, turn, passage, sentences, key)


def render_card_body(engine: Engine, talk: sessions.Conversation, turn: ui.Turn, passage: Passage,
                     sentences: list[str], key: str) -> None:
    """The quoted sentences within a few lines, the links and pins, the page view and the whole page."""
    doc, chunk = passage.document, passage.chunk
    start, end = pageview.excerpt_span(chunk.text, sentences)
    text = chunk.text[start:end]
    st.markdown(ui.card_markdown(text, sentences, cut_before=start > 0, cut_after=end < len(chunk.text),
                                 found=within(passage.units, start, end, clip=True) if passage.units else None))
    row = st.container(horizontal=True, gap="small")
    with row:
        url = source_url(engine, doc)
        if url:
            page_label = esc(chunk.page_label or str(chunk.page))  # labels come from the PDF: escape them too
            label = f"Open at page {page_label}" if doc.kind == "pdf" else "Open the source text"
            st.link_button(label, ui.page_url(url, doc, chunk.page), icon=":material/open_in_new:",
                           help="Open the document at this page in a new tab", key=f"open-{key}")
        else:
            st.caption("The source file is not available to open (moved, changed or not served).")
        pinned = {p.key for p in talk.pins}
        for i, sentence in enumerate(sentences):
            quote_ = export.quote_from(passage, sentence, turn.question)
            has = quote_.key in pinned
            words = export.one_line(sentence).split()
            tag = " ".join(words[:6]) + ("…" if len(words) > 6 else "")
            st.button(f"{'Unpin' if has else 'Pin'} “{esc(tag)}”", icon=":material/format_quote:",
                      key=f"pin-{key}-{i}", on_click=toggle_quote, args=(talk.pins, quote_),
                      help="Take this quote out of your collection" if has else
                      "Keep this sentence as a quote with its citation (sidebar, Collection)")
    label = "Show on the page" if doc.kind == "pdf" else "Show the section"
    if st.toggle(label, key=f"page-{key}", help="The cited page with the quoted sentences marked"):
        render_page_view(engine, passage, sentences, key)
    with st.expander("Show context"):
        page = engine.page(doc.doc_id, chunk.page)
        if page is not None:
            st.markdown(ui.card_markdown(page.text, sentences, found=page.units or None))
        st.caption("Reference")
        st.code(passage.citation.reference, language=None, wrap_lines=True)


def ask_alone(talk: sessions.Conversation, index: int) -> None:
    """Ask a turn again as written, without the earlier questions (the "Search only my question" button)."""
    if 0 <= index < len(talk.turns):
        st.session_state.standalone = index


def render_answer(engine: Engine, talk: sessions.Conversation, turn: ui.Turn, number: int) -> None:
    """The reply to one question: the quoted answer with links to its sources, then the source cards."""
    if turn.error:
        st.error(esc(turn.error))
        return
    answer = turn.answer
    assert answer is not None
    if answer.merged:
        st.caption(f"Searched as: {esc(answer.query)}")
        st.button("Search only my question", key=f"alone-{number}", icon=":material/search:",
                  on_click=ask_alone, args=(talk, number),
                  help="Ask this question again without the earlier questions as context")
    if turn.filters:
        st.caption(f"Filters: {esc(turn.filters)}")
    if not answer.passages:
        st.info("No passage matched. Widen the filters in the sidebar or rephrase the question.")
        return
    by_rank = {p.rank: p for p in answer.passages}
    if answer.found:
        lines = []
        for s in answer.sentences:
            refs = []
            for rank in s.passages:
                p = by_rank.get(rank)
                where = ""
                if p is not None and p.document.kind == "pdf":
                    label = esc(p.chunk.page_label or str(p.chunk.page))
                    url = source_url(engine, p.document)
                    where = f", [p\\. {label}]({ui.page_url(url, p.document, p.chunk.page)})" if url else f", p\\. {label}"
                refs.append(f"[\\[{rank}\\]](#{anchor(number, rank)}){where}")
            lines.append(f"- {esc(s.text)} {'; '.join(refs)}")
        st.markdown("\n".join(lines))
        st.caption("Sentences quoted from the sources below: \\[n\\] goes to the source, the page opens the document.")
    else:
        st.warning(
            "The corpus does not cover this question: no passage answers it closely. "
            "The nearest passages are listed below as weak matches; check them before relying on them."
        )
    st.markdown(f"[Link to this question](?{urlencode({'q': turn.question}, quote_via=quote)})")
    st.caption(SOURCES_ORDER if answer.found else WEAK_ORDER)
    for passage in answer.passages:
        render_passage(engine, talk, turn, number, passage)


SCROLL_SCRIPT = """<script>
(() => {
  const data = %s;
  const doc = window.parent ? window.parent.document : document;
  const view = window.parent || window;
  // With the chat box pinned at the bottom, Streamlit glides the chat to its end whenever content
  // grows, so a long reply would leave the reader at its last source. Hold the new question at the
  // top instead (or the source card the reader followed a citation to) while the reply is drawn and
  // until the page has been quiet for a moment, or until the reader scrolls, clicks or types. Our
  // own scrolls, made while the page is still, tell Streamlit the reader has left the end of the
  // chat, so it stops gliding there. A newer question's hold ends this one.
  const token = {};
  view.__qaHold = token;
  let held = true;
  let target = () => doc.querySelectorAll('[data-testid="stChatMessage"]')[data.index];
  const began = Date.now();
  let height = -1, quietSince = began;
  const events = ["wheel", "touchstart", "keydown", "mousedown"];
  const onUser = (e) => {
    if (!e.isTrusted) return;
    const link = e.target.closest ? e.target.closest('a[href^="#source-"]') : null;
    if (link) {  /* a citation: hold its source card instead */
      const id = link.getAttribute("href").slice(1);
      target = () => doc.getElementById(id);
      quietSince = Date.now();
    } else {
      held = false;
    }
  };
  events.forEach((e) => doc.addEventListener(e, onUser, {capture: true}));
  let watched = null;
  const scroller = () => doc.querySelector('[data-testid="stAppScrollToBottomContainer"]');
  const place = () => {  /* true when the target had to be brought back */
    const el = target();
    if (!el) return false;
    const want = parseFloat(getComputedStyle(el).scrollMarginTop) || 0;  /* clear of the page header */
    const off = el.getBoundingClientRect().top - want;
    if (!(Math.abs(off) > 6)) return false;
    const box = scroller();
    if (box) {
      /* The first wheel stops a glide under way; the second, with no glide left, tells Streamlit the
         reader has left the end of the chat, so it does not start another. */
      box.dispatchEvent(new WheelEvent("wheel"));
      box.dispatchEvent(new WheelEvent("wheel"));
      setTimeout(() => {
        box.scrollTop += el.getBoundingClientRect().top - want;
        box.dispatchEvent(new WheelEvent("wheel"));  /* a glide that began meanwhile */
        box.dispatchEvent(new WheelEvent("wheel"));
      }, 20);
    } else {
      el.scrollIntoView({block: "start"});
    }
    return true;
  };
  // Room under a new question for its reply, so the question can stand at the top from the start:
  // nothing then grows under the reader while the reply is drawn, and the view is not at the end of
  // the chat, where Streamlit would glide. The room moves on to the next question's reply.
  const reserve = () => {
    const all = doc.querySelectorAll('[data-testid="stChatMessage"]');
    const reply = all[data.index + 1], box = scroller();
    const body = reply ? reply.querySelector('[data-testid="stChatMessageContent"]') : null;
    if (!data.reserve || !body || !box || body.dataset.qaRoom) return;  /* the body: a short message is centred */
    doc.querySelectorAll("[data-qa-room]").forEach((el) => { el.style.minHeight = ""; delete el.dataset.qaRoom; });
    body.style.minHeight = box.clientHeight + "px";
    body.dataset.qaRoom = "1";
  };
  const onScroll = () => { if (held) place(); };  /* answer a glide at once, not at the next tick */
  const tick = () => {
    const now = Date.now();
    const box = scroller();
    if (held) reserve();
    if (held && box && watched !== box) {
      if (watched) watched.removeEventListener("scroll", onScroll);
      box.addEventListener("scroll", onScroll, {passive: true});
      watched = box;
    }
    const h = box ? box.scrollHeight : doc.documentElement.scrollHeight;
    const busy = doc.querySelector('[data-stale="true"], [data-testid="stSpinner"]');
    if ((held && place()) || busy || h !== height) quietSince = now;
    height = h;
    if (now - quietSince > 2500 || now - began > 300000 || view.__qaHold !== token) held = false;
    if (held) return;
    clearInterval(timer);
    if (watched) watched.removeEventListener("scroll", onScroll);
    events.forEach((e) => doc.removeEventListener(e, onUser, {capture: true}));
  };
  const timer = setInterval(tick, 100);
  tick();
})();
</script>"""

ANNOUNCE_SCRIPT = """<script>
(() => {
  const data = %s;
  const doc = window.parent ? window.parent.document : document;
  let live = doc.getElementById("qa-live");
  if (!live) {
    live = doc.createElement("div");
    live.id = "qa-live";
    live.setAttribute("role", "status");
    live.setAttribute("aria-live", "polite");
    live.style.cssText = "position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap";
    doc.body.appendChild(live);
  }
  setTimeout(() => { live.textContent = ""; live.textContent = data.message; }, 100);
})();
</script>"""


def _script_data(value: object) -> str:
    """JSON for a script, with nothing in it that could end the script element."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def hold_view(number: int, reserve: bool = True) -> None:
    """Keep question ``number`` at the top of the view while its reply arrives (until the reader moves).

    With ``reserve`` its reply area is given at least the view's height at once, so
    the question stands at the top from the moment it is asked and the page does not
    jump while the reply is drawn.
    """
    data = {"index": 2 * number, "reserve": reserve}
    st.html(SCROLL_SCRIPT % _script_data(data), unsafe_allow_javascript=True, width=1)


def announce(turn: ui.Turn) -> None:
    """Tell screen readers the reply has arrived (an aria-live region), with its first sentence."""
    answer = turn.answer
    if turn.error:
        message = "The question could not be answered: " + turn.error
    elif answer is None or not answer.passages:
        message = "No passage matched the question."
    elif answer.found:
        message = f"Answer with {len(answer.sentences)} quoted sentences from {len(answer.passages)} sources: " + \
            " ".join(s.text for s in answer.sentences[:1])
    else:
        message = f"The corpus does not cover this question; {len(answer.passages)} weak matches are listed."
    st.html(ANNOUNCE_SCRIPT % _script_data({"message": message[:400]}), unsafe_allow_javascript=True, width=1)


# --- across the reports: the question answered report by report ------------------------------------

CHAT, REPORTS = "Chat", "Across the reports"


def ask_mode() -> str:
    """The way to ask: the chat (default), or one row per report that answers."""
    choice = st.radio("Ask as", (CHAT, REPORTS), horizontal=True, key="ask_mode", label_visibility="collapsed",
                      help="Chat: an answer quoted from the best passages. Across the reports: each report searched "
                           "on its own, one row per report that answers.")
    return REPORTS if choice == REPORTS else CHAT


@dataclass(frozen=True)
class ReportAsk:
    """One question asked across the reports: its table, or the error that stopped it."""

    question: str
    table: EvidenceTable | None = None
    error: str = ""
    filters: str = ""


def ask_reports(engine: Engine, question: str, filters: Filters) -> ReportAsk:
    """The evidence table of a question under the sidebar's filters (after picking up a newer index)."""
    try:
        engine.refresh()
        table = engine.ask_by_report(question, docs=filters.docs, year_from=filters.year_from, year_to=filters.year_to)
    except QAError as exc:
        return ReportAsk(question=question, error=str(exc), filters=filters.description)
    return ReportAsk(question=question, table=table, filters=filters.description)


def render_report_row(engine: Engine, talk: sessions.Conversation, question: str, row: ReportRow, n: int,
                      key: str) -> None:
    """One report's row: title and year, the quoted unit, its citation linked to the page, a pin and the page view."""
    doc, chunk = row.document, row.chunk
    with st.container(border=True):
        st.markdown(f"**{n}\\. {esc(doc.title)}** ({esc(_year(doc))})")
        st.markdown(f"“{esc(row.text)}”")
        url = source_url(engine, doc)
        cited = esc(row.citation.short)
        st.markdown(f"[{cited}]({ui.page_url(url, doc, chunk.page)})" if url else cited)
        quote_ = export.quote_from(row.passage, row.text, question)
        has = quote_.key in {p.key for p in talk.pins}
        st.button("Unpin" if has else "Pin", icon=":material/format_quote:", key=f"pin-{key}",
                  on_click=toggle_quote, args=(talk.pins, quote_),
                  help="Take this quote out of your collection" if has else
                  "Keep this sentence as a quote with its citation (sidebar, Collection)")
        label = "Show on the page" if doc.kind == "pdf" else "Show the section"
        if st.toggle(label, key=f"page-{key}", help="The cited page with the quoted sentence marked"):
            render_page_view(engine, row.passage, list(row.units), key)


def render_reports(engine: Engine, talk: sessions.Conversation, asked: ReportAsk) -> None:
    """A question's evidence table: one row per answering report, sortable, with CSV and Word downloads."""
    st.markdown(f"**{esc(asked.question)}**")
    if asked.filters:
        st.caption(f"Filters: {esc(asked.filters)}")
    if asked.error or asked.table is None:
        st.error(esc(asked.error or "The question could not be answered."))
        return
    table = asked.table
    if not table.rows:
        st.info(f"None of the {table.searched} reports searched answers this question. Rephrase it, widen the "
                "filters, or ask it in the chat to see the closest passages.")
        return
    sort = st.radio("Sort rows by", reports.SORTS, horizontal=True, key="report_sort",
                    format_func=lambda s: "best match first" if s == "score" else "oldest first")
    table = replace(table, rows=reports.sort_rows(table.rows, str(sort)), sort=str(sort))
    st.caption(f"{len(table.rows)} of {table.searched} reports answer; each row quotes its report's best "
               "answering sentence. Reports that do not answer are left out.")
    accessed = export.accessed_date()
    row_ = st.container(horizontal=True, gap="small")
    row_.download_button("Table (CSV)", export.table_csv(table, accessed), file_name="across-the-reports.csv",
                         mime="text/csv", on_click="ignore", icon=":material/download:", key="dl_table_csv")
    row_.download_button("Table (Word)", export.table_docx(table, accessed), file_name="across-the-reports.docx",
                         mime="application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                         on_click="ignore", icon=":material/download:", key="dl_table_docx")
    for n, row in enumerate(table.rows, start=1):
        render_report_row(engine, talk, table.question, row, n, f"report-{row.document.content_hash[:16]}")


def show_reports(engine: Engine, talk: sessions.Conversation, question: str, filters: Filters) -> None:
    """The "Across the reports" view: the new question's table, else the last one asked in this session."""
    state = st.session_state
    if question:
        with st.spinner("Searching each report…"):
            state.report_ask = ask_reports(engine, question, filters)
    asked = state.get("report_ask")  # a ReportAsk of an earlier run (its class is redefined by every run)
    if asked is not None:
        render_reports(engine, talk, asked)
    else:
        st.caption("Ask a question below: each report is searched on its own, and every report that answers gets "
                   "a row with its quoted sentence and page.")


SEARCHING = "Searching the reports…"


def searching() -> DeltaGenerator:
    """A "Searching the reports…" status in the reply area, shown at once; the reply then takes its place.

    ``st.spinner`` appears only after half a second, which left the reply area blank
    while a question ran. The reply is drawn into the same placeholder as every
    earlier reply is, so the next run draws the page with the same layout and
    nothing left over from this run is removed above the reader afterwards.
    """
    slot = st.empty()
    slot.status(SEARCHING, state="running")
    return slot


def queue_question(question: str) -> None:
    """Ask ``question`` on this run, as if typed (the example buttons)."""
    st.session_state.pending = question


def ask(engine: Engine, question: str, filters: Filters, history: list[Answer]) -> ui.Turn:
    """Ask with the filters and the earlier answers as context (a follow-up joins only a turn on the corpus's topics),
    after picking up a newer index."""
    try:
        engine.refresh()
        answer = engine.ask(
            question, top_k=filters.top_k, docs=filters.docs, year_from=filters.year_from, year_to=filters.year_to,
            history=history,
        )
    except QAError as exc:
        return ui.Turn(question=question, error=str(exc), filters=filters.description)
    return ui.Turn(question=question, answer=answer, filters=filters.description, standalone=not history)


def incoming_question(typed: object) -> str:
    """The question to ask on this run: typed, an example, or ``?q=`` in the URL (once)."""
    state = st.session_state
    question = typed or state.pop("pending", None)
    linked = st.query_params.get("q")
    if linked is not None:
        del st.query_params["q"]  # asked once: a reload then shows the conversation, not a second copy
        if not question and linked.strip():
            question = linked
    return question.strip()[:MAX_QUESTION] if isinstance(question, str) else ""


def main() -> None:
    """One run of the page: title and question box first, then the engine, conversation and sidebar."""
    st.set_page_config(page_title=TITLE, page_icon=":material/menu_book:", layout="wide")
    st.html(ui.APP_CSS)
    state = st.session_state
    talk = conversation()
    st.title(TITLE)
    st.caption("Plain-language questions over the evaluation reports of England's Children's Social Care "
               "Innovation Programme. Answers are sentences quoted from the reports, each with its source and page.")
    config = settings()
    index = config.index
    if not current_generation(index):
        show_setup(config, IndexMissingError(f"no index in {index}"))
        return
    # The question box comes before the wait for the index, so a first visitor can type while it loads.
    typed = st.chat_input("Ask a question about the evaluation reports", key="question", max_chars=MAX_QUESTION)
    engine = open_engine(config)
    if engine is None:
        return
    filters = sidebar(engine)
    question = incoming_question(typed)
    if ask_mode() == REPORTS:
        show_reports(engine, talk, question, filters)
        sidebar_exports(talk)
        return
    turns = talk.turns
    alone = state.pop("standalone", None)
    if isinstance(alone, int) and 0 <= alone < len(turns):
        old = turns[alone]
        turns[alone] = ask(engine, old.question, filters, [])
    if not turns and not question:
        st.markdown("Try one of these, or type your own question below:")
        for number, example in enumerate(EXAMPLES):
            st.button(example, key=f"example-{number}", type="tertiary", icon=":material/chat:",
                      on_click=queue_question, args=(example,))
    # A reload (or the ?s= address opened anew) starts a new browser session: open it at the last
    # question and its answer, not where Streamlit puts a chat (its end, the last source card).
    reopened = bool(turns) and not question and "opened" not in state
    state.opened = True
    for number, turn in enumerate(turns):
        with st.chat_message("user"):
            st.markdown(esc(turn.question))
            if reopened and number == len(turns) - 1:
                hold_view(number, reserve=False)
        with st.chat_message("assistant"), st.empty().container():  # the same layout as a reply being drawn
            render_answer(engine, talk, turn, number)

    if question:
        with st.chat_message("user"):
            st.markdown(esc(question))
            hold_view(len(turns))
        with st.chat_message("assistant"):
            slot = searching()
            turn = ask(engine, question, filters, [t.answer for t in turns if t.answer is not None])
            turns.append(turn)
            talk.trim()
            number = len(turns) - 1
            with slot.container():  # the reply takes the status's place
                render_answer(engine, talk, turn, number)
    sidebar_exports(talk)
    if question:
        announce(turns[-1])


if __name__ == "__main__":  # each browser run of the page
    main()
else:  # `streamlit run app.py` first imports this file as the server: load the engine as it starts
    import asyncio
    from contextlib import asynccontextmanager

    from starlette.middleware import Middleware

    @asynccontextmanager
    async def _load_at_start(_app: object) -> AsyncIterator[None]:
        started = serving.loader(*loader_key(settings()), static_dir())
        await asyncio.to_thread(started.future.exception)  # listen once the engine is ready (or has failed)
        if (folder := static_dir()) is not None:  # before the first request: no copy of a document no longer indexed
            kept = [] if started.future.exception() else [ui.published_name(d) for d in started.engine().documents()]
            await asyncio.to_thread(ui.prune_published, folder, kept)
        yield None

    app = st.App(__file__, lifespan=_load_at_start, middleware=[Middleware(serving.NoCrossOriginStatic)])
