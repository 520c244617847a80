"""The Streamlit app driven in-process with ``AppTest`` over a small generated corpus.

The index is built with the fake embedder; the app opens it exactly as in
production (``Engine(index)`` loads the model the manifest names), with
``qa.engine.load_embedder`` patched to return the fake model. Each test runs
a copy of ``app.py`` from its own folder, so the files the app publishes under
``static/`` land there and not in the checkout.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import quote

import pytest
from pypdf import PdfReader, PdfWriter
from pypdf.constants import PageLabelStyle
from streamlit import config as st_config
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Element

from qa import ui
from qa.ingest import IngestSettings, ingest
from qa.text import find_spans

from conftest import ROOT, FakeEmbedder, make_pdf

STOCKPORT_Q = "How many families did the Stockport project support with a key worker?"
HOSTILE_Q = "What hostile markup does the hostile report contain?"
UNCOVERED_Q = "zebra giraffe volcano eruption"
MENTOR_Q = "Did teenagers with a mentor stay in education longer?"  # answered from the Markdown file
STOCKPORT_SENTENCE = "The Stockport project supported 420 families with a key worker."
HOSTILE_TEXT = ("The hostile report contains hostile markup: <script>alert('x')</script> <img src=x onerror=alert(1)> "
                "[click me](javascript:alert(1)) ![tracker](http://evil.example/pixel.png) in the hostile report.")
HOSTILE_LABEL = "[x](javascript:alert(1))![i](http://evil.example/i.png)"
SOURCES = """path,title,authors,year,publisher,url,licence
alpha.pdf,Stockport family support,Test Author,2015,Test Publisher,https://example.org/alpha,
beta.md,Mentoring for teenagers,Test Author,2019,Test Publisher,,
hostile.pdf,Hostile markup report,,2021,,,
"""


def build_corpus(corpus: Path) -> Path:
    """Three small documents: a labelled two-page PDF, a Markdown file and a PDF full of markup."""
    corpus.mkdir(parents=True)
    make_pdf(corpus / "alpha.pdf", [
        f"Key workers in Stockport\n\n{STOCKPORT_SENTENCE} Families in the Stockport project said the key worker helped.",
        "Costs and savings\n\nThe key worker model cost 1.2 million pounds over two years. "
        "Savings came from fewer children entering care and fewer emergency placements.",
    ], labels=[(0, "/D", 11)])
    (corpus / "beta.md").write_text(
        "# Mentoring for teenagers\n\nThe mentoring project matched teenagers leaving care with volunteer mentors. "
        "Teenagers with a mentor stayed in education and training for longer than those without one.\n",
        encoding="utf-8",
    )
    hostile = make_pdf(corpus / "hostile.pdf", [f"Hostile markup\n\n{HOSTILE_TEXT}"])
    writer = PdfWriter(clone_from=PdfReader(str(hostile)))  # a page label is document text too
    writer.set_page_label(0, 0, style=PageLabelStyle.DECIMAL, prefix=HOSTILE_LABEL, start=1)
    with hostile.open("wb") as handle:
        writer.write(handle)
    (corpus / "sources.csv").write_text(SOURCES, encoding="utf-8")
    return corpus


@pytest.fixture(scope="module")
def fake_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(corpus, index) built once for the module with the fake embedder."""
    base = tmp_path_factory.mktemp("app")
    corpus = build_corpus(base / "corpus")
    index = base / "index"
    ingest(corpus, index, FakeEmbedder(), settings=IngestSettings(workers=0))
    return corpus, index


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> dict[str, str | bytes]:
    """What the app's download buttons offer, by file name (text decoded; binary files as bytes)."""
    captured: dict[str, str | bytes] = {}
    original = MediaFileManager.add

    def add(self, path_or_data, mimetype, coordinates, file_name=None, is_for_static_download=False):
        if file_name:
            data = path_or_data
            if isinstance(data, bytes) and not file_name.endswith(".docx"):
                data = data.decode("utf-8")
            captured[file_name] = data
        return original(self, path_or_data, mimetype, coordinates, file_name=file_name,
                        is_for_static_download=is_for_static_download)

    monkeypatch.setattr(MediaFileManager, "add", add)
    return captured


def _text(downloads: dict[str, str | bytes], name: str) -> str:
    """A text download (decoded by the fixture)."""
    value = downloads[name]
    assert isinstance(value, str), name
    return value


def _data(downloads: dict[str, str | bytes], name: str) -> bytes:
    """A binary download."""
    value = downloads[name]
    assert isinstance(value, bytes), name
    return value


@pytest.fixture
def static_serving() -> Iterator[None]:
    previous = st_config.get_option("server.enableStaticServing")
    st_config.set_option("server.enableStaticServing", True)
    yield
    st_config.set_option("server.enableStaticServing", previous)


