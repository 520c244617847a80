"""`qa train`: fit the answer scorer on the development questions, reproducibly, in two steps.

1. ``qa train --extract`` asks every development question of ``tests/data/``
   through the real pipeline (the engine, its model and indexes of the sample
   and shared corpora) and writes each candidate unit's features, with its
   label, to a small table (``tests/data/answer_units.csv``). A unit is labelled
   1 when it contains (folded as ``qa eval`` folds) one of its question's answer
   phrases; a question without answer phrases lends its gold passage's
   ``contains`` phrase instead. The table also records, per unit, the score
   the hand-set rules gave it and whether they quoted it, for comparison.
2. ``qa train`` fits a logistic regression (scikit-learn) on that table with
   k-fold cross-validation grouped by question, chooses the regularisation, the
   quoting margin and the answer threshold on the held-out folds, prints the
   cross-validated answer@ beside the rules' on the same candidates, and writes
   ``qa/data/scorer.json`` (weights in the features' own units, rounded, keys
   sorted: the same table always gives the same bytes).

The validation questions (``../shared/eval``) are never read here.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .answer import AnswerSettings, embed_text, select
from .errors import QAError
from .features import ANSWER_FEATURES, FEATURES, SCORER_FILE, SCORER_FORMAT, features, list_question, supplied
from .settings import Settings

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger(__name__)

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
TABLE = "answer_units.csv"
SCORER = Path(__file__).resolve().parent / "data" / SCORER_FILE
# Development sets and the corpus each is asked of (the index given as --sample-index or --shared-index).
SETS = (("sample_questions", "sample"), ("paraphrase_questions", "sample"), ("sample_users", "sample"),
        ("shared_questions", "shared"), ("shared_paraphrase", "shared"), ("shared_users", "shared"),
        ("shared_conversations", "shared"))
FOLDS = 5
C_GRID = (0.03, 0.3, 3.0)
MARGIN_GRID = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # a unit within this share of the best's probability
_META = ("set", "qid", "model", "label", "phrases", "kind", "group", "whole_list", "answerable", "evidence", "dense",
         "together", "absent", "numbers", "rule_score", "rule_chosen")


# --- step 1: the feature table -----------------------------------------------------------------

def _num(value: float) -> str:
    """A value as the table writes it: four decimals, no trailing zeros ("0", "0.5", "-0.1234")."""
    text = f"{round(float(value), 4):.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _asked_turns(engine: Engine, path: Path) -> Iterator[tuple[str, Any, Any]]:
    """(id, question record, answer) for each question of a file, or each turn of a conversation file."""
    from .evaluate import ASK_K, is_conversation_file, load_conversations, load_questions

    if is_conversation_file(path):
        for conv in load_conversations(path):
            history: list[Any] = []
            for turn in conv.turns:
                answer = engine.ask(turn.question, top_k=ASK_K, history=tuple(history), with_answer=False)
                history.append(answer)
                yield turn.id, turn, answer
        return
    for q in load_questions(path):
        yield q.id, q, engine.ask(q.question, top_k=ASK_K, with_answer=False)


def ask_units(engines: dict[str, Engine], data: Path = DATA, only: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
    """Each development question asked through the engines: its candidate units with what the scorer sees.

    ``engines`` maps "sample" and "shared" to engines over those corpora (a set
    whose corpus is missing is skipped); ``only`` limits the sets asked. Each
    record is plain JSON: the question, its phrases, and per unit its text,
    kind, passages, closeness and whether it states the question's numbers.
    """
    from . import abstain

    for name, corpus in SETS:
        path = data / f"{name}.jsonl"
        if corpus not in engines or not path.is_file() or (only and name not in only):
            continue
        engine = engines[corpus]
        log.info("asking %s", name)
        for qid, q, answer in _asked_turns(engine, path):
            passages = answer.passages
            if not passages:
                continue
            query_vec = engine.embedder.embed([answer.query])[0]
            cands, own, near = engine.answer_units(answer.query, query_vec, passages)
            if not cands:
                continue
            by_rank = {p.rank: p for p in passages}
            units = []
            for i, c in enumerate(cands):
                quoted = [c.text] + [engine._label(by_rank[r]) for r in c.passages[:1] if r in by_rank]
                units.append({**asdict(c), "own": float(own[i]), "near": float(near[i]),
                              "numbers": abstain.states_numbers(answer.query, quoted)})
            weighed = abstain.weigh_evidence(answer.query, [(p.chunk.text, engine._label(p)) for p in passages],
                                             max(p.dense_score for p in passages), engine.in_corpus, engine.policy())
            yield {"set": name, "qid": qid, "query": answer.query, "model": engine.store.manifest.model,
                   "phrases": list(q.answers) or [g.contains for g in q.gold],
                   "answer_phrases": bool(q.answers), "answerable": q.answerable,
                   "evidence": answer.found,  # asked without an answer: the evidence test alone
                   "dense": weighed.dense, "together": weighed.together, "absent": weighed.absent,
                   "units": units}


def _candidate_fields(unit: dict[str, Any], names: set[str]) -> dict[str, Any]:
    """A stored unit's fields that make a ``Candidate`` (its passage ranks as a tuple again)."""
    return {k: (tuple(v) if k == "passages" else v) for k, v in unit.items() if k in names}


