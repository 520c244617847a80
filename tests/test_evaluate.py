"""The judge and the metrics of `qa eval`, and the command itself on a small corpus with the fake model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from qa.errors import QAError
from qa.evaluate import (
    Baseline,
    Gold,
    Question,
    compare,
    configure_parser,
    first_hit,
    format_table,
    is_hit,
    load_questions,
    score,
)
from qa.records import Answer, Chunk, Citation, DocMeta, Document, Passage
from qa.settings import Settings

from conftest import FakeEmbedder, make_pdf

DOC = Document("corpus/r.pdf", DocMeta(title="R"), "h", "pdf", 9)


def _passage(rank: int, page: int, text: str, doc: str = "corpus/r.pdf") -> Passage:
    return Passage(rank, rank, Chunk(doc, page, str(page), "", 0, len(text), text), DOC, 0.0, 0.0, 0.0, Citation("", ""))


GOLD = (Gold("corpus/r.pdf", (3, 4), "caseloads fell"),)


def test_is_hit_needs_document_page_and_phrase() -> None:
    assert is_hit(_passage(1, 3, "In 2016 Caseloads\n  FELL by a third."), GOLD)  # case and whitespace folded
    assert not is_hit(_passage(1, 5, "caseloads fell"), GOLD)  # wrong page
    assert not is_hit(_passage(1, 3, "caseloads fell", doc="corpus/other.pdf"), GOLD)  # wrong document
    assert not is_hit(_passage(1, 4, "caseloads rose"), GOLD)  # phrase absent


def test_is_hit_normalises_ligatures_like_the_index() -> None:
    assert is_hit(_passage(1, 3, "the ﬁnal report: caseloads fell"), (Gold("corpus/r.pdf", (3,), "final report"),))


def test_first_hit_is_one_based() -> None:
    passages = [_passage(1, 1, "x"), _passage(2, 3, "caseloads fell"), _passage(3, 4, "caseloads fell")]
    assert first_hit(passages, GOLD) == 2
    assert first_hit(passages[:1], GOLD) is None


def _answer(passages: list[Passage], found: bool = True) -> Answer:
    return Answer("q", "q", found, (), tuple(passages))


def test_score_math() -> None:
    hit = _passage(1, 3, "caseloads fell")
    miss = _passage(1, 9, "nothing")
    questions = [
        Question("a", "?", GOLD),  # hit at 1
        Question("b", "?", GOLD),  # hit at 3
        Question("c", "?", GOLD),  # hit at 7
        Question("d", "?", GOLD),  # no hit
        Question("u1", "?", ()),
        Question("u2", "?", ()),
    ]
    answers = [
        _answer([hit]),
        _answer([miss, miss, hit]),
        _answer([miss] * 6 + [hit]),
        _answer([miss] * 10, found=False),
        _answer([miss], found=False),
        _answer([miss], found=True),
    ]
    s = score(questions, answers)
    assert s.recall_at_1 == pytest.approx(1 / 4)
    assert s.recall_at_5 == pytest.approx(2 / 4)
    assert s.recall_at_10 == pytest.approx(3 / 4)
    assert s.mrr_at_10 == pytest.approx((1 + 1 / 3 + 1 / 7) / 4)
    assert s.found_answerable == pytest.approx(3 / 4)
    assert s.flagged_unanswerable == pytest.approx(1 / 2)
    assert s.missed == ("c", "d")
    assert s.wrongly_found == ("u2",)
    data = s.as_json()
    for key in ("recall@1", "recall@5", "recall@10", "mrr@10", "found_answerable", "flagged_unanswerable", "missed"):
        assert key in data
    table = format_table({"hybrid": s})
    assert "hybrid" in table and "0.500" in table and "c, d" in table


def test_score_without_unanswerable_questions_flags_all() -> None:
    s = score([Question("a", "?", GOLD)], [_answer([_passage(1, 3, "caseloads fell")])])
    assert s.flagged_unanswerable == 1.0 and s.unanswerable == 0


def test_load_questions(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(
        '{"id": "q1", "question": "Why?", "gold": [{"doc": "a.pdf", "pages": [2, 3], "contains": "because"}]}\n'
        "\n"
        '{"id": 7, "question": "Capital of France?", "gold": []}\n',
        encoding="utf-8",
    )
    qs = load_questions(path)
    assert [q.id for q in qs] == ["q1", "7"]
    assert qs[0].gold == (Gold("a.pdf", (2, 3), "because"),) and qs[0].answerable
    assert not qs[1].answerable


@pytest.mark.parametrize(
    "line",
    [
        "not json",
        '{"question": "no id"}',
        '{"id": "x", "question": "q", "gold": [{"doc": "a.pdf", "pages": ["two"], "contains": "x"}]}',
        '{"id": "x", "question": "q", "gold": [{"doc": "a.pdf"}]}',
        '["a", "list"]',
    ],
)
def test_malformed_question_lines_name_the_line(tmp_path: Path, line: str) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"id": "ok", "question": "q", "gold": []}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(QAError, match=r"q\.jsonl, line 2: not a question object .*expected \{\"id\", \"question\""):
        load_questions(path)


def test_missing_question_file_is_a_qa_error(tmp_path: Path) -> None:
    with pytest.raises(QAError, match="cannot read question file"):
        load_questions(tmp_path / "absent.jsonl")


@pytest.mark.parametrize(
    "line",
    [
        "not json",
        '{"turns": []}',
        '{"id": "c-1"}',
        '{"id": "c-1", "turns": [{"gold": []}]}',
        '{"id": "c-1", "turns": [{"question": "q", "gold": [{"doc": "a.pdf", "pages": ["two"], "contains": "x"}]}]}',
        '["a", "list"]',
    ],
)
def test_malformed_conversation_lines_name_the_file_line_and_shape(tmp_path: Path, line: str) -> None:
    from qa.evaluate import load_conversations

    path = tmp_path / "conv.jsonl"
    path.write_text('{"id": "c-9", "turns": [{"question": "q", "gold": []}]}\n\n' + line + "\n", encoding="utf-8")
    with pytest.raises(QAError, match=r"conv\.jsonl, line 3: not a conversation object .*expected \{\"id\", \"turns\""):
        load_conversations(path)


def test_conversation_file_skips_blank_lines_and_a_missing_one_is_a_qa_error(tmp_path: Path) -> None:
    from qa.evaluate import load_conversations

    path = tmp_path / "conv.jsonl"
    path.write_text('\n   \n{"id": "c-9", "turns": [{"question": "q", "gold": []}]}\n\n', encoding="utf-8")
    assert [(c.id, [t.id for t in c.turns]) for c in load_conversations(path)] == [("c-9", ["c-9/1"])]
    with pytest.raises(QAError, match="cannot read conversation file"):
        load_conversations(tmp_path / "absent.jsonl")


# --- the command, on a small generated corpus with the fake embedder ---------------------------

FOSTER = "Foster carers in the Northshire project received weekly supervision from a clinical psychologist."
TEEN = "Teenagers on the edge of care in Northshire were offered a key worker and a bed in a hub."


@pytest.fixture
def small_index(tmp_path: Path) -> tuple[Path, Path, FakeEmbedder]:
    from qa.ingest import IngestSettings, ingest

    corpus = tmp_path / "corpus"
    make_pdf(corpus / "northshire.pdf", [FOSTER, TEEN], title="Northshire evaluation")
    (corpus / "notes.txt").write_text("Caseloads in Southby fell to fifteen children for each social worker.\n",
                                      encoding="utf-8")
    embedder = FakeEmbedder()
    ingest(corpus, tmp_path / "index", embedder, settings=IngestSettings(workers=0))
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        '{"id": "t1", "question": "Were teenagers on the edge of care offered a key worker and a bed?", '
        '"gold": [{"doc": "northshire.pdf", "pages": [2], "contains": "offered a key worker"}]}\n'
        '{"id": "t2", "question": "Who supervised the foster carers?", '
        '"gold": [{"doc": "northshire.pdf", "pages": [1], "contains": "clinical psychologist"}]}\n'
        '{"id": "u1", "question": "What is the capital of France?", "gold": []}\n',
        encoding="utf-8",
    )
    return tmp_path / "index", questions, embedder


def test_compare_scores_every_config_and_the_baseline(small_index: tuple[Path, Path, FakeEmbedder]) -> None:
    from qa.engine import Engine

    index, questions, embedder = small_index
    engine = Engine(index, embedder=embedder)
    results = compare(engine, load_questions(questions), with_others=True)
    assert list(results) == ["hybrid", "lexical", "dense", "baseline"]
    assert results["hybrid"].recall_at_5 == 1.0
    assert results["lexical"].recall_at_5 == 1.0
    assert results["baseline"].answerable == 2 and results["baseline"].unanswerable == 1
    assert results["baseline"].flagged_unanswerable == 0.0  # the common way never abstains
    assert results["hybrid"].flagged_unanswerable == 1.0


def test_baseline_pieces_are_pages_of_raw_text(small_index: tuple[Path, Path, FakeEmbedder], tmp_path: Path) -> None:
    baseline = Baseline(tmp_path / "corpus", small_index[2])
    pages = {(c.doc_id, c.page) for c in baseline.chunks}
    assert pages == {("northshire.pdf", 1), ("northshire.pdf", 2), ("notes.txt", 1)}
    assert all(len(c.text) <= Baseline.CHUNK_CHARS for c in baseline.chunks)
    answer = baseline.ask("key worker and a bed in a hub", top_k=2)
    assert answer.passages[0].chunk.page == 2 and answer.found


def test_baseline_needs_the_corpus(tmp_path: Path) -> None:
    with pytest.raises(QAError, match="corpus folder"):
        Baseline(tmp_path / "gone", FakeEmbedder())


def test_run_prints_json_with_the_documented_keys(small_index: tuple[Path, Path, FakeEmbedder], monkeypatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    import qa.engine
    from qa import evaluate

    index, questions, embedder = small_index
    monkeypatch.setattr(qa.engine, "load_embedder", lambda name=None, from_index=False: embedder)
    parser = argparse.ArgumentParser()
    configure_parser(parser)
    assert evaluate.run(parser.parse_args([str(questions), "--json"]), Settings(index=index)) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data["configs"]) == ["hybrid"]
    hybrid = data["configs"]["hybrid"]
    assert {"recall@1", "recall@5", "recall@10", "mrr@10", "found_answerable", "flagged_unanswerable", "missed"} <= set(hybrid)
    assert hybrid["recall@5"] == 1.0 and hybrid["missed"] == []

    assert evaluate.run(parser.parse_args([str(questions)]), Settings(index=index)) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split()[:4] == ["config", "R@1", "R@5", "R@10"]


def test_run_on_a_bad_question_file_raises_a_qa_error(small_index: tuple[Path, Path, FakeEmbedder], tmp_path: Path) -> None:
    from qa import evaluate

    parser = argparse.ArgumentParser()
    configure_parser(parser)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{oops\n", encoding="utf-8")
    with pytest.raises(QAError, match="line 1"):
        evaluate.run(parser.parse_args([str(bad)]), Settings(index=small_index[0]))


# --- the answer and conversations -----------------------------------------------------------------

def _quoted(question: str, sentences: tuple[str, ...], found: bool = True, merged: bool = False,
            passages: tuple[Passage, ...] = ()) -> Answer:
    from qa.records import AnswerSentence

    return Answer(question, question, found, tuple(AnswerSentence(s, (1,)) for s in sentences), passages, merged)


def test_answer_at_needs_a_phrase_in_the_quoted_sentences() -> None:
    from qa.evaluate import states_answer

    a = _quoted("q", ("Hertfordshire projected savings of \u00a32.6\nmillion from the model.",))
    assert states_answer(a, ["\u00a32.6 million"])
    assert states_answer(a, ["nothing", "PROJECTED SAVINGS"])  # any phrase; case and whitespace folded
    assert not states_answer(a, ["\u00a3110 million"])
    assert not states_answer(_quoted("q", ("x",), found=False), ["x"])  # a declined answer states nothing
    curly = _quoted("q", ("The council\u2019s \u201cbest\u201d plan.",))
    assert states_answer(curly, ["council's \"best\" plan"])


def test_score_reports_answer_at_and_the_ids_missed() -> None:
    qs = [Question("a", "q1", GOLD, answers=("caseloads fell",)), Question("b", "q2", GOLD, answers=("nothing",)),
          Question("c", "q3", GOLD)]
    hit = _passage(1, 3, "In 2016 caseloads fell by a third.")
    answers = [_quoted("q1", ("In 2016 caseloads fell by a third.",), passages=(hit,)),
               _quoted("q2", ("Another sentence.",), passages=(hit,)), _quoted("q3", (), passages=(hit,))]
    s = score(qs, answers)
    assert s.with_answers == 2 and s.answer_at == 0.5 and s.answer_missed == ("b",)
    assert s.as_json()["answer@"] == 0.5


def test_gold_without_pages_accepts_any_page_and_a_bare_file_name() -> None:
    gold = (Gold("r.pdf", (), "caseloads fell"),)
    assert is_hit(_passage(1, 7, "caseloads fell"), gold)  # the passage's doc is corpus/r.pdf


def test_conversations_score_merging_and_later_turns(tmp_path: Path) -> None:
    from qa.evaluate import evaluate_conversations, is_conversation_file, load_conversations

    path = tmp_path / "conv.jsonl"
    turn = {"question": "first?", "gold": [{"doc": "corpus/r.pdf", "pages": [3], "contains": "caseloads fell"}],
            "answer": ["caseloads fell"]}
    path.write_text("\n".join(json.dumps(c) for c in [
        {"id": "c-1", "turns": [turn, {**turn, "question": "and then?"}]},
        {"id": "c-7", "turns": [turn, {**turn, "question": "a new question?"}]},
        {"id": "c-8", "turns": [turn, {"question": "off topic?", "gold": [], "answer": []}]},
    ]) + "\n", encoding="utf-8")
    assert is_conversation_file(path)
    convs = load_conversations(path)
    assert [c.turns[1].follow_up for c in convs] == [True, False, False]
    hit = _passage(1, 3, "caseloads fell")
    seen_history: list[int] = []

    def ask(question: str, history) -> Answer:
        seen_history.append(len(history))
        if question == "off topic?":
            return _quoted(question, (), found=False, passages=(hit,))
        return _quoted(question, ("caseloads fell",), merged=question == "and then?", passages=(hit,))

    result = evaluate_conversations(convs, ask)
    assert seen_history == [0, 1, 0, 1, 0, 1]
    assert (result.follow_ups_merged, result.follow_ups) == (1, 1)
    assert (result.new_left_alone, result.new_questions) == (2, 2)
    assert (result.off_topic_not_found, result.off_topic) == (1, 1)
    assert result.turns.answer_at == 1.0 and result.turns.recall_at_5 == 1.0