def make_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, corpus: Path, index: Path,
             models: Sequence[FakeEmbedder] = (FakeEmbedder(),)) -> AppTest:
    """An AppTest of a copy of app.py in ``tmp_path``, reading the given folders like production.

    Loading a model by name gives the fake model of that name (the first one
    when none has it), as ``load_embedder`` would give the real one.
    """
    script = tmp_path / "app.py"
    shutil.copyfile(ROOT / "app.py", script)
    monkeypatch.setenv("QA_INDEX_DIR", str(index))
    monkeypatch.setenv("QA_CORPUS_DIR", str(corpus))
    monkeypatch.delenv("QA_MODEL", raising=False)
    by_name = {m.name: m for m in models}
    monkeypatch.setattr("qa.engine.load_embedder", lambda name=None, from_index=False: by_name.get(name or "", models[0]))
    return AppTest.from_file(script, default_timeout=60)


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_index: tuple[Path, Path], static_serving: None) -> AppTest:
    corpus, index = fake_index
    return make_app(tmp_path, monkeypatch, corpus, index).run()


def ask(at: AppTest, question: str) -> AppTest:
    at.chat_input(key="question").set_value(question).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> list[str]:
    """Bodies of every Markdown-rendered element: markdown, captions, alerts."""
    bodies = [e.value for e in at.markdown] + [e.value for e in at.caption]
    bodies += [e.value for kind in (at.info, at.warning, at.error, at.success) for e in kind]
    return bodies


def joined(at: AppTest) -> str:
    return "\n".join(texts(at))


def last_answer(at: AppTest):
    turn = at.session_state["turns"][-1]
    assert turn.error == ""
    return turn.answer


# --- tests -------------------------------------------------------------------------------------

LINK = re.compile(r"\[(?:\\.|[^\]\\])*\]\((?:#source-\d+-\d+|app/static/corpus/[^)\s]+|\?q=[^)\s]+|"
                  r"https://www\.gov\.uk/government/collections/[^)\s]+)\)")


def main_text(at: AppTest) -> str:
    """Markdown-rendered bodies of the main area (not the sidebar)."""
    bodies = [e.value for e in at.main.markdown] + [e.value for e in at.main.caption]
    bodies += [e.value for kind in (at.main.info, at.main.warning, at.main.error) for e in kind]
    return "\n".join(bodies)


def test_first_page_shows_corpus_overview_and_examples(app: AppTest) -> None:
    assert not app.exception
    sidebar = "\n".join(m.value for m in app.sidebar.markdown)
    assert "3 documents, 4 pages" in sidebar
    # The documents are listed as text with links to the served files, not as a canvas grid.
    assert not app.get("arrow_data_frame") and not app.sidebar.dataframe
    for title in ("Hostile markup report", "Mentoring for teenagers", "Stockport family support"):
        assert re.search(rf"\[{re.escape(title)}\]\(app/static/corpus/\w+/", sidebar), title
    about = next(e for e in app.sidebar.expander if e.label == "About this corpus")
    note = " ".join(m.value for m in about.markdown)
    assert "sample briefings" in note and "not official publications" in note and "gov.uk" in note.lower()
    examples = [b for b in app.button if b.key and b.key.startswith("example-")]
    assert examples
    examples[0].click().run()  # an example is asked as if typed
    assert [t.question for t in app.session_state["turns"]] == [examples[0].label]
    assert not any(b.key and b.key.startswith("example-") for b in app.button)


def test_question_shows_answer_linked_to_its_sources(app: AppTest, tmp_path: Path) -> None:
    ask(app, STOCKPORT_Q)
    answer = last_answer(app)
    assert answer.found
    top = answer.passages[0]
    assert top.document.doc_id == "alpha.pdf" and top.chunk.page == 1
    body = main_text(app)
    # Each answer sentence links its [n] to the source card and its page to the PDF at that page.
    line = next(m.value for m in app.main.markdown if m.value.startswith("- "))
    assert ui.escape_markdown(STOCKPORT_SENTENCE)[:-2] in line
    assert "[\\[1\\]](#source-1-1)" in line
    assert re.search(r"\[p\\\. 11\]\(app/static/corpus/\w+/alpha\.pdf#page=1\)", line), line
    # The source card is a heading with the anchor the marker points at.
    heading = next(h for h in app.main.subheader if h.value.startswith("\\[1\\]"))
    assert heading.value == "\\[1\\] Stockport family support" and heading.proto.anchor == "source-1-1"
    assert ui.escape_markdown("2015 · p. 11 (PDF p. 1)") in body
    # The card shows the quoted sentence highlighted within a few lines, not the whole page.
    excerpt = next(m.value for m in app.main.markdown if "**" + ui.escape_markdown(STOCKPORT_SENTENCE) in m.value)
    assert len(excerpt) < 400
    # The whole page and the full reference are behind "Show context".
    context = next(e for e in app.main.expander if e.label == "Show context")
    assert top.citation.reference in [c.value for c in context.code]
    # "Open at page" points at the PDF served from the app's static folder, at the physical page.
    link = next(b for b in app.get("link_button") if b.proto.label.startswith("Open at page 11"))
    url = link.proto.url
    assert url.startswith("app/static/corpus/") and url.endswith("/alpha.pdf#page=1")
    served = tmp_path / "static" / url.removeprefix("app/static/").split("#")[0]
    assert served.read_bytes().startswith(b"%PDF")
    # A link to ask the same question again.
    assert f"[Link to this question](?q={quote(STOCKPORT_Q)})" in body
    # A Markdown source opens as plain text.
    ask(app, MENTOR_Q)
    md_link = next(b for b in app.get("link_button") if b.proto.label == "Open the source text")
    assert md_link.proto.url.endswith("/beta.md.txt")
    assert (tmp_path / "static" / md_link.proto.url.removeprefix("app/static/")).read_text().startswith("# Mentoring")


