"""The app's answers on the sample corpus with the real model: the quoted sentences state the fact.

Each question is asked through the Streamlit app (``AppTest``, in-process) over
the shipped sample corpus. A right answer is judged like ``qa eval`` judges
one: a quoted answer sentence contains one of the fact's phrases (folded),
and it is shown with its passage marker and that passage's citation.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from qa import ui
from qa.cite import page_reference
from qa.text import fold

from conftest import ROOT

pytestmark = pytest.mark.model

# (question, phrases one of which the quoted answer must contain)
CASES = [
    ("Which practices reduced the number of children in care?", ["systemic", "key worker", "case discussion"]),
    ("which practices reduced care numbers", ["systemic", "key worker", "case discussion"]),
    pytest.param("How much money did the first round put in, and into how many projects?", ["£110 million"],
                 marks=pytest.mark.xfail(strict=True, reason="the fitted scorer puts the list of the whole programme's "
                                         "later totals (0.263) a hair above the first round's £110 million (0.248)")),
    # A recommendation for national policy, or the list recommended to local authorities.
    ("What did the wave 1 evaluation recommend?", ["systemic social work", "more time", "supporting deregulation",
                                                   "working systemically"]),
    ("Did the projects manage to cut social workers' caseloads?", ["managed to do so", "bringing caseloads down"]),
    pytest.param("Why did deregulation projects need more time?", ["nervous about taking part"],
                 marks=pytest.mark.xfail(strict=True, reason="the fitted scorer quotes the report's call for more time, "
                                         "not the reason given under it")),
    ("How much did Hertfordshire expect to save?", ["£2.6 million"]),
]


@pytest.fixture(scope="module")
def app_factory(sample_index: tuple[Path, Path], real_embedder, tmp_path_factory: pytest.TempPathFactory):
    corpus, index = sample_index
    folder = tmp_path_factory.mktemp("answers_app")
    script = folder / "app.py"
    shutil.copyfile(ROOT / "app.py", script)
    return corpus, index, script


@pytest.fixture
def app(app_factory, real_embedder, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    corpus, index, script = app_factory
    monkeypatch.setenv("QA_INDEX_DIR", str(index))
    monkeypatch.setenv("QA_CORPUS_DIR", str(corpus))
    monkeypatch.delenv("QA_MODEL", raising=False)
    monkeypatch.setattr("qa.engine.load_embedder", lambda name=None, from_index=False: real_embedder)
    return AppTest.from_file(script, default_timeout=120).run()


def _ask(at: AppTest, question: str):
    at.chat_input(key="question").set_value(question).run()
    assert not at.exception, [e.value for e in at.exception]
    turn = at.session_state["turns"][-1]
    assert turn.error == ""
    return turn.answer


def test_the_app_offers_these_examples() -> None:
    """The example questions checked below are the app's own (a changed example needs a case here)."""
    source = (ROOT / "app.py").read_text(encoding="utf-8")
    for question in ("How much money did the first round put in, and into how many projects?",
                     "What did the wave 1 evaluation recommend?",
                     "Did the projects manage to cut social workers' caseloads?"):
        assert question in source


def _case_id(case: object) -> str:
    values = case.values if hasattr(case, "values") else case
    return str(values[0])[:40]  # type: ignore[index]


@pytest.mark.parametrize(("question", "phrases"), CASES, ids=[_case_id(c) for c in CASES])
def test_quoted_answer_states_the_fact_with_its_citation(app: AppTest, question: str, phrases: list[str]) -> None:
    answer = _ask(app, question)
    assert answer.found, f"{question!r} was declined"
    stating = [s for s in answer.sentences if any(fold(p) in fold(s.text) for p in phrases)]
    assert stating, f"{question!r}: quoted {[s.text for s in answer.sentences]}, none states {phrases}"
    for s in answer.sentences:  # never a heading or a section number glued to text
        assert not s.text.lstrip().startswith("#") and not s.text[:4].strip().replace(".", "").isdigit()
    body = "\n".join([m.value for m in app.markdown] + [c.value for c in app.caption])
    sentence = stating[0]
    assert ui.escape_markdown(sentence.text)[:40] in body.replace("**", "")
    rank = sentence.passages[0]
    passage = next(p for p in answer.passages if p.rank == rank)
    assert f"[\\[{rank}\\]](#" in body, "the marker links to its source card"
    card = f"\\[{rank}\\] {ui.escape_markdown(passage.document.title)}"
    assert any(h.value == card for h in app.subheader), f"no source card headed {card!r}"
    if passage.document.kind == "pdf":  # the card says where in the PDF the quote is
        assert ui.escape_markdown(page_reference(passage.document, passage.chunk)) in body
