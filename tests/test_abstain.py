"""The one abstain policy, its thresholds kept with the model, and the follow-up rule."""

from __future__ import annotations

import pytest

from qa.abstain import (
    AbstainPolicy,
    Evidence,
    answered,
    answers,
    evidence,
    policy_for,
    recorded_thresholds,
    states_numbers,
    weigh_evidence,
)
from qa.errors import IndexMismatchError
from qa.features import FEATURES, load_scorer
from qa.followup import Turn, contextualise, leans_on_previous

PASSAGE = ("Ofsted found that pathway plans in Leeds were not routinely updated.", "Leeds inspection ofsted leeds 2018")
POLICY = AbstainPolicy()


def test_evidence_when_names_and_numbers_are_in_one_passage() -> None:
    assert evidence("What did Ofsted find about pathway plans in Leeds in 2018?", [PASSAGE], 0.6, lambda t: True, POLICY)


def test_no_evidence_when_a_named_place_is_missing() -> None:
    assert not evidence("What did Ofsted find about pathway plans in Birmingham?", [PASSAGE], 0.6, lambda t: True,
                        POLICY)


def test_names_must_appear_together_in_one_of_the_first_passages() -> None:
    split = [("Nothing about places here at all.", "Report"), ("A passage about Leeds.", "Report"),
             ("A passage from 2018.", "Report")]
    assert not evidence("What happened in Leeds in 2018?", split, 0.6, lambda t: True, POLICY)
    together = [("Nothing here.", "Report")] * 5 + [("Leeds in 2018.", "Report")]
    assert not evidence("What happened in Leeds in 2018?", together, 0.6, lambda t: True, AbstainPolicy(key_passages=5))
    assert evidence("What happened in Leeds in 2018?", together, 0.6, lambda t: True, AbstainPolicy(key_passages=6))


def test_no_evidence_when_far_from_every_passage_or_words_unknown() -> None:
    assert not evidence("pathway plans", [PASSAGE], 0.1, lambda t: True, POLICY)
    assert not evidence("pathway plans", [], 0.9, lambda t: True, POLICY)
    asked: list[str] = []

    def in_corpus(term: str) -> bool:
        asked.append(term)
        return term not in {"sourdough", "bread"}

    assert not evidence("How should pathway plans bake sourdough bread?", [PASSAGE], 0.6, in_corpus, POLICY)
    assert "pathway" not in asked  # words the passages hold are not looked up
    assert evidence("How should pathway plans bake bread?", [PASSAGE], 0.6, in_corpus, POLICY)


def test_a_year_next_to_the_one_asked_is_not_an_answer() -> None:
    quoted = ["In 2022, 17% of social workers left their jobs.", "Workforce 2023 Leeds report"]
    assert not answered("What was the turnover rate in 2023?", 0.9, quoted[:1], POLICY)
    assert answered("What was the turnover rate in 2022?", 0.9, quoted[:1], POLICY)
    assert answered("What was the turnover rate in 2023?", 0.9, quoted, POLICY)  # the heading names the year
    # Below the scorer's threshold the best unit is too far from the question.
    floor = load_scorer().min_closeness
    assert not answered("What was the turnover rate in 2022?", floor - 0.01, quoted, POLICY)


def test_a_numbered_wave_or_phase_needs_that_pair_in_the_evidence() -> None:
    sections = ("2.2 Keep supporting deregulation. The councils of wave 1 were Leeds and Hertfordshire.", "Report")
    assert evidence("Which councils took part in wave 1?", [sections], 0.6, lambda t: True, POLICY)
    # The "2" of a section number is no evidence for "wave 2".
    assert not evidence("Which councils took part in wave 2?", [sections], 0.6, lambda t: True, POLICY)
    for text in ("Waves 1 and 2 both reported.", "The second wave began in 2023.", "Wave two areas reported.",
                 "The 2nd innovation wave reported."):
        assert evidence("What did wave 2 find?", [(text, "Report")], 0.6, lambda t: True, POLICY), text
    assert evidence("What did phase 9 find?", [("Councils sent returns.", "Safeguarding pressures phase 9")], 0.6,
                    lambda t: True, POLICY)  # the label (title or file name) may name it
    assert not evidence("What did wave 3 find?", [("Waves 1 and 2 both reported; wave 12 did not.", "Report")], 0.6,
                        lambda t: True, POLICY)
    assert answered("What did wave 2 find?", 0.9, ["The second wave found fewer children in care."], POLICY)
    assert not answered("What did wave 2 find?", 0.9, ["Wave 1 found fewer children in care.", "2.2 Findings"], POLICY)


