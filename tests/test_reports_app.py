"""The app's "Across the reports" way to ask, driven in-process with ``AppTest`` (fake embedder, small corpus)."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Element
from test_app import STOCKPORT_Q, STOCKPORT_SENTENCE, _data, _text, downloads, fake_index, make_app, static_serving

from qa import ui

__all__ = ["downloads", "fake_index", "static_serving"]  # fixtures used by name below


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_index: tuple[Path, Path], static_serving: None) -> AppTest:
    corpus, index = fake_index
    return make_app(tmp_path, monkeypatch, corpus, index).run()


def ask_across(at: AppTest, question: str) -> AppTest:
    at.radio(key="ask_mode").set_value("Across the reports").run()
    at.chat_input(key="question").set_value(question).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_across_the_reports_shows_one_row_per_answering_report(app: AppTest, downloads: dict[str, str | bytes]) -> None:
    import docx

    assert app.radio(key="ask_mode").value == "Chat"  # the chat stays the default
    ask_across(app, STOCKPORT_Q)
    table = app.session_state["report_ask"].table
    assert [r.document.doc_id for r in table.rows] == ["alpha.pdf"]  # the other reports do not answer
    assert app.session_state["turns"] == []  # the table is not a chat turn
    body = "\n".join(m.value for m in app.main.markdown)
    assert "**1\\. Stockport family support** (2015)" in body
    assert f"“{ui.escape_markdown(STOCKPORT_SENTENCE)}”" in body
    # The citation opens the served PDF at the physical page; its text names the printed page.
    cited = re.escape(ui.escape_markdown("Stockport family support (2015), p. 11 (PDF p. 1)"))
    assert re.search(rf"\[{cited}\]\(app/static/corpus/\w+/alpha\.pdf#page=1\)", body), body

    # The page view draws the cited page with the quote marked.
    row_key = "report-" + table.rows[0].document.content_hash[:16]
    app.toggle(key=f"page-{row_key}").set_value(True).run()
    images = app.main.get("image")
    assert len(images) == 1
    assert isinstance(images[0], Element) and images[0].captions[0].startswith("PDF page 1: the quoted sentences marked")

    # Pin the row: it joins the collection as a quote with its citation.
    app.button(key=f"pin-{row_key}").click().run()
    pins = app.session_state["pins"]
    assert [(p.doc_id, p.page, p.text) for p in pins] == [("alpha.pdf", 1, STOCKPORT_SENTENCE)]
    assert app.button(key=f"pin-{row_key}").label == "Unpin"

    # The table downloads as CSV and Word, with the full reference.
    rows = list(csv.DictReader(io.StringIO(_text(downloads, "across-the-reports.csv"))))
    assert [(r["document"], r["page"], r["page_label"], r["quote"]) for r in rows] == [
        ("alpha.pdf", "1", "11", STOCKPORT_SENTENCE)]
    assert rows[0]["reference"].startswith("Test Author (2015) Stockport family support. Test Publisher. "
                                           "Available at: https://example.org/alpha (Accessed: ")
    word = docx.Document(io.BytesIO(_data(downloads, "across-the-reports.docx")))
    cells = [[c.text for c in row.cells] for row in word.tables[0].rows]
    assert cells[1] == ["Stockport family support", "2015", f"“{STOCKPORT_SENTENCE}”", "p. 11 (PDF p. 1)"]
    assert any(p.text.startswith("Test Author (2015) Stockport family support.") for p in word.paragraphs)

    # Back to the chat: the conversation is as it was, and asking there still answers in the chat.
    app.radio(key="ask_mode").set_value("Chat").run()
    assert not app.exception
    app.chat_input(key="question").set_value(STOCKPORT_Q).run()
    assert len(app.session_state["turns"]) == 1 and app.session_state["turns"][0].answer.found


def test_a_question_no_report_answers_says_so(app: AppTest) -> None:
    ask_across(app, "zebra giraffe volcano eruption")
    assert app.session_state["report_ask"].table.rows == ()
    assert any("None of the 3 reports searched answers this question" in i.value for i in app.main.info)