def test_source_cards_are_numbered_in_the_order_shown_with_no_score_against_it(app: AppTest) -> None:
    ask(app, STOCKPORT_Q)
    answer = last_answer(app)
    assert len(answer.passages) >= 2
    cards = [h.value for h in app.main.subheader if h.value.startswith("\\[")]
    assert cards == [f"\\[{n}\\] {ui.escape_markdown(p.document.title)}"
                     for n, p in enumerate(answer.passages, start=1)]
    # A raw cosine per card would contradict the fused order; none is shown, and the order is explained.
    body = main_text(app)
    assert "similarity" not in body.lower()
    assert not re.search(r"\b0\\\.\d\d\b", body), body
    assert any("best match first" in c.value for c in app.main.caption)


def test_page_view_draws_the_cited_page_with_the_quote_marked(app: AppTest) -> None:
    from PIL import Image

    from qa import pageview

    ask(app, STOCKPORT_Q)
    assert not app.main.get("image")  # drawn only when asked for
    app.toggle(key="page-0-1").set_value(True).run()
    images = app.main.get("image")
    assert len(images) == 1
    image = images[0]
    assert isinstance(image, Element)
    caption = image.captions[0]
    assert caption.startswith("PDF page 1: the quoted sentences marked")
    # The drawn page itself carries the highlight: boxes, and yellow pixels inside the first one.
    rendered = next(v for k, v in pageview._CACHE.items() if k[1] == 1 and any(STOCKPORT_SENTENCE in q for q in k[2]))
    assert rendered.boxes
    picture = Image.open(io.BytesIO(rendered.png)).convert("RGB")
    x0, y0, x1, _y1 = rendered.boxes[0]
    pixel = picture.getpixel(((x0 + x1) // 2, y0 + 2))
    assert isinstance(pixel, tuple) and pixel[2] < 200  # yellow: little blue
    # A Markdown source shows its section with the sentence highlighted instead.
    ask(app, MENTOR_Q)
    number = len(app.session_state["turns"]) - 1
    app.toggle(key=f"page-{number}-1").set_value(True).run()
    assert any("**Teenagers with a mentor" in m.value for m in app.main.markdown)


def test_reply_area_says_it_is_searching_while_the_question_runs(app: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.runtime.scriptrunner import get_script_run_ctx
    from streamlit.testing.v1.element_tree import parse_tree_from_messages

    from qa.engine import Engine

    seen: list[list[tuple[str, list[str]]]] = []
    asked = Engine.ask

    def watched(self: Engine, *args: object, **kwargs: object):
        ctx = get_script_run_ctx()
        if ctx is not None:  # a question asked by the page: what does the page show at this moment?
            runner = ctx._enqueue.__self__  # type: ignore[attr-defined]
            tree = parse_tree_from_messages(runner.forward_msgs())
            seen.append([(m.name, [s.label for s in m.status]) for m in tree.main.chat_message])
        return asked(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Engine, "ask", watched)
    ask(app, STOCKPORT_Q)
    assert seen, "the page did not ask the engine"
    # While the engine works, the reply area under the question already says so (not blank)...
    assert seen[-1][-2:] == [("user", []), ("assistant", ["Searching the reports…"])]
    # ...and the reply takes its place once it is ready.
    assert not app.main.status
    assert last_answer(app).found and app.main.chat_message[-1].name == "assistant"
    # The view is held at the new question with room kept for its reply, so the page does not jump.
    holds = [h.proto.body for h in app.main.get("html") if "__qaHold" in h.proto.body]
    assert len(holds) == 1 and '"index": 0, "reserve": true' in holds[0]


def test_card_and_context_show_a_markdown_heading_without_its_marks(app: AppTest) -> None:
    ask(app, MENTOR_Q)
    answer = last_answer(app)
    assert answer.passages[0].document.doc_id == "beta.md"
    context = next(e for e in app.main.expander if e.label == "Show context")
    shown = "\n".join(m.value for m in context.markdown)
    assert "**Mentoring for teenagers**" in shown.split("\n\n")  # a heading of its own, in bold
    bodies = [m.value for m in app.main.markdown]
    assert not any(re.search(r"(?m)^\\#", b) for b in bodies), bodies  # no "# " shown as text
    assert any("**Teenagers with a mentor stayed in education" in b for b in bodies)


def test_drawn_page_opens_full_size_when_tapped(app: AppTest, tmp_path: Path) -> None:
    from PIL import Image

    ask(app, STOCKPORT_Q)
    app.toggle(key="page-0-1").set_value(True).run()
    [image] = app.main.get("image")
    # The page in the card is a link to the same drawing served on its own, which a phone's
    # browser shows at full size and lets the reader zoom.
    link = image.proto.link
    assert re.fullmatch(r"app/static/corpus/\w{16}/pages/alpha\.pdf-p1-\w{16}\.png", link), link
    served = tmp_path / "static" / link.removeprefix("app/static/")
    drawn = Image.open(io.BytesIO(served.read_bytes()))
    assert drawn.format == "PNG" and drawn.width >= 600  # the drawing itself, not a thumbnail
    assert "open it full size" in image.proto.imgs[0].caption
    app.run()  # drawn again on the next run: the same file, not another
    assert app.main.get("image")[0].proto.link == link
    assert len(list(served.parent.iterdir())) == 1


def test_uncovered_question_says_so_and_lists_weak_matches(app: AppTest) -> None:
    ask(app, UNCOVERED_Q)
    assert not last_answer(app).found
    warning = " ".join(w.value for w in app.warning)
    assert "does not cover this question" in warning
    assert "weak match" in main_text(app)
    assert not any(m.value.startswith("- ") for m in app.main.markdown)  # no answer sentences
    assert not [b for b in app.button if b.key and b.key.startswith("pin-")]  # nothing quoted, nothing to pin


def test_follow_up_shows_what_was_searched_and_can_search_the_question_alone(app: AppTest) -> None:
    ask(app, STOCKPORT_Q)
    ask(app, "what about costs?")
    answer = last_answer(app)
    assert answer.query == f"{STOCKPORT_Q} what about costs?"
    captions = [c.value for c in app.caption]
    assert f"Searched as: {ui.escape_markdown(answer.query)}" in captions
    assert answer.passages[0].chunk.page == 2  # the costs page
    assert sum(c.startswith("Searched as:") for c in captions) == 1  # the first was searched as asked
    app.button(key="alone-1").click().run()
    again = last_answer(app)
    assert again.question == again.query == "what about costs?"
    assert len(app.session_state["turns"]) == 2  # replaced in place, not appended
    assert not any(c.value.startswith("Searched as:") for c in app.caption)


def test_document_filter_excludes_other_documents(app: AppTest) -> None:
    app.multiselect(key="filter_docs").set_value(["beta.md"]).run()
    ask(app, STOCKPORT_Q)
    answer = last_answer(app)
    assert answer.passages and {p.document.doc_id for p in answer.passages} == {"beta.md"}
    body = main_text(app)
    assert "Filters: Mentoring for teenagers" in body
    assert "Stockport family support" not in body


def test_year_filter_and_passage_count(app: AppTest) -> None:
    app.slider(key="filter_years").set_value((2019, 2021))
    app.slider(key="top_k").set_value(1).run()
    ask(app, STOCKPORT_Q)
    answer = last_answer(app)
    assert len(answer.passages) == 1
    assert answer.passages[0].document.year in (2019, 2021)
    assert "Filters: 2019–2021" in main_text(app)


def test_quotes_collection_reorders_drops_and_exports(app: AppTest, downloads: dict[str, str | bytes]) -> None:
    import docx

    ask(app, STOCKPORT_Q)
    app.button(key="pin-0-1-0").click().run()
    ask(app, MENTOR_Q)
    app.button(key="pin-1-1-0").click().run()
    pins = app.session_state["pins"]
    assert [p.doc_id for p in pins] == ["alpha.pdf", "beta.md"]
    said = pins[0].text  # the answer sentence as quoted, heading and all
    assert said.endswith(STOCKPORT_SENTENCE) and said in [s.text for s in app.session_state["turns"][0].answer.sentences]
    cited = f"“{said}” (Stockport family support, 2015, p. 11 (PDF p. 1))"
    assert app.button(key="pin-0-1-0").label.startswith("Unpin")
    # The collection shows each quote's text with its citation.
    collection = "\n".join(m.value for m in app.sidebar.markdown)
    assert ui.escape_markdown(cited) in collection
    # One pin moves, one goes.
    app.button(key="pin-down-0").click().run()
    assert [p.doc_id for p in app.session_state["pins"]] == ["beta.md", "alpha.pdf"]
    text = _text(downloads, "quotes.txt")
    assert text.index("mentor") < text.index(STOCKPORT_SENTENCE)
    assert cited in text
    assert "Test Author (2015) Stockport family support. Test Publisher. Available at: https://example.org/alpha " \
           "(Accessed: " in text
    markdown = _text(downloads, "quotes.md")
    assert f"> {cited}" in markdown
    assert "\\" not in markdown  # plain prose needs no escapes
    word = docx.Document(io.BytesIO(_data(downloads, "quotes.docx")))
    paragraphs = [p.text for p in word.paragraphs]
    assert cited in paragraphs
    bib = _text(downloads, "references.bib")
    assert "title = {{Stockport family support}}" in bib and "year = {2015}" in bib
    assert "url = {https://example.org/alpha}" in bib and "urldate = {" in bib
    ris = _text(downloads, "references.ris")
    assert "TI  - Stockport family support" in ris and "PY  - 2015" in ris and "UR  - https://example.org/alpha" in ris
    assert ris.count("TY  - RPRT") == 2 and ris.count("ER  - ") == 2
    app.button(key="pin-drop-0").click().run()
    assert [p.doc_id for p in app.session_state["pins"]] == ["alpha.pdf"]
    # The conversation's downloads keep working: Markdown, CSV and the cited documents.
    conversation = _text(downloads, "conversation.md")
    assert f"## 1. {STOCKPORT_Q}" in conversation and STOCKPORT_SENTENCE in conversation
    rows = list(csv.reader(io.StringIO(_text(downloads, "citations.csv"))))
    assert tuple(rows[0]) == ui.CSV_COLUMNS
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first["citation"] == "Stockport family support (2015), p. 11 (PDF p. 1)"
    assert (first["page"], first["page_label"]) == ("1", "11")
    assert "Stockport family support" in _text(downloads, "cited-documents.bib")
    app.button(key="clear_conversation").click().run()
    assert app.session_state["turns"] == []
    assert not app.chat_message


def test_question_link_is_asked_on_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        fake_index: tuple[Path, Path], static_serving: None) -> None:
    corpus, index = fake_index
    at = make_app(tmp_path, monkeypatch, corpus, index)
    at.query_params["q"] = STOCKPORT_Q
    at.run()
    assert not at.exception
    assert [t.question for t in at.session_state["turns"]] == [STOCKPORT_Q]
    assert "q" not in at.query_params  # asked once: a reload shows the conversation instead of asking again
    at.run()
    assert len(at.session_state["turns"]) == 1


def test_conversation_survives_a_reload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        fake_index: tuple[Path, Path], static_serving: None) -> None:
    corpus, index = fake_index
    first = make_app(tmp_path, monkeypatch, corpus, index).run()
    ask(first, STOCKPORT_Q)
    first.button(key="pin-0-1-0").click().run()
    sid = first.query_params["s"]
    sid = sid[0] if isinstance(sid, list) else sid
    again = make_app(tmp_path, monkeypatch, corpus, index)  # a new browser session with the same URL
    again.query_params["s"] = sid
    again.run()
    assert [t.question for t in again.session_state["turns"]] == [STOCKPORT_Q]
    assert [p.text for p in again.session_state["pins"]] == [p.text for p in first.session_state["pins"]]
    assert any(m.value == ui.escape_markdown(STOCKPORT_Q) for m in again.main.markdown)
    other = make_app(tmp_path, monkeypatch, corpus, index).run()  # another browser: its own conversation
    assert other.session_state["turns"] == []
    forged = make_app(tmp_path, monkeypatch, corpus, index)
    forged.query_params["s"] = "../../etc"
    forged.run()
    assert forged.session_state["turns"] == [] and forged.query_params["s"] != "../../etc"


def holds(at: AppTest) -> list[str]:
    """The scroll-hold scripts on the page (each keeps one chat message at the top of the view)."""
    return [h.proto.body for h in at.main.get("html") if "__qaHold" in h.proto.body]


def test_a_reload_opens_at_the_last_answer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           fake_index: tuple[Path, Path], static_serving: None) -> None:
    corpus, index = fake_index
    first = make_app(tmp_path, monkeypatch, corpus, index).run()
    assert not holds(first)  # nothing asked yet: nothing to hold
    ask(first, STOCKPORT_Q)
    ask(first, MENTOR_Q)
    sid = first.query_params["s"]
    again = make_app(tmp_path, monkeypatch, corpus, index)  # the same address in a new browser session
    again.query_params["s"] = sid[0] if isinstance(sid, list) else sid
    again.run()
    assert len(again.session_state["turns"]) == 2
    # The view is held at the last question (chat message 2: question 0, reply 0, question 1), whose
    # reply follows it, instead of being left at the end of the chat, the last source card.
    [hold] = holds(again)
    assert '"index": 2, "reserve": false' in hold
    assert any(m.value == ui.escape_markdown(MENTOR_Q)
               for m in again.main.chat_message[2].markdown)
    again.run()  # a later run of the same session (a click, a toggle) does not move the reader
    assert not holds(again)


