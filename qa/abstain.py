"""When to say "the documents do not cover this": one policy, its thresholds kept with the model.

The cosine a question reaches depends on the embedding model, so the thresholds
are recorded in the index manifest when an index is built, beside the model's
name and hash. An index built before they were recorded gets the bundled
defaults if it was built with the bundled model; with another model it is
refused with the fix (rebuild), instead of abstaining by another model's scale.

The policy is asked twice per question:

* ``evidence`` (after retrieval): is the best passage close enough, are the
  question's names, years and numbers together in one of the first passages,
  and are its content words known to the corpus at all?
* ``answered`` (after the answer sentences are chosen): does the best sentence
  score enough, and do the question's numbers and years stand in the quoted
  sentences (or their passage's heading and title)? A question about 2023 is
  not answered by a sentence about 2022 in a passage that mentions 2023 elsewhere.

A numbered part of a series ("wave 2", "phase 9") is checked as that pair,
not as a bare number: the "2" of a section "2.2" is no evidence for wave 2.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from .errors import IndexMismatchError
from .features import ANSWER_FEATURES, FEATURES, load_scorer, supplied
from .text import acronyms, key_terms, names_series, query_terms, series, stem, stems

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AbstainPolicy:
    """Thresholds of the "not covered" decision (chosen on the development questions).

    * ``min_dense``: the best passage's cosine must reach this.
    * ``min_sentence``: kept for indexes that record it; the answer's own threshold is now the fitted
      scorer's ``min_closeness`` (see ``answered``).
    * ``key_passages``: the question's names and numbers must all appear together in one of the
      first this-many passages (text, section, document title or file name).
    * ``absent_share`` / ``absent_terms``: a question whose content words are mostly missing from
      the whole corpus (at least this share and this many) is about something else.
    * ``numbers_quoted``: 1 to require the question's numbers and years in the quoted evidence.
    """

    min_dense: float = 0.30
    min_sentence: float = 0.45
    key_passages: int = 5
    absent_share: float = 1 / 3
    absent_terms: int = 2
    numbers_quoted: int = 1

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, float]) -> AbstainPolicy:
        """From a manifest's record; unknown keys are ignored, missing ones keep their default."""
        kinds = {f.name: f.type for f in fields(cls)}
        values: dict[str, Any] = {}  # each value converted to its field's type below
        for name, value in data.items():
            if name in kinds:
                values[name] = int(value) if kinds[name] in ("int", int) else float(value)
        return cls(**values)


# Thresholds calibrated per model; a model not listed gets the defaults recorded with a warning.
CALIBRATED: dict[str, AbstainPolicy] = {
    "all-MiniLM-L6-v2": AbstainPolicy(),
    "all-MiniLM-L6-v2-int8": AbstainPolicy(),
}


def recorded_thresholds(model: str) -> dict[str, float]:
    """What an ingest writes into the manifest for ``model``."""
    policy = CALIBRATED.get(model)
    if policy is None:
        log.warning("no abstention thresholds calibrated for model %r: recording the defaults of %r; "
                    "'not covered' decisions may be off", model, "all-MiniLM-L6-v2")
        policy = AbstainPolicy()
    return policy.as_dict()


def policy_for(model: str, recorded: Mapping[str, float], where: str = "the index") -> AbstainPolicy:
    """The policy of an index: its recorded thresholds, else the bundled ones for a bundled model."""
    if recorded:
        return AbstainPolicy.from_dict(recorded)
    if model in CALIBRATED:
        return CALIBRATED[model]
    raise IndexMismatchError(
        f"{where} was built with model {model!r} before abstention thresholds were recorded with the model; "
        f"rebuild it with `qa ingest --rebuild --model {model}`"
    )


def numbers(question: str) -> list[str]:
    """The numbers and years of a question ("2019", "3"), less those that number a series ("wave 2": see ``series``)."""
    paired = {str(n) for _, n in series(question)}
    return [k for k in key_terms(question) if any(ch.isdigit() for ch in k) and k not in paired]


@dataclass(frozen=True)
class Evidence:
    """What retrieval alone says about a question, before any unit is chosen (inputs of the answer model).

    * ``dense``: the best passage's cosine with the question.
    * ``together``: the largest share of the question's names, numbers and series parts ("wave 2") that one
      of the first ``key_passages`` passages holds (text, section, title or file name); 1 when it names none.
    * ``absent``: the share of its content words found neither in the passages nor anywhere in the corpus.
    * ``ok``: the hand-set test (``evidence``): close enough, all names together, not mostly absent.
    """

    dense: float
    together: float
    absent: float
    ok: bool