def feature_table(records: Iterable[dict[str, Any]], rules: Callable[..., list[float]] | None = None) -> str:
    """The candidate feature table (CSV text) of asked questions (records of ``ask_units``).

    ``rules`` scores candidates as the old hand-set rules did (a baseline for
    the printout), when given.
    """
    from .answer import Candidate
    from .evaluate import fold

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*_META, *FEATURES])
    settings = AnswerSettings()
    names = {f.name for f in fields(Candidate)}
    for rec in records:
        if any(k not in rec for k in ("dense", "together", "absent", "model")):
            raise QAError(f"question {rec.get('set')}/{rec.get('qid')} was asked before its evidence was recorded; "
                          "ask the questions again with `qa train --extract`")
        query = rec["query"]
        cands = [Candidate(**_candidate_fields(u, names)) for u in rec["units"]]
        own = np.array([u["own"] for u in rec["units"]])
        near = np.array([u["near"] for u in rec["units"]])
        table = features(query, cands, near, own, [embed_text(c) for c in cands])
        whole = list_question(query)
        rule = rules(query, cands, near) if rules else [0.0] * len(cands)
        chosen = set(_rule_select(rule, [c.kind for c in cands], [c.group for c in cands], whole, settings)) \
            if rules else set()
        folded = [fold(p) for p in rec["phrases"]]
        for i, c in enumerate(cands):
            label = int(any(p in fold(c.text) for p in folded))
            writer.writerow([rec["set"], rec["qid"], rec["model"], label, "answer" if rec["answer_phrases"] else "gold", c.kind,
                             c.group, int(whole), int(rec["answerable"]), int(rec["evidence"]),
                             _num(rec["dense"]), _num(rec["together"]), _num(rec["absent"]),
                             int(rec["units"][i]["numbers"]), _num(rule[i]), int(i in chosen),
                             *(_num(v) for v in table[i])])
    return out.getvalue()