def test_document_markup_is_rendered_inert(app: AppTest, downloads: dict[str, str | bytes]) -> None:
    ask(app, HOSTILE_Q)
    answer = last_answer(app)
    assert answer.found and answer.passages[0].document.doc_id == "hostile.pdf"
    bodies = texts(app)
    shown = "\n".join(bodies)
    # The passage is shown, with its markup escaped character by character...
    assert "\\<script\\>alert\\(\\'x\\'\\)\\<\\/script\\>" in shown
    assert "\\!\\[tracker\\]\\(\u2060http\\:\\/\\/evil\\.example\\/pixel\\.png\\)" in shown
    # ...and nothing in any rendered body could start a tag, a link or an image but the app's own links.
    for body in bodies:
        assert not re.search(r"(?<!\\)[<\[]", LINK.sub("", body)), body
    # The page label (from the PDF) is escaped in the link button's label too.
    labels = [b.proto.label for b in app.get("link_button")]
    assert f"Open at page {ui.escape_markdown(HOSTILE_LABEL + '1')}" in labels
    assert all(not re.search(r"(?<!\\)[<\[]", label) for label in labels)
    # No element renders HTML but the app's style sheet and its scroll script, whose data cannot end it.
    assert all(not m.proto.allow_html for m in list(app.markdown) + list(app.caption))
    for element in app.get("html"):
        body = element.proto.body
        assert body == ui.APP_CSS or (body.startswith("<script>") and body.count("<") == 2), body
    # Exports keep the text but escape what a Markdown viewer would run or fetch.
    exported = _text(downloads, "conversation.md")
    assert "\\<script\\>" in exported and not re.search(r"(?<!\\)<", exported)
    assert "!\\[tracker\\]" in exported and "![tracker]" not in exported