def weigh_evidence(
    question: str,
    passages: Sequence[tuple[str, str]],
    best_dense: float,
    in_corpus: Callable[[str], bool],
    policy: AbstainPolicy,
) -> Evidence:
    """How well passages (each: its text, and its section, title and file name) may answer the question.

    ``in_corpus(term)`` says whether a word occurs anywhere in the index; it is
    only asked about words the passages lack.
    """
    if not passages:
        return Evidence(float(best_dense), 0.0, 1.0, False)
    named = series(question)  # "wave 2" is not evidenced by a "2" elsewhere in a passage, but is by "second wave"
    paired = {str(n) for _, n in named}
    keys = [stem(k) for k in key_terms(question) if k not in paired]
    spelled_out = {k: v for k, v in acronyms(question).items() if stem(k) in keys}  # "NAO": "National Audit Office"
    seen: set[str] = set()
    wanted = len(keys) + len(named)
    together = 0.0 if wanted else 1.0
    for i, (text, label) in enumerate(passages):
        found = stems(text) | stems(label)
        found |= {stem(k) for k, spelled in spelled_out.items() if spelled.search(text) or spelled.search(label)}
        seen |= found
        if i < policy.key_passages and wanted:
            held = sum(k in found for k in keys) + sum(names_series(f"{text} {label}", w, n) for w, n in named)
            together = max(together, held / wanted)
    terms = query_terms(question)
    absent = [t for t in terms if stem(t) not in seen and not in_corpus(t)]
    share = len(absent) / len(terms) if terms else 0.0
    ok = best_dense >= policy.min_dense and together >= 1.0 and not (
        terms and len(absent) >= policy.absent_terms and share >= policy.absent_share)
    return Evidence(float(best_dense), together, share, ok)


def evidence(
    question: str,
    passages: Sequence[tuple[str, str]],
    best_dense: float,
    in_corpus: Callable[[str], bool],
    policy: AbstainPolicy,
) -> bool:
    """Whether passages may answer the question by the hand-set test (see ``weigh_evidence``)."""
    return weigh_evidence(question, passages, best_dense, in_corpus, policy).ok


def answered(question: str, best_score: float, quoted: Sequence[str], policy: AbstainPolicy) -> bool:
    """Whether the chosen sentences answer: likely enough to state it, and stating the question's numbers.

    ``best_score`` is the best own cosine among the answer units (``qa.answer.choose``); the
    threshold it must reach was chosen with the scorer (``qa train``) and ships in its file.
    ``quoted`` holds the answer sentences and the headings and titles of their passages.
    """
    if best_score < load_scorer().min_closeness:
        return False
    return not policy.numbers_quoted or states_numbers(question, quoted)


_YEAR_SPAN = re.compile(r"\b((?:19|20)\d\d)\s*[-/\u2013]\s*(\d\d)\b")


def states_numbers(question: str, quoted: Sequence[str]) -> bool:
    """Whether quoted texts hold all of the question's numbers and years, and each series part it names.

    A span of years may be written either way: the "24" of "2023-24" is also stated as "2024"
    ("2023 to 2024", "2023/2024").
    """
    have = set().union(*(stems(t) for t in quoted)) if quoted else set()
    ends = {m.group(2): m.group(1)[:2] + m.group(2) for m in _YEAR_SPAN.finditer(question)}
    if any(stem(n) not in have and not (n in ends and ends[n] in have) for n in numbers(question)):
        return False
    return all(names_series(" ".join(quoted), w, n) for w, n in series(question))


def answer_row(weighed: Evidence, probability: float, best_own: float, numbers_stated: bool, block_numbers: bool,
               top_features: Sequence[float]) -> list[float]:
    """A question's row of ``ANSWER_FEATURES`` (see ``qa train``, which builds the same row).

    ``numbers_stated``: the most likely unit states the question's numbers (with its passage's labels);
    ``block_numbers``: some quoted unit does.
    """
    keys = top_features[FEATURES.index("keys")] if top_features else 0.0
    values = {"dense": weighed.dense, "together": weighed.together, "absent": weighed.absent,
              "evidence": float(weighed.ok), "probability": probability, "best_own": best_own,
              "numbers": float(numbers_stated), "block_numbers": float(block_numbers), "keys": keys,
              "supplies": supplied(top_features) if top_features else 0.0}
    return [float(values[n]) for n in ANSWER_FEATURES]


def answers(weighed: Evidence, probability: float, best_own: float, numbers_stated: bool, block_numbers: bool,
            top_features: Sequence[float]) -> tuple[bool, float]:
    """Whether to answer, by the fitted answer model (``qa train``), and the model's probability."""
    scorer = load_scorer()
    p = scorer.answers(answer_row(weighed, probability, best_own, numbers_stated, block_numbers, top_features))
    return p >= scorer.answer_threshold, p