def test_an_acronym_is_evidenced_by_its_name_spelled_out() -> None:
    nao = ("The National Audit Office counted 42 projects with better services.", "Report")
    assert evidence("What did the NAO count?", [nao], 0.6, lambda t: True, POLICY)
    adcs = ("The Association of Directors of Children\u2019s Services asked councils.", "Report")
    assert evidence("Who did ADCS ask?", [adcs], 0.6, lambda t: True, POLICY)
    # Words that merely start with the same letters are no name for it.
    assert not evidence("What did the NAO count?", [("It is not always obvious what was counted.", "Report")], 0.6,
                        lambda t: True, POLICY)
    assert not evidence("What did the IFS count?", [nao], 0.6, lambda t: True, POLICY)


def test_thresholds_travel_with_the_model() -> None:
    recorded = recorded_thresholds("all-MiniLM-L6-v2")
    assert AbstainPolicy.from_dict(recorded) == AbstainPolicy()
    custom = {**recorded, "min_dense": 0.55}
    assert policy_for("some/other-model", custom).min_dense == 0.55
    assert policy_for("all-MiniLM-L6-v2", {}) == AbstainPolicy()  # an older index of the bundled model
    with pytest.raises(IndexMismatchError, match="rebuild"):
        policy_for("some/other-model", {})


@pytest.mark.parametrize("question", [
    "and the second stage?", "what about for teenagers?", "would that cover a family that's just poor?",
    "how many of them were living outside the county?", "Did it work?", "What did they find?", "In Leeds?",
    "how many of those did all four councils collect", "Which of these was cheapest?",
])
def test_follow_ups_lean_on_the_previous_question(question: str) -> None:
    assert leans_on_previous(question)


@pytest.mark.parametrize("question", [
    "How do I reset my router password?", "What is Family Safeguarding?",
    "How many social workers left their jobs in 2019?", "Is there a waiting list?",
    "What did the council do with its budget?", "How did caseloads change for social workers in Leeds?",
    "When social workers search a child's file for the latest plan by hand, how long does it take them?",
    "Once an adoption panel has decided, when should the parents get it in writing?",
])
def test_self_contained_questions_stand_alone(question: str) -> None:
    assert not leans_on_previous(question)


def test_contextualise_merges_only_onto_an_answered_turn() -> None:
    assert contextualise("what about teenagers?", ["How were foster carers supported?"]) == (
        "How were foster carers supported? what about teenagers?", True)
    assert contextualise("what about teenagers?", [Turn("How were foster carers supported?", found=False)]) == (
        "what about teenagers?", False)
    assert contextualise("How do I reset my router password?", ["What do the teams in Leeds do?"]) == (
        "How do I reset my router password?", False)
    assert contextualise("  a question  ", []) == ("a question", False)
    assert contextualise("And their budgets?", ["   "]) == ("And their budgets?", False)


def test_weighing_evidence_gives_the_share_of_names_found_together() -> None:
    split = [("Leeds was inspected.", "Report"), ("The 2018 visit found gaps.", "Report")]
    weighed = weigh_evidence("What happened in Leeds in 2018?", split, 0.6, lambda t: True, POLICY)
    assert weighed.together == 0.5 and not weighed.ok  # each passage holds one of the two
    both = weigh_evidence("What happened in Leeds in 2018?", [PASSAGE], 0.6, lambda t: True, POLICY)
    assert both.together == 1.0 and both.ok and both.absent == 0.0
    unknown = weigh_evidence("How should pathway plans bake sourdough bread?", [PASSAGE], 0.6,
                             lambda t: t not in ("bake", "sourdough", "bread"), POLICY)
    assert unknown.absent == pytest.approx(3 / 5)


def test_the_answer_model_declines_a_top_unit_without_the_asked_year() -> None:
    weighed = Evidence(dense=0.7, together=1.0, absent=0.0, ok=True)
    row = [0.0] * len(FEATURES)
    row[FEATURES.index("keys")] = 1.0
    stated, p_stated = answers(weighed, 0.6, 0.7, True, True, row)
    missing, p_missing = answers(weighed, 0.6, 0.7, False, False, row)
    assert stated and not missing and p_missing < p_stated
    far, p_far = answers(Evidence(dense=0.2, together=0.0, absent=0.8, ok=False), 0.05, 0.2, True, True, row)
    assert not far and p_far < 0.1


def test_a_span_of_years_is_stated_in_either_form() -> None:
    assert states_numbers("How many plans started in 2023-24?", ["In the year 2023 to 2024, 62,000 plans started."])
    assert states_numbers("How many plans started in 2023-24?", ["In 2023-24, 62,000 plans started."])
    assert not states_numbers("How many plans started in 2023-24?", ["In 2022 to 2023, 60,000 plans started."])