def test_bare_urls_in_documents_do_not_become_links() -> None:
    shown = ui.escape_markdown("See www.evil.example, https://evil.example/x or mail me@evil.example.")
    # A word joiner before each name (and after @) stops GitHub-flavoured Markdown's autolinks.
    assert "\u2060www\\.evil" in shown and "\u2060https\\:" in shown and "\\@\u2060evil" in shown
    highlighted = ui.highlight_markdown("Visit www.evil.example now.", ["Visit www.evil.example now."])
    assert "\u2060www" in highlighted


def test_index_error_text_is_not_rendered_as_markdown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      fake_index: tuple[Path, Path]) -> None:
    corpus, _ = fake_index
    index = tmp_path / "index"
    hostile = FakeEmbedder(name="![i](http://evil.example/i.png)")  # the manifest names this model
    ingest(corpus, index, hostile, settings=IngestSettings(workers=0))
    at = make_app(tmp_path, monkeypatch, corpus, index, models=[FakeEmbedder(dimension=32)]).run()
    assert not at.exception
    error = " ".join(e.value for e in at.error)
    assert "rebuild" in error
    assert "evil" in error and not re.search(r"(?<!\\)[<\[]", error)  # shown, but as text


def test_no_index_and_empty_corpus_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "corpus").mkdir()
    at = make_app(tmp_path, monkeypatch, tmp_path / "corpus", tmp_path / "no-index").run()
    assert not at.exception
    message = " ".join(i.value for i in at.info)
    assert "has no documents" in message and "qa fetch" in message
    assert any("qa ingest" in c.value and "make run" in c.value for c in at.code)
    assert not at.chat_input  # nothing to ask yet


