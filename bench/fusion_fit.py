"""Would a fitted fusion rank pages better than the weighted one? Prints grouped cross-validated figures.

For every answerable development question over the shared corpus, the search's
candidate chunks (dense and lexical, as ``qa.retriever`` gathers them) are
described by their dense cosine, BM25 score (scaled by the best of the query),
ranks in each list, whether the lexical search found them, how many of the
question's words and names the document title, file name and section hold,
and the page's place in its document. Each candidate is labelled by whether its
page is a gold page. A logistic regression (scikit-learn) is fitted on five
folds grouped by question; recall@5 and MRR@10 of the pages it ranks first are
printed beside those of the shipped fusion on the same candidates, and the same
for ``../shared/eval`` (never fitted on) with the model fitted on every
development question.

    python bench/fusion_fit.py --index INDEX [--eval ../shared/eval/questions.jsonl]

INDEX is an index of the shared corpus and seeds (see README: the validation set).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.chunking import file_words  # noqa: E402
from qa.engine import Engine  # noqa: E402
from qa.evaluate import _same_doc, load_questions  # noqa: E402
from qa.retrieve import FusionSettings, fuse  # noqa: E402
from qa.text import content_stems, key_terms, search_terms, stem, stems  # noqa: E402

DEV = ("shared_questions", "shared_users", "shared_paraphrase")
NAMES = ("dense", "lexical", "dense_rank", "lexical_rank", "lexical_found", "title_words", "section_words",
         "title_names", "page_place")
SETS = {"dense + lexical": ("dense", "lexical"),
        "+ ranks": ("dense", "lexical", "dense_rank", "lexical_rank", "lexical_found"),
        "+ title": ("dense", "lexical", "title_words", "title_names"),
        "+ title + section": ("dense", "lexical", "title_words", "section_words", "title_names"),
        "all": NAMES}
POOL = 60


def candidates(engine: Engine, paths: Sequence[Path]) -> list[tuple[str, str, int, int, list[float], float]]:
    """(question, doc, page, label, features, shipped fusion score) per candidate chunk."""
    store = engine.store
    out = []
    for path in paths:
        for q in load_questions(path):
            if not q.gold:
                continue
            vec = engine.embedder.embed([q.question])[0]
            dense = dict(store.search_dense(vec, POOL, None))
            lexical = dict(store.search_terms(search_terms(q.question), POOL, None))
            missing = [c for c in lexical if c not in dense]
            if missing:
                dense.update(zip(missing, (float(s) for s in store.vectors_for(missing) @ vec), strict=True))
            ranked = fuse(dense, lexical, FusionSettings())
            chunks = store.chunks([c.chunk_id for c in ranked])
            words = content_stems(q.question)
            names = {stem(k) for k in key_terms(q.question)}
            top = max(lexical.values(), default=0.0) or 1.0
            dense_rank = {c: r for r, c in enumerate(sorted(dense, key=lambda c: -dense[c]))}
            lexical_rank = {c: r for r, c in enumerate(sorted(lexical, key=lambda c: -lexical[c]))}
            for cand in ranked:
                chunk = chunks[cand.chunk_id]
                doc = store.documents[chunk.doc_id]
                title = f"{doc.title} {file_words(chunk.doc_id)}"
                label = any(_same_doc(chunk.doc_id, g.doc) and (not g.pages or chunk.page in g.pages) for g in q.gold)
                features = [cand.dense, cand.lexical / top, math.log1p(dense_rank.get(cand.chunk_id, POOL)),
                            math.log1p(lexical_rank.get(cand.chunk_id, POOL)), float(cand.chunk_id in lexical),
                            len(words & content_stems(title)) / len(words) if words else 0.0,
                            len(words & content_stems(chunk.section)) / len(words) if words else 0.0,
                            len(names & stems(title)) / len(names) if names else 0.0,
                            chunk.page / max(1, doc.n_pages or 1)]
                out.append((f"{path.stem}/{q.id}", chunk.doc_id, chunk.page, int(label), features, cand.score))
    return out


def figures(rows: Sequence[tuple], score: np.ndarray) -> tuple[float, float]:
    """Recall@5 and MRR@10 of the distinct pages, ranked by ``score``."""
    by_question: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        by_question[row[0]].append(i)
    recall, mrr = [], []
    for ids in by_question.values():
        pages: list[tuple[str, int]] = []
        hit = None
        for i in sorted(ids, key=lambda i: -score[i]):
            page = (rows[i][1], rows[i][2])
            if page in pages:
                continue
            pages.append(page)
            if rows[i][3] and hit is None:
                hit = len(pages)
            if len(pages) >= 10:
                break
        recall.append(hit is not None and hit <= 5)
        mrr.append(1 / hit if hit else 0.0)
    return float(np.mean(recall)), float(np.mean(mrr))


def main() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold
    from sklearn.preprocessing import StandardScaler

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", required=True, help="index of the shared corpus and seeds")
    parser.add_argument("--eval", default=str(ROOT.parent / "shared" / "eval" / "questions.jsonl"))
    args = parser.parse_args()
    engine = Engine(args.index)
    dev = candidates(engine, [ROOT / "tests" / "data" / f"{name}.jsonl" for name in DEV])
    val = candidates(engine, [Path(args.eval)]) if Path(args.eval).is_file() else []
    x = np.array([r[4] for r in dev])
    y = np.array([r[3] for r in dev])
    groups = np.array([r[0] for r in dev])
    xv = np.array([r[4] for r in val]) if val else np.zeros((0, len(NAMES)))

    def fit(train_x: np.ndarray, train_y: np.ndarray) -> tuple[StandardScaler, LogisticRegression]:
        scaler = StandardScaler().fit(train_x)
        return scaler, LogisticRegression(C=1.0, max_iter=3000).fit(scaler.transform(train_x), train_y)

    line = "{:<20} dev (5 folds) R@5 {:.3f} MRR {:.3f}   validation R@5 {:.3f} MRR {:.3f}"
    shipped_val = figures(val, np.array([r[5] for r in val])) if val else (0.0, 0.0)
    print(line.format("shipped fusion", *figures(dev, np.array([r[5] for r in dev])), *shipped_val))
    for name, cols in SETS.items():
        idx = [NAMES.index(c) for c in cols]
        held = np.zeros(len(y))
        for train, test in GroupKFold(n_splits=5).split(x, y, groups):
            scaler, model = fit(x[train][:, idx], y[train])
            held[test] = model.decision_function(scaler.transform(x[test][:, idx]))
        scaler, model = fit(x[:, idx], y)
        val_fig = figures(val, model.decision_function(scaler.transform(xv[:, idx]))) if val else (0.0, 0.0)
        print(line.format(name, *figures(dev, held), *val_fig))


if __name__ == "__main__":
    main()
