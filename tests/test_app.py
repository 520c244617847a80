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

import pytest
from pypdf import PdfReader, PdfWriter
from streamlit import config as st_config
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from conftest import ROOT, FakeEmbedder, make_pdf
from qa import ui
from qa.ingest import IngestSettings, ingest

STOCKPORT_Q = "How many families did the Stockport project support with a key worker?"
HOSTILE_Q = "What hostile markup does the hostile report contain?"
UNCOVERED_Q = "zebra giraffe volcano eruption"
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
    writer.set_page_label(0, 0, style="/D", prefix=HOSTILE_LABEL, start=1)
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
def downloads(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """What the app's download buttons offer, by file name (captured from the media file manager)."""
    captured: dict[str, str] = {}
    original = MediaFileManager.add

    def add(self, path_or_data, mimetype, coordinates, file_name=None, is_for_static_download=False):  # type: ignore[no-untyped-def]
        if file_name:
            captured[file_name] = path_or_data.decode("utf-8") if isinstance(path_or_data, bytes) else path_or_data
        return original(self, path_or_data, mimetype, coordinates, file_name=file_name,
                        is_for_static_download=is_for_static_download)

    monkeypatch.setattr(MediaFileManager, "add", add)
    return captured


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
    monkeypatch.setattr("qa.engine.load_embedder", lambda name=None: by_name.get(name or "", models[0]))
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


def last_answer(at: AppTest):  # type: ignore[no-untyped-def]
    turn = at.session_state["turns"][-1]
    assert turn.error == ""
    return turn.answer


# --- tests -------------------------------------------------------------------------------------


def test_first_page_shows_corpus_overview_and_examples(app: AppTest) -> None:
    assert not app.exception
    metrics = {m.label: m.value for m in app.sidebar.metric}
    assert metrics["Documents"] == "3"
    assert metrics["Pages"] == "4"
    table = app.sidebar.dataframe[0].value
    assert sorted(table["Title"]) == ["Hostile markup report", "Mentoring for teenagers", "Stockport family support"]
    examples = [b for b in app.button if b.key and b.key.startswith("example-")]
    assert examples
    examples[0].click().run()  # an example is asked as if typed
    assert [t.question for t in app.session_state["turns"]] == [examples[0].label]
    assert not any(b.key and b.key.startswith("example-") for b in app.button)


def test_question_shows_answer_and_cited_passages(app: AppTest, tmp_path: Path) -> None:
    ask(app, STOCKPORT_Q)
    answer = last_answer(app)
    assert answer.found
    top = answer.passages[0]
    assert top.document.doc_id == "alpha.pdf" and top.chunk.page == 1
    body = joined(app)
    # The answer sentence with its marker, the card heading and its page citation.
    assert ui.escape_markdown(STOCKPORT_SENTENCE)[:-2] in body
    assert "\\[1\\]" in body
    assert ui.escape_markdown("Stockport family support (2015), p. 11 (PDF p. 1)") in body
    assert "**" + ui.escape_markdown(STOCKPORT_SENTENCE) in body  # the answering sentence is highlighted
    # The full reference is offered in a code block (with its copy button).
    assert top.citation.reference.startswith("Test Author (2015) Stockport family support.")
    assert top.citation.reference.endswith("https://example.org/alpha")
    assert top.citation.reference in [c.value for c in app.code]
    assert any(e.label == "Show context" for e in app.expander)
    # "Open at this page" points at the PDF served from the app's static folder, at the physical page.
    link = next(b for b in app.get("link_button") if b.proto.label.startswith("Open at page 11"))
    url = link.proto.url
    assert url.startswith("app/static/corpus/") and url.endswith("/alpha.pdf#page=1")
    served = tmp_path / "static" / url.removeprefix("app/static/").split("#")[0]
    assert served.read_bytes().startswith(b"%PDF")
    # A Markdown source opens as plain text.
    ask(app, "How long did teenagers with a mentor stay in education?")
    md_link = next(b for b in app.get("link_button") if b.proto.label == "Open the source text")
    assert md_link.proto.url.endswith("/beta.md.txt")
    assert (tmp_path / "static" / md_link.proto.url.removeprefix("app/static/")).read_text().startswith("# Mentoring")


def test_uncovered_question_says_so_and_lists_weak_matches(app: AppTest) -> None:
    ask(app, UNCOVERED_Q)
    assert not last_answer(app).found
    warning = " ".join(w.value for w in app.warning)
    assert "does not cover this question" in warning
    assert "weak match" in joined(app)
    assert not any(m.value.startswith("- ") for m in app.markdown)  # no answer sentences


def test_follow_up_shows_the_searched_query(app: AppTest) -> None:
    ask(app, STOCKPORT_Q)
    ask(app, "what about costs?")
    answer = last_answer(app)
    assert answer.query == f"{STOCKPORT_Q} what about costs?"
    captions = [c.value for c in app.caption]
    assert f"Searched for: {ui.escape_markdown(answer.query)}" in captions
    assert answer.passages[0].chunk.page == 2  # the costs page
    # The first question was searched as asked, so it carries no such caption.
    assert sum(c.startswith("Searched for:") for c in captions) == 1


def test_document_filter_excludes_other_documents(app: AppTest) -> None:
    app.multiselect(key="filter_docs").set_value(["beta.md"]).run()
    ask(app, STOCKPORT_Q)
    answer = last_answer(app)
    assert answer.passages and {p.document.doc_id for p in answer.passages} == {"beta.md"}
    body = joined(app)
    assert "Filters: Mentoring for teenagers" in body
    assert "Stockport family support" not in body


def test_year_filter_and_passage_count(app: AppTest) -> None:
    app.slider(key="filter_years").set_value((2019, 2021))
    app.slider(key="top_k").set_value(1).run()
    ask(app, STOCKPORT_Q)
    answer = last_answer(app)
    assert len(answer.passages) == 1
    assert answer.passages[0].document.year in (2019, 2021)
    assert "Filters: 2019–2021" in joined(app)


def test_pin_and_exports(app: AppTest, downloads: dict[str, str]) -> None:
    ask(app, STOCKPORT_Q)
    app.button(key="pin-0-1").click().run()
    reference = last_answer(app).passages[0].citation.reference
    pins = app.session_state["pins"]
    assert [p.passage.document.doc_id for p in pins] == ["alpha.pdf"]
    assert app.button(key="pin-0-1").label == "Unpin"

    collection = downloads["pinned-passages.md"]
    assert f"> Key workers in Stockport\n> {STOCKPORT_SENTENCE}" in collection
    assert f"Reference: {reference}" in collection
    assert f"_Found for the question:_ {STOCKPORT_Q}" in collection

    conversation = downloads["conversation.md"]
    assert f"## 1. {STOCKPORT_Q}" in conversation
    assert f"- {STOCKPORT_SENTENCE}" in conversation or f"{STOCKPORT_SENTENCE}" in conversation
    assert reference in conversation

    rows = list(csv.reader(io.StringIO(downloads["citations.csv"])))
    assert tuple(rows[0]) == ui.CSV_COLUMNS
    answer = last_answer(app)
    assert len(rows) == 1 + len(answer.passages)
    first = dict(zip(rows[0], rows[1]))
    assert first["question"] == STOCKPORT_Q
    assert first["citation"] == "Stockport family support (2015), p. 11 (PDF p. 1)"
    assert first["reference"] == reference
    assert (first["page"], first["page_label"]) == ("1", "11")
    pinned_rows = list(csv.reader(io.StringIO(downloads["pinned-citations.csv"])))
    assert len(pinned_rows) == 2

    # Unpinning removes it again; clearing the conversation empties the chat.
    app.button(key="pin-0-1").click().run()
    assert len(app.session_state["pins"]) == 0
    app.button(key="clear_conversation").click().run()
    assert app.session_state["turns"] == []
    assert not app.chat_message


def test_document_markup_is_rendered_inert(app: AppTest, downloads: dict[str, str]) -> None:
    ask(app, HOSTILE_Q)
    answer = last_answer(app)
    assert answer.found and answer.passages[0].document.doc_id == "hostile.pdf"
    bodies = texts(app)
    shown = "\n".join(bodies)
    # The passage is shown, with its markup escaped character by character...
    assert "\\<script\\>alert\\(\\'x\\'\\)\\<\\/script\\>" in shown
    assert "\\!\\[tracker\\]\\(http\\:\\/\\/evil\\.example\\/pixel\\.png\\)" in shown
    # ...and nothing in any rendered body could start a tag, a link or an image.
    for body in bodies:
        assert not re.search(r"(?<!\\)[<\[]", body), body  # no unescaped tag or link/image opener
    # The page label (from the PDF) is escaped in the link button's label too.
    labels = [b.proto.label for b in app.get("link_button")]
    assert f"Open at page {ui.escape_markdown(HOSTILE_LABEL + '1')}" in labels
    assert all(not re.search(r"(?<!\\)[<\[]", label) for label in labels)
    # No element may render HTML.
    assert all(not m.proto.allow_html for m in list(app.markdown) + list(app.caption))
    assert len(app.get("html")) == 0
    # Exports keep the text but escape what a Markdown viewer would run or fetch.
    exported = downloads["conversation.md"]
    assert "\\<script\\>" in exported and not re.search(r"(?<!\\)<", exported)
    assert "!\\[tracker\\]" in exported and "![tracker]" not in exported


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
    assert {m.label: m.value for m in at.sidebar.metric}["Documents"] == "4"


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
    # Removing the backslash escapes gives back the text (minus indentation): nothing was lost...
    assert escaped.replace("\\", "") == "\n".join(line.lstrip() for line in text.split("\n"))
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


def test_sentence_spans_merge_overlaps() -> None:
    text = "aaa bbb ccc ddd"
    assert ui.sentence_spans(text, ["aaa bbb", "bbb ccc", "ddd"]) == [(0, 11), (12, 15)]


def test_citations_csv_defuses_formulas() -> None:
    assert ui._cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert ui._cell("+1") == "'+1" and ui._cell("plain") == "plain"