def test_no_index_with_documents_says_build_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               fake_index: tuple[Path, Path]) -> None:
    corpus, _ = fake_index
    at = make_app(tmp_path, monkeypatch, corpus, tmp_path / "no-index").run()
    assert not at.exception
    assert "holds 3 documents" in " ".join(i.value for i in at.info)


def test_each_run_reads_the_environment_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            fake_index: tuple[Path, Path]) -> None:
    from qa.settings import Settings

    corpus, index = fake_index
    reads: list[str] = []
    read = Settings.from_env.__func__  # type: ignore[attr-defined]

    def counted(cls: type[Settings], environ: object = None) -> Settings:
        reads.append("read")
        return read(cls, environ)

    monkeypatch.setattr(Settings, "from_env", classmethod(counted))
    for folder in ("with-index", "without-index"):
        (tmp_path / folder).mkdir()
    at = make_app(tmp_path / "with-index", monkeypatch, corpus, index)
    at.run()
    assert not at.exception and len(reads) == 1
    ask(at, STOCKPORT_Q)
    assert last_answer(at).found and len(reads) == 2
    setup = make_app(tmp_path / "without-index", monkeypatch, corpus, tmp_path / "no-index").run()
    assert "holds 3 documents" in " ".join(i.value for i in setup.info) and len(reads) == 3


def test_mismatched_index_says_rebuild(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       fake_index: tuple[Path, Path]) -> None:
    corpus, index = fake_index
    copy = shutil.copytree(index, tmp_path / "index")
    at = make_app(tmp_path, monkeypatch, corpus, copy, models=[FakeEmbedder(dimension=32)]).run()
    assert not at.exception
    error = " ".join(e.value for e in at.error)
    assert "rebuild" in error


def test_refresh_picks_up_a_new_ingest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       fake_index: tuple[Path, Path], static_serving: None) -> None:
    corpus, index = fake_index
    corpus = shutil.copytree(corpus, tmp_path / "corpus")
    index = shutil.copytree(index, tmp_path / "index")
    at = make_app(tmp_path, monkeypatch, corpus, index).run()
    (corpus / "gamma.md").write_text("# Gamma\n\nThe gamma project trained social workers in motivational interviewing "
                                     "with families.\n", encoding="utf-8")
    ingest(corpus, index, FakeEmbedder(), settings=IngestSettings(workers=0))
    ask(at, "Which project trained social workers in motivational interviewing?")
    assert last_answer(at).passages[0].document.doc_id == "gamma.md"
    assert "4 documents" in "\n".join(m.value for m in at.sidebar.markdown)


def test_removed_or_changed_documents_are_no_longer_served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          fake_index: tuple[Path, Path], static_serving: None) -> None:
    corpus, index = fake_index
    corpus = shutil.copytree(corpus, tmp_path / "corpus")
    index = shutil.copytree(index, tmp_path / "index")
    at = make_app(tmp_path, monkeypatch, corpus, index).run()
    served = sorted(p.relative_to(tmp_path / "static").as_posix() for p in (tmp_path / "static").rglob("*.*"))
    alpha = next(p for p in served if p.endswith("/alpha.pdf"))
    beta = next(p for p in served if p.endswith("/beta.md.txt"))
    (corpus / "alpha.pdf").unlink()
    (corpus / "beta.md").write_text("# Mentoring for teenagers\n\nRewritten text about mentors.\n", encoding="utf-8")
    ingest(corpus, index, FakeEmbedder(), settings=IngestSettings(workers=0))
    ask(at, "mentors")
    static = tmp_path / "static"
    assert not (static / alpha).exists()  # removed from the corpus: gone, so its URL answers 404
    assert not (static / beta).exists()  # changed: the old version is gone...
    assert any(p.name == "beta.md.txt" for p in static.rglob("*.txt"))  # ...and the new one is served
    assert "alpha.pdf" not in {p.name for p in static.rglob("*")}