def _rule_select(scores: list[float], kinds: list[str], groups: list[int], whole: bool,
                 settings: AnswerSettings, margin: float = 0.10) -> list[int]:
    """What the hand-set rules quoted: units within 0.10 of the best score (an additive margin)."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    first = scores[order[0]]
    if kinds[order[0]] == "item":
        items = [i for i in range(len(scores)) if kinds[i] == "item" and groups[i] == groups[order[0]]]
        return (items if whole else [i for i in items if scores[i] >= first - margin])[: settings.max_items]
    return [i for i in order if scores[i] >= first - margin and kinds[i] != "item"][: settings.max_sentences]


# --- step 2: the fit ---------------------------------------------------------------------------

@dataclass
class Table:
    """The feature table, read back: one row per candidate unit, grouped by question."""

    x: np.ndarray
    y: np.ndarray
    question: np.ndarray  # "set/qid" of each row
    kind: list[str]
    group: list[int]
    whole_list: np.ndarray
    answerable: np.ndarray
    evidence: np.ndarray
    dense: np.ndarray
    together: np.ndarray
    absent: np.ndarray
    numbers: np.ndarray
    rule_score: np.ndarray
    rule_chosen: np.ndarray
    phrases: list[str]
    models: tuple[str, ...] = ()  # the embedding models whose cosines the table holds


def read_table(path: Path) -> Table:
    """Read the feature table; a table written for other features is refused with the fix."""
    try:
        rows = list(csv.reader(path.read_text(encoding="utf-8").splitlines()))
    except OSError as exc:
        raise QAError(f"cannot read the feature table {path}: {exc.strerror or exc}; "
                      "write it with `qa train --extract`") from exc
    if not rows or tuple(rows[0]) != (*_META, *FEATURES):
        raise QAError(f"{path} was written for other features than this version computes; "
                      "write it again with `qa train --extract`")
    body = rows[1:]
    col = {n: i for i, n in enumerate(rows[0])}

    def num(name: str) -> np.ndarray:
        return np.array([float(r[col[name]]) for r in body])

    return Table(
        x=np.array([[float(v) for v in r[len(_META):]] for r in body], dtype=np.float64).reshape(len(body), len(FEATURES)),
        y=num("label").astype(int), question=np.array([f"{r[0]}/{r[1]}" for r in body]),
        kind=[r[col["kind"]] for r in body], group=[int(r[col["group"]]) for r in body],
        whole_list=num("whole_list").astype(bool), answerable=num("answerable").astype(bool),
        evidence=num("evidence").astype(bool), dense=num("dense"), together=num("together"), absent=num("absent"),
        numbers=num("numbers").astype(bool),
        rule_score=num("rule_score"), rule_chosen=num("rule_chosen").astype(bool),
        phrases=[r[col["phrases"]] for r in body], models=tuple(sorted({r[col["model"]] for r in body})),
    )


def _questions(t: Table, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Row indices of each question among ``rows``, in table order (all rows' grouping is computed once)."""
    key = rows.tobytes()
    cache = t.__dict__.setdefault("_grouped", {})
    if key in cache:
        return cache[key]
    out: dict[str, list[int]] = {}
    for i in rows:
        out.setdefault(str(t.question[i]), []).append(int(i))
    cache[key] = {k: np.array(v) for k, v in out.items()}
    return cache[key]


def _block(t: Table, rows: np.ndarray, probs: np.ndarray, margin: float) -> list[int]:
    """The rows a question's answer would quote, by ``qa.answer.select``."""
    picked = select([float(p) for p in probs], [t.kind[i] for i in rows], [t.group[i] for i in rows],
                    bool(t.whole_list[rows[0]]), AnswerSettings(), margin)
    return [int(rows[j]) for j in picked]


@dataclass(frozen=True)
class Figures:
    """Answer figures of one way of choosing, over the answerable questions with phrases."""

    top: float  # the first quoted unit states the answer
    block: float  # some quoted unit states it
    quoted: float  # units quoted per question, on average
    reachable: float  # some candidate states it (the ceiling of any choice)

    def line(self, name: str) -> str:
        return f"{name:<28} top unit {self.top:.3f}   quoted block {self.block:.3f}   units quoted {self.quoted:.2f}"


def _figures(t: Table, scores: np.ndarray, blocks: dict[str, list[int]]) -> Figures:
    qs = _questions(t, np.flatnonzero(t.answerable))
    top = [t.y[rows[int(np.argmax(scores[rows]))]] for rows in qs.values()]
    block = [any(t.y[i] for i in blocks[q]) for q in qs]
    return Figures(float(np.mean(top)), float(np.mean(block)), float(np.mean([len(blocks[q]) for q in qs])),
                   float(np.mean([t.y[rows].any() for rows in qs.values()])))


