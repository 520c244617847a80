"""The fitted answer scorer: reproducible from the shipped table, read safely, recorded in the manifest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qa.answer import Candidate
from qa.errors import QAError
from qa.features import ANSWER_FEATURES, FEATURES, SCORER_FORMAT, Scorer, features, leans, load_scorer, scorer_sha256
from qa.profiles import load_profile, parse_profile, profile_sha256
from qa.store import FORMAT_VERSION, Manifest, mismatch
from qa.train import DATA, SCORER, TABLE, feature_table, read_table, train


@pytest.mark.timeout(600)  # a few dozen small fits: a minute or two on a busy machine
def test_the_shipped_scorer_is_what_the_shipped_table_fits_byte_for_byte() -> None:
    lines: list[str] = []
    text = train(DATA / TABLE, out=None, say=lines.append)
    assert text == SCORER.read_text(encoding="utf-8")
    assert any(line.startswith("rules (hand-set)") for line in lines)  # the rules' figure is printed beside the fit


def test_the_shipped_scorer_beats_the_rules_it_replaced_when_cross_validated() -> None:
    data = json.loads(SCORER.read_text(encoding="utf-8"))
    cv = data["cross_validated"]
    assert cv["fitted"]["top"] > cv["rules"]["top"]
    assert data["format"] == SCORER_FORMAT and tuple(data["features"]) == FEATURES


def test_the_table_holds_every_feature_and_labels_from_both_corpora() -> None:
    t = read_table(DATA / TABLE)
    assert t.x.shape == (len(t.y), len(FEATURES))
    sets = {q.split("/")[0] for q in t.question}
    assert {"sample_questions", "shared_paraphrase"} <= sets
    assert 0 < t.y.sum() < len(t.y)


def test_a_table_for_other_features_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "units.csv"
    path.write_text("set,qid,label\nx,1,0\n", encoding="utf-8")
    with pytest.raises(QAError, match="qa train --extract"):
        read_table(path)


def test_a_scorer_for_other_features_is_refused_with_the_fix() -> None:
    data = json.loads(SCORER.read_text(encoding="utf-8"))
    data["features"] = data["features"][:-1]
    with pytest.raises(QAError, match="qa train"):
        Scorer.from_json(json.dumps(data), "scorer.json")
    with pytest.raises(QAError, match="format"):
        Scorer.from_json(json.dumps({**data, "format": SCORER_FORMAT + 1}), "scorer.json")


def test_probability_is_a_logistic_of_the_weighted_features() -> None:
    scorer = load_scorer()
    row = np.zeros((1, len(FEATURES)))
    row[0, FEATURES.index("near")] = 0.7
    z = 0.7 * scorer.weights[FEATURES.index("near")] + scorer.intercept
    assert scorer.probability(row)[0] == pytest.approx(1 / (1 + np.exp(-z)))


def test_feature_table_labels_a_unit_by_its_questions_answer_phrase() -> None:
    unit = {"text": "", "passages": [1], "kind": "sentence", "lead": "", "group": -1, "heading": "", "title": "T",
            "score": 0.5, "dense": 0.5, "numbers": True}
    record = {"set": "s", "qid": "q1", "query": "how much did it cost?", "phrases": ["£2 million"],
              "answer_phrases": True, "answerable": True, "evidence": True, "dense": 0.6, "together": 1.0, "absent": 0.0,
              "model": "m",
              "units": [{**unit, "text": "It cost \u00a32  million in all.", "own": 0.5, "near": 0.6},
                        {**unit, "text": "Costs were reported in the annex.", "own": 0.6, "near": 0.6}]}
    rows = feature_table([record]).splitlines()
    assert rows[0].split(",")[-len(FEATURES):] == list(FEATURES)
    label = rows[0].split(",").index("label")
    assert [r.split(",")[label] for r in rows[1:]] == ["1", "0"]  # the phrase is matched folded (spaces, case)
    old = {k: v for k, v in record.items() if k != "together"}  # asked before the evidence was recorded
    with pytest.raises(QAError, match="qa train --extract"):
        feature_table([old])


def test_money_questions_see_an_amount_as_supplied() -> None:
    cands = [Candidate("It invested \u00a3110 million in 57 projects.", (1,)),
             Candidate("It invested in many projects across England.", (1,))]
    table = features("how much money did the first round invest?", cands, np.array([0.5, 0.5]), np.array([0.5, 0.5]),
                     [c.text for c in cands])
    col = FEATURES.index("money+")
    assert table[0, col] == 1 and table[1, col] == 0
    assert table[1, FEATURES.index("money-")] == 1  # no figure at all: plainly not an amount


def test_a_unit_leaning_on_the_sentence_before_is_marked() -> None:
    cands = [Candidate("It projected savings of \u00a32.6 million.", (1,)),
             Candidate("Hertfordshire projected savings of \u00a32.6 million.", (1,))]
    table = features("what savings were projected?", cands, np.array([0.5, 0.5]), np.array([0.5, 0.5]),
                     [c.text for c in cands])
    col = FEATURES.index("leans")
    assert list(table[:, col]) == [1.0, 0.0]
    assert leans("The first is supervision by clinicians.") and leans("The second was slower.")
    assert not leans("The first round funded 53 projects.")  # an ordinal naming its own thing stands alone


def test_the_manifest_records_the_scorer_and_a_change_asks_for_a_rebuild() -> None:
    base = Manifest(format_version=FORMAT_VERSION, model="m", model_hash="h", dimension=4, chunking={}, built_at="",
                    corpus_dir="", scorer=scorer_sha256(), profile=profile_sha256())
    assert mismatch(base, model="m", model_hash="h", dimension=4, chunking={}) is None
    old = Manifest(**{**base.__dict__, "scorer": "0" * 64})
    assert "answer scorer" in (mismatch(old, model="m", model_hash="h", dimension=4, chunking={}) or "")
    unrecorded = Manifest.from_json(json.dumps({k: v for k, v in base.__dict__.items() if k != "scorer"}), "m")
    assert unrecorded.scorer == ""  # an index built before the scorer was recorded still loads and updates
    assert mismatch(unrecorded, model="m", model_hash="h", dimension=4, chunking={}) is None


def test_profiles_hold_the_corpus_words_and_the_default_holds_none() -> None:
    domain = load_profile("childrens-social-care")
    general = load_profile("default")
    assert domain.plain_words["kids"] == "children" and not general.plain_words
    assert "Inadequate" in domain.grades and not general.grades
    assert domain.boilerplate.search("This is a sample briefing written for the project")
    assert not general.boilerplate.search("This is a sample briefing written for the project")
    assert general.boilerplate.search("All rights reserved.")


def test_a_malformed_profile_names_the_file_and_the_fix() -> None:
    with pytest.raises(QAError, match="mine.json.*default.json"):
        parse_profile('{"format": 1, "plain_words": []}', "mine.json")


def test_the_answer_model_answers_nine_in_ten_answerable_questions_when_cross_validated() -> None:
    data = json.loads(SCORER.read_text(encoding="utf-8"))
    found, flagged = data["cross_validated"]["abstention"]["fitted"]
    assert found >= 0.90 and 0 < flagged <= 1
    model = data["answer_model"]
    assert tuple(model["features"]) == ANSWER_FEATURES and 0 < model["threshold"] < 1
    assert load_scorer().answer_threshold == model["threshold"]


def test_a_series_part_is_a_name_the_unit_may_hold_in_words() -> None:
    cands = [Candidate("Of the 57 projects in the first wave, 45 reported outcomes.", (1,)),
             Candidate("Of the 57 projects, 45 reported outcomes in 1 year.", (1,))]
    table = features("How many of the wave 1 projects had results?", cands, np.array([0.5, 0.5]),
                     np.array([0.5, 0.5]), [c.text for c in cands])
    col = FEATURES.index("keys")
    assert list(table[:, col]) == [1.0, 0.0]  # "first wave" names wave 1; a bare "1" does not


def test_the_scorer_names_the_model_it_was_fitted_on() -> None:
    assert load_scorer().models == ("all-MiniLM-L6-v2",)  # the table's cosines are the bundled model's
    assert read_table(DATA / TABLE).models == load_scorer().models