def test_index_rebuilt_with_another_model_is_reopened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      fake_index: tuple[Path, Path]) -> None:
    corpus, index = fake_index
    index = shutil.copytree(index, tmp_path / "index")
    small = FakeEmbedder(dimension=32)
    at = make_app(tmp_path, monkeypatch, corpus, index, models=[FakeEmbedder(), small]).run()
    ingest(corpus, index, small, settings=IngestSettings(workers=0), rebuild=True)
    ask(at, STOCKPORT_Q)
    assert not at.error
    assert last_answer(at).passages[0].document.doc_id == "alpha.pdf"
    assert "fake\\-hash\\-32" in joined(at)  # the sidebar names the new model


def _luminance(colour: str) -> float:
    rgb = [int(colour.lstrip("#")[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two #rrggbb colours."""
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def blend(colour: str, background: str, opacity: float) -> str:
    """The colour seen when ``colour`` is drawn at ``opacity`` over ``background`` (#rrggbb)."""
    parts = [round(opacity * int(colour[i:i + 2], 16) + (1 - opacity) * int(background[i:i + 2], 16)) for i in (1, 3, 5)]
    return "#" + "".join(f"{p:02x}" for p in parts)


def test_every_text_colour_has_enough_contrast() -> None:
    import tomllib

    theme = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))["theme"]
    backgrounds = [theme["backgroundColor"], theme["secondaryBackgroundColor"]]
    pairs = [(theme[name], bg) for name in ("textColor", "linkColor") for bg in backgrounds]
    pairs += [(theme["codeTextColor"], theme["codeBackgroundColor"]), ("#ffffff", theme["primaryColor"])]
    pairs += [(theme["primaryColor"], bg) for bg in backgrounds]  # slider values, tertiary buttons
    pairs += [(theme[f"{c}TextColor"], theme[f"{c}BackgroundColor"]) for c in ("blue", "green", "yellow", "orange", "red")]
    css_colours = re.findall(r"color:\s*(#[0-9a-fA-F]{6})", ui.APP_CSS)
    assert css_colours  # the caption, label and placeholder colours the app sets
    pairs += [(c, bg) for c in css_colours for bg in backgrounds]
    assert ui.BACKGROUND == theme["backgroundColor"] and ui.SIDEBAR == theme["secondaryBackgroundColor"]
    low = [(fg, bg, round(contrast(fg, bg), 2)) for fg, bg in pairs if contrast(fg, bg) < 4.5]
    assert not low, low
    # While a question runs, what the run has not redrawn yet is faded by the app's CSS only so far:
    # the conversation not at all, the sidebar's text and captions kept at 4.5:1 or more.
    stale = dict(re.findall(r'\[data-testid="(\w+)"\] \[data-stale="true"\] \{\{? ?opacity: ([\d.]+)', ui.APP_CSS))
    assert stale.keys() == {"stMain", "stSidebar"}, ui.APP_CSS
    assert float(stale["stMain"]) == 1
    for colour in (theme["textColor"], ui.FADED_TEXT):
        for bg, area in ((theme["backgroundColor"], "stMain"), (theme["secondaryBackgroundColor"], "stSidebar")):
            shown = blend(colour, bg, float(stale[area]))
            assert contrast(shown, bg) >= 4.5, (colour, area, shown, round(contrast(shown, bg), 2))
    assert contrast(blend(theme["textColor"], "#ffffff", 0.33), "#ffffff") < 2.5  # Streamlit's own fade, unread
    low = [(fg, bg, round(contrast(fg, bg), 2)) for fg, bg in pairs if contrast(fg, bg) < 4.5]
    assert not low, low
    assert round(contrast("#767676", "#ffffff"), 1) == 4.5  # the formula, checked on a known pair


# --- the pure helpers behind the app --------------------------------------------------------


INJECTIONS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[x](javascript:alert(1))",
    "![x](http://evil.example/x.png)",
    "<javascript:alert(1)>",
    "&lt;b&gt; &#60;",
    "# heading\n- item\n1. first\n> quote\n    code\n| a | b |\n|---|---|",
    "$x^2$ :red[colour] **bold** _it_ ~~strike~~ `code`",
]


@pytest.mark.parametrize("text", INJECTIONS)
def test_escape_markdown_leaves_no_markup(text: str) -> None:
    escaped = ui.escape_markdown(text)
    # Removing the backslash escapes and word joiners gives back the text (minus indentation)...
    assert escaped.replace("\\", "").replace("\u2060", "") == "\n".join(line.lstrip() for line in text.split("\n"))
    # ...and every punctuation character is escaped, so none can open markup.
    for i, ch in enumerate(escaped):
        if ch in "<>[]()!*_`#|$&~:-=":
            assert escaped[i - 1] == "\\", (text, i)


def test_escape_markdown_drops_indentation_and_control_characters() -> None:
    assert ui.escape_markdown("    indented\r\n\tline\x00end") == "indented\nline end"