def _fit(x: np.ndarray, y: np.ndarray, question: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    """Weights and intercept on the raw features: logistic regression on standardised features.

    Each unit is labelled by whether it states its question's answer; the fit is
    done on standardised columns (so ``C`` regularises every feature alike) and
    the weights are mapped back to the raw features, so question time needs only
    a dot product. ``question`` is unused by the fit itself: the folds that call
    it are grouped by question. A pairwise ranking fit was tried and quoted
    shorter blocks that stated the answer less often in cross-validation.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    del question
    scaler = StandardScaler().fit(x)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    model = LogisticRegression(C=c, max_iter=5000).fit((x - scaler.mean_) / scale, y)
    weights = model.coef_[0] / scale
    return weights, float(model.intercept_[0]) - float(weights @ scaler.mean_)


def _cv_probs(t: Table, c: float) -> np.ndarray:
    """Held-out probabilities of every row (folds grouped by question; unanswerable questions never fitted)."""
    from sklearn.model_selection import GroupKFold

    probs = np.zeros(len(t.y))
    for train, test in GroupKFold(n_splits=FOLDS).split(t.x, t.y, t.question):
        train = train[t.answerable[train]]
        w, b = _fit(t.x[train], t.y[train], t.question[train], c)
        probs[test] = 1.0 / (1.0 + np.exp(-np.clip(t.x[test] @ w + b, -40, 40)))
    return probs


def _found(t: Table, scores: np.ndarray, threshold: float, closeness: np.ndarray) -> dict[str, bool]:
    """Whether each question would be answered: the evidence of its best unit (by ``scores``) holds, that
    unit states the question's numbers, and the best ``closeness`` of its units reaches the threshold."""
    out = {}
    for q, rows in _questions(t, np.arange(len(t.y))).items():
        best = rows[int(np.argmax(scores[rows]))]
        out[q] = bool(t.evidence[best] and closeness[rows].max() >= threshold and t.numbers[best])
    return out


def _abstention(t: Table, found: dict[str, bool]) -> tuple[float, float]:
    """(answerable found, unanswerable flagged) shares."""
    qs = _questions(t, np.arange(len(t.y)))
    yes = [found[q] for q, rows in qs.items() if t.answerable[rows[0]]]
    no = [not found[q] for q, rows in qs.items() if not t.answerable[rows[0]]]
    return float(np.mean(yes)) if yes else 1.0, float(np.mean(no)) if no else 1.0


def _answer_rows(t: Table, probs: np.ndarray, margin: float) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Each question's ``ANSWER_FEATURES`` row, read at its most likely unit (by ``probs``), and its label.

    The same row the engine builds at question time (``qa.abstain.answer_row``); the label is whether the
    question is answerable by its corpus.
    """
    col = {n: i for i, n in enumerate(FEATURES)}
    names, rows_out, labels = [], [], []
    for q, rows in _questions(t, np.arange(len(t.y))).items():
        top = int(rows[int(np.argmax(probs[rows]))])
        first = int(rows[0])
        values = {"dense": t.dense[first], "together": t.together[first], "absent": t.absent[first],
                  "evidence": float(t.evidence[first]), "probability": probs[top],
                  "best_own": float(t.x[rows, col["own"]].max()), "numbers": float(t.numbers[top]),
                  "block_numbers": float(any(t.numbers[i] for i in _block(t, rows, probs[rows], margin))),
                  "keys": t.x[top, col["keys"]], "supplies": supplied(t.x[top])}
        names.append(q)
        rows_out.append([float(values[n]) for n in ANSWER_FEATURES])
        labels.append(int(t.answerable[first]))
    return names, np.array(rows_out, dtype=np.float64), np.array(labels)


def _fold_of(t: Table) -> dict[str, int]:
    """The fold each question is held out in: the same grouped folds the unit scorer is cross-validated on."""
    from sklearn.model_selection import GroupKFold

    out: dict[str, int] = {}
    for k, (_, test) in enumerate(GroupKFold(n_splits=FOLDS).split(t.x, t.y, t.question)):
        out.update((str(q), k) for q in t.question[test])
    return out


def _fit_plain(x: np.ndarray, y: np.ndarray, c: float, balanced: bool = False) -> tuple[np.ndarray, float]:
    """Logistic regression on standardised columns, its weights mapped back to the raw ones."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    model = LogisticRegression(C=c, max_iter=5000, class_weight="balanced" if balanced else None)
    model.fit((x - scaler.mean_) / scale, y)
    weights = model.coef_[0] / scale
    return weights, float(model.intercept_[0]) - float(weights @ scaler.mean_)


def _shares(answered: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(answerable answered, unanswerable declined) shares."""
    yes, no = answered[y == 1], answered[y == 0]
    return float(yes.mean()) if len(yes) else 1.0, float(1 - no.mean()) if len(no) else 1.0


ANSWERED_SHARE = 0.90  # the answer model's threshold keeps at least this share of answerable questions answered


def _answer_threshold(p: np.ndarray, y: np.ndarray) -> float:
    """The threshold that declines the most unanswerable questions while still answering ``ANSWERED_SHARE`` of the
    answerable ones (ties: the higher); the lowest threshold when none reaches that share."""
    grid = [round(0.05 + 0.01 * i, 2) for i in range(91)]
    keeping = [th for th in grid if _shares(p >= th, y)[0] >= ANSWERED_SHARE]
    return max(keeping, key=lambda th: (_shares(p >= th, y)[1], th)) if keeping else grid[0]


def train(table: Path, out: Path | None = None, say: Callable[[str], None] = print) -> str:
    """Fit the scorer from the feature table, print the cross-validated figures; the scorer file's text."""
    t = read_table(table)
    answerable = np.flatnonzero(t.answerable)
    if not len(answerable) or not t.y[answerable].any():
        raise QAError(f"{table} holds no candidate that states an answer; nothing to fit")
    qs = _questions(t, np.arange(len(t.y)))
    say(f"{len(qs)} questions ({len(_questions(t, answerable))} answerable), {len(t.y)} candidate units, "
        f"{int(t.y.sum())} stating an answer; {FOLDS}-fold cross-validation grouped by question")
    rule_blocks = {q: [int(i) for i in rows if t.rule_chosen[i]] for q, rows in qs.items()}
    rules = _figures(t, t.rule_score, rule_blocks)
    # Regularisation: the best held-out top unit (ties: the stronger regularisation).
    results = []
    for c in C_GRID:
        probs = _cv_probs(t, c)
        tops = _figures(t, probs, {q: [int(rows[np.argmax(probs[rows])])] for q, rows in qs.items()}).top
        results.append((tops, -c, c, probs))
    _, _, c_best, probs = max(results, key=lambda r: (r[0], r[1]))
    # Margin: the most quoted units that still keep, on average, no more than the rules quote.
    margins = []
    for m in MARGIN_GRID:
        fig = _figures(t, probs, {q: _block(t, rows, probs[rows], m) for q, rows in qs.items()})
        margins.append((fig.quoted <= rules.quoted + 1e-9, fig.block, -m, m, fig))
    *_, margin, fitted = max(margins, key=lambda r: (r[0], r[1], r[2]))
    say(rules.line("rules (hand-set)"))
    say(fitted.line(f"fitted (C={c_best}, margin={margin})"))
    say(f"{'a candidate states it':<28} {rules.reachable:.3f} (the ceiling of any choice among these candidates)")
    # The answer threshold on the units' best own cosine: the best balance of answerable found and
    # unanswerable flagged (a probability threshold balanced them worse in cross-validation).
    own = t.x[:, FEATURES.index("own")]
    rule_found = _abstention(t, _found(t, t.rule_score, 0.45, t.rule_score))
    grid = [round(0.2 + 0.01 * i, 2) for i in range(41)]
    scored = [(round(sum(_abstention(t, _found(t, probs, th, own))), 6), -th, th) for th in grid]
    _, _, threshold = max(scored)
    fit_found = _abstention(t, _found(t, probs, threshold, own))
    say(f"{'abstention, rules':<28} answerable found {rule_found[0]:.3f}   unanswerable flagged {rule_found[1]:.3f}")
    say(f"{'abstention, gates':<28} answerable found {fit_found[0]:.3f}   unanswerable flagged {fit_found[1]:.3f}"
        f"   (min closeness {threshold})")
    # The answer model: one row per question, read at its held-out best unit; fitted on the same folds.
    names, ax, ay = _answer_rows(t, probs, margin)
    fold = _fold_of(t)
    folds = np.array([fold[q] for q in names])
    model_results = []
    for c in C_GRID:
        held = np.zeros(len(ay))
        for k in range(FOLDS):
            w, b = _fit_plain(ax[folds != k], ay[folds != k], c, balanced=True)
            held[folds == k] = 1.0 / (1.0 + np.exp(-np.clip(ax[folds == k] @ w + b, -40, 40)))
        th = _answer_threshold(held, ay)
        found_share, flagged_share = _shares(held >= th, ay)
        model_results.append((round(flagged_share, 6), round(found_share, 6), -c, c, th, held))
    *_, answer_c, answer_th, held = max(model_results, key=lambda r: (r[0], r[1], r[2]))
    model_found = _shares(held >= answer_th, ay)
    say(f"{'abstention, answer model':<28} answerable found {model_found[0]:.3f}   unanswerable flagged "
        f"{model_found[1]:.3f}   (C={answer_c}, threshold {answer_th})")
    answer_w, answer_b = _fit_plain(ax, ay, answer_c, balanced=True)
    weights, intercept = _fit(t.x[answerable], t.y[answerable], t.question[answerable], c_best)
    text = json.dumps({
        "format": SCORER_FORMAT, "features": list(FEATURES),
        "weights": {n: round(float(w), 4) for n, w in zip(FEATURES, weights, strict=True)},
        "intercept": round(intercept, 4), "margin": margin, "min_closeness": threshold, "C": c_best,
        "models": list(t.models),
        "cross_validated": {"folds": FOLDS, "questions": len(qs), "units": len(t.y),
                            "rules": {"top": round(rules.top, 4), "block": round(rules.block, 4)},
                            "fitted": {"top": round(fitted.top, 4), "block": round(fitted.block, 4)},
                            "abstention": {"rules": [round(v, 4) for v in rule_found],
                                           "gates": [round(v, 4) for v in fit_found],
                                           "fitted": [round(v, 4) for v in model_found]}},
        "answer_model": {"features": list(ANSWER_FEATURES), "C": answer_c, "threshold": answer_th,
                         "weights": {n: round(float(w), 4) for n, w in zip(ANSWER_FEATURES, answer_w, strict=True)},
                         "intercept": round(answer_b, 4)},
    }, indent=1, sort_keys=True) + "\n"
    if out is not None:
        from .files import atomic_write

        atomic_write(out, text.encode("utf-8"))
        say(f"wrote {out}")
    return text


# --- the command -------------------------------------------------------------------------------

def configure_parser(p: argparse.ArgumentParser) -> None:
    """Arguments of ``qa train``."""
    p.add_argument("--extract", action="store_true",
                   help="first ask every development question and write the feature table (needs the indexes)")
    p.add_argument("--sample-index", metavar="DIR", help="index of the sample corpus (for --extract)")
    p.add_argument("--shared-index", metavar="DIR", help="index of the shared corpus and seeds (for --extract)")
    p.add_argument("--only", action="append", metavar="SET", default=[],
                   help="with --extract, ask only this question set (repeat for several); the other sets' rows "
                        "are kept from the units file given with --units")
    p.add_argument("--units", metavar="FILE",
                   help="JSON Lines of the asked questions' units: written by --extract, read without it "
                        "to rebuild the feature table without the indexes")
    p.add_argument("--data", metavar="DIR", default=str(DATA), help="development questions and the table (tests/data/)")
    p.add_argument("--out", metavar="FILE", default=str(SCORER), help="scorer file to write (default: the package's)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """``qa train``: optionally ask the questions and write the table, then fit and write the scorer."""
    from .files import atomic_write

    data = Path(args.data)
    table = data / TABLE
    units = Path(args.units) if args.units else None
    records: list[dict[str, Any]] | None = None
    if args.extract:
        from .engine import Engine

        engines = {name: Engine(path, embedder=getattr(args, "embedder", None))
                   for name, path in (("sample", args.sample_index), ("shared", args.shared_index)) if path}
        if not engines:
            raise QAError("--extract needs --sample-index DIR and/or --shared-index DIR (indexes built with `qa ingest`)")
        kept = [r for r in _read_units(units) if r["set"] not in args.only] if args.only and units and units.is_file() else []
        records = kept + list(ask_units(engines, data, args.only))
        order = {name: i for i, (name, _) in enumerate(SETS)}
        records.sort(key=lambda r: order[r["set"]])  # stable: each set's questions in file order
        if units is not None:
            atomic_write(units, "".join(json.dumps(r, sort_keys=True) + "\n" for r in records).encode("utf-8"))
    elif units is not None:
        records = _read_units(units)
    if records is not None:
        records = relabel(records, data)
        text = feature_table(records, _rules_baseline())
        atomic_write(table, text.encode("utf-8"))
        print(f"wrote {table} ({text.count(chr(10)) - 1} candidate units)")
    train(table, Path(args.out))
    return 0


def relabel(records: list[dict[str, Any]], data: Path) -> list[dict[str, Any]]:
    """Records with their questions' phrases as the question files in ``data`` now give them.

    A units file caches what the pipeline returned; the labels always follow the
    development questions, so a corrected answer phrase needs no new extraction.
    A question no longer in its file is dropped.
    """
    from .evaluate import is_conversation_file, load_conversations, load_questions

    current: dict[tuple[str, str], Any] = {}
    for name, _ in SETS:
        path = data / f"{name}.jsonl"
        if not path.is_file():
            continue
        if is_conversation_file(path):
            current.update(((name, t.id), t) for conv in load_conversations(path) for t in conv.turns)
        else:
            current.update(((name, q.id), q) for q in load_questions(path))
    out = []
    for rec in records:
        q = current.get((rec["set"], rec["qid"]))
        if q is None:
            continue
        out.append({**rec, "phrases": list(q.answers) or [g.contains for g in q.gold], "answer_phrases": bool(q.answers),
                    "answerable": q.answerable})
    return out


def _read_units(path: Path | None) -> list[dict[str, Any]]:
    """The records of a units file written by ``--extract --units``."""
    if path is None:
        return []
    try:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError) as exc:
        raise QAError(f"cannot read the units file {path} ({exc}); write it with `qa train --extract --units FILE`") from exc


def _rules_baseline() -> Callable[..., list[float]] | None:
    """The old hand-set rules' scorer, from the checkout's bench/ (only for the comparison printed)."""
    import sys

    root = str(Path(__file__).resolve().parent.parent)
    if (Path(root) / "bench" / "rules_baseline.py").is_file() and root not in sys.path:
        sys.path.append(root)
    try:
        from bench.rules_baseline import rule_scores  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        log.warning("bench/rules_baseline.py not importable: the rules' figures are left out")
        return None
    return rule_scores  # type: ignore[no-any-return,unused-ignore]
