"""The extractive answer: sentences quoted verbatim from passages, marked with the right ranks."""

from __future__ import annotations

import numpy as np

from qa.answer import AnswerSettings, candidates, choose, fold, split_sentences
from qa.records import Chunk, Citation, DocMeta, Document, Passage

DOC = Document("r.pdf", DocMeta(title="Report", year=2017), "h", "pdf", 3)


def _passage(rank: int, text: str, page: int = 1) -> Passage:
    chunk = Chunk("r.pdf", page, str(page), "", 0, len(text), text)
    return Passage(rank, rank, chunk, DOC, 1.0 / rank, 0.5, 0.0, Citation("Report (2017)", "ref"))


P1 = ("Caseloads fell in every project that aimed to reduce them. Staff turnover\nwas lower in a third of the "
      "projects that measured it. OK then.")
P2 = "Staff turnover was lower in a third of the projects that measured it. Agency costs fell by £2 million a year."
P3 = "continued from the page before. Families said they trusted their key worker more than before."


def test_split_sentences_drops_fragments_and_tails() -> None:
    out = split_sentences(P1)
    assert out == ["Caseloads fell in every project that aimed to reduce them.",
                   "Staff turnover was lower in a third of the projects that measured it."]
    assert split_sentences(P3) == ["Families said they trusted their key worker more than before."]


def test_candidates_are_verbatim_and_know_every_passage_they_are_in() -> None:
    passages = [_passage(1, P1), _passage(2, P2), _passage(3, P3)]
    cands = dict(candidates(passages, AnswerSettings(from_passages=3)))
    for sentence in cands:
        assert any(fold(sentence) in fold(p.chunk.text) for p in passages)
    assert cands["Staff turnover was lower in a third of the projects that measured it."] == (1, 2)
    assert cands["Caseloads fell in every project that aimed to reduce them."] == (1,)
    assert cands["Agency costs fell by £2 million a year."] == (2,)


def test_candidates_only_from_the_first_passages_but_ranks_from_all() -> None:
    passages = [_passage(1, P2), _passage(2, P3), _passage(3, P1)]
    cands = dict(candidates(passages, AnswerSettings(from_passages=1)))
    assert set(cands) == {"Staff turnover was lower in a third of the projects that measured it.",
                          "Agency costs fell by £2 million a year."}
    assert cands["Staff turnover was lower in a third of the projects that measured it."] == (1, 3)


def test_choose_keeps_sentences_near_the_best_best_first() -> None:
    sents = [("Alpha beta gamma delta epsilon.", (1,)), ("Zeta eta theta iota kappa.", (2,)),
             ("Lambda mu nu xi omicron.", (1, 3))]
    settings = AnswerSettings(max_sentences=2, min_score=0.3, margin=0.1, lexical_weight=0.0)
    chosen = choose("question", sents, np.array([0.5, 0.9, 0.85]), settings)
    assert [s.text for s in chosen] == ["Zeta eta theta iota kappa.", "Lambda mu nu xi omicron."]
    assert chosen[1].passages == (1, 3)


def test_choose_returns_nothing_when_no_sentence_answers() -> None:
    sents = [("Alpha beta gamma delta epsilon.", (1,))]
    assert choose("question", sents, np.array([0.2]), AnswerSettings(min_score=0.48)) == ()
    assert choose("question", [], np.array([]), AnswerSettings()) == ()


def test_question_words_in_a_sentence_lift_it() -> None:
    sents = [("Caseloads fell sharply in the projects.", (1,)), ("Something else entirely was said.", (2,))]
    chosen = choose("Did caseloads fall?", sents, np.array([0.6, 0.62]),
                    AnswerSettings(max_sentences=1, min_score=0.3, lexical_weight=0.15))
    assert chosen[0].text == "Caseloads fell sharply in the projects."