@pytest.mark.parametrize("text", INJECTIONS)
def test_escape_export_neutralises_links_images_and_html(text: str) -> None:
    escaped = ui.escape_export(text)
    assert "<" not in escaped.replace("\\<", "")
    assert "](" not in escaped.replace("\\](", "")
    assert "![" not in escaped
    for line in escaped.split("\n"):
        assert not line.startswith(("#", "-", "+", "=", ">", "|")) and not re.match(r"\d+[.)]", line)


def test_highlight_bolds_answer_sentences_across_line_breaks() -> None:
    text = "Intro line.\nThe first round invested\n£110 million (in 57 projects). Other text."
    out = ui.highlight_markdown(text, ["The first round invested £110 million (in 57 projects)."])
    assert out == ("Intro line\\.  \n**The first round invested**  \n**£110 million \\(in 57 projects\\)\\.** "
                   "Other text\\.")
    assert ui.highlight_markdown("No match here.", ["Absent sentence."]) == "No match here\\."


def test_short_lines_keep_their_break_and_wrapped_lines_join() -> None:
    text = ("1.1 Round 1\n"
            "The first round invested £110 million in 57 projects across England, from\n"
            "2014 to 2016.\n"
            "Next paragraph starts here and runs on.")
    lines = ui.highlight_markdown(text).split("\n")
    assert lines[0] == "1\\.1 Round 1  "  # a heading: hard break
    assert not lines[1].endswith("  ")  # a wrapped line: joined by Markdown
    assert lines[2].endswith("  ")  # ended early: a paragraph end


def test_card_text_has_no_markdown_marks_and_headings_stand_alone() -> None:
    text = ("## 2 Why they were slow to start\n\nThey gave two reasons:\n\n- people were nervous about taking part;\n"
            "- the projects needed different legal arrangements.\n\nSome were stopped.\n")
    blocks = ui.card_markdown(text).split("\n\n")
    assert blocks == ["**2 Why they were slow to start**", "They gave two reasons\\:",
                      "- people were nervous about taking part\\;\n- the projects needed different legal arrangements\\.",
                      "Some were stopped\\."]
    # PDF text: no blank line before a numbered heading; it still gets a line of its own.
    pdf = ("schemes that followed it. None of these totals should be added to the others.\n"
           "3 How much evidence was produced\n"
           "The programme generated a large body of evaluation evidence. Over 100 evaluation reports had\n"
           "appeared by September 2020.")
    blocks = ui.card_markdown(pdf, ["Over 100 evaluation reports had appeared by September 2020."]).split("\n\n")
    assert blocks[1] == "**3 How much evidence was produced**"
    assert blocks[0].endswith("added to the others\\.")
    assert blocks[2] == ("The programme generated a large body of evaluation evidence\\. "
                         "**Over 100 evaluation reports had appeared by September 2020\\.**")
    # A numbered item keeps its number (a reader may cite it), on a line of its own.
    assert ui.card_markdown("Two steps:\n1. plan the work;\n2. do it.") == \
        "Two steps\\:\n\n1\\. plan the work\\;  \n2\\. do it\\."
    # An excerpt says where it was cut.
    assert ui.card_markdown("a middle part of a sentence", cut_before=True, cut_after=True) == \
        "…a middle part of a sentence…"
    assert ui.card_markdown("A whole sentence.", cut_after=True) == "A whole sentence\\. …"


@pytest.mark.parametrize("text", INJECTIONS + ["- [x](javascript:alert(1))\n## <b>head</b>\n* **item** <i>"])
def test_card_markdown_leaves_no_markup_but_its_own(text: str) -> None:
    shown = ui.card_markdown(text, ["**bold**"])
    # Take away the card's own marks (list item starts and bold); every punctuation mark left is escaped.
    bare = re.sub(r"(?m)^- ", "", shown).replace("**", "")
    for i, ch in enumerate(bare):
        if ch in "<>[]()!*_`#|$&~:-=":
            assert bare[i - 1] == "\\", (text, shown, i)
    assert bare.replace("\\", "").replace("\u2060", "").replace("…", "").split() == \
        [w for w in re.sub(r"(?m)^\s*(?:#+|[-*])\s", " ", text).split() if w]


def test_find_spans_merge_overlaps() -> None:
    text = "aaa bbb ccc ddd"
    assert find_spans(text, ["aaa bbb", "bbb ccc", "ddd"]) == [(0, 11), (12, 15)]


def test_citations_csv_defuses_formulas() -> None:
    assert ui._cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert ui._cell("+1") == "'+1" and ui._cell("plain") == "plain"


def test_card_markdown_shows_footnote_numbers_and_fields_on_their_own_lines() -> None:
    """Units cut a footnote's number off for quoting; the card still shows it, and a field stands alone."""
    text = ("Most councils kept their plans.\n14 In the East Midlands, two councils joined later in the year.\n"
            "Overall effectiveness Good\nLead inspector: Ann Example")
    blocks = ui.card_markdown(text).split("\n\n")
    assert blocks[1].startswith("14 In the East Midlands")
    assert blocks[-2:] == ["Overall effectiveness Good", "Lead inspector\\: Ann Example"]
