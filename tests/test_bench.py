"""The benchmark's plumbing: the large replica it times queries on, and the probes it runs in child processes.

Only the cheap paths; the measurements themselves are `make bench`'s.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench import bench, probes
from qa.engine import Engine
from qa.store import IndexStore

from conftest import FakeEmbedder
from corpora import build_index


def test_replica_is_an_index_the_engine_loads(tmp_path: Path) -> None:
    """Copies of every document up to the target size, in the store's current format, searchable."""
    _, index = build_index(tmp_path, n_docs=3)
    original = IndexStore(index)
    n, docs, pages = original.count("chunks"), sorted(original.documents), original.count("pages")
    base = original.all_vectors()
    units = len(original.all_unit_vectors())
    original.close()

    replica = bench.replicate(index, tmp_path / "replica", 3 * n - 1)
    store = IndexStore(replica)  # checks the manifest's checksums and counts against the files
    try:
        assert store.count("chunks") == 3 * n and store.count("pages") == 3 * pages
        assert sorted(store.documents) == sorted([*docs, *(f"copy-{k}/{d}" for k in (1, 2) for d in docs)])
        assert store.manifest.counts == {"documents": 3 * len(docs), "pages": 3 * pages, "chunks": 3 * n,
                                         "units": 3 * units}
        vectors = store.all_vectors()
        assert np.array_equal(vectors[:n], base)  # the original first, untouched
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
        assert not np.array_equal(vectors[n : 2 * n], base)  # copies jittered, so no exact ties
        copy = store.doc_chunks(f"copy-1/{docs[0]}")
        assert [c.text for _, c in copy] == [c.text for _, c in store.doc_chunks(docs[0])]
    finally:
        store.close()
    answer = Engine(replica, embedder=FakeEmbedder()).ask("findings of the report", top_k=5, with_answer=False)
    assert answer.passages


def test_replica_replaces_an_older_one(tmp_path: Path) -> None:
    _, index = build_index(tmp_path, n_docs=2)
    n = IndexStore(index).count("chunks")
    bench.replicate(index, tmp_path / "replica", 4 * n)
    bench.replicate(index, tmp_path / "replica", n)
    assert IndexStore(tmp_path / "replica").count("chunks") == n
    assert len(list((tmp_path / "replica").glob("gen-*"))) == 1


def test_parse_probe_runs_in_a_child_and_reports_memory(tmp_path: Path) -> None:
    """The parent's path end to end: ``python -m bench.probes`` in a fresh interpreter, one JSON line back."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.md").write_text("# First\n\nSome words about adoption.\n\n# Second\n\nMore words.\n", encoding="utf-8")
    (corpus / "b.txt").write_text("A plain text file about foster care.\n", encoding="utf-8")
    from qa.chunking import ChunkSettings
    from qa.ingest import parse_file

    here = [parse_file(str(corpus / name), name, None, ChunkSettings(), None, 100, 100_000) for name in ("a.md", "b.txt")]
    result = bench.child("parse", str(corpus), watch_children=True)
    assert result["pages"] == sum(len(d.pages) for d in here) and result["workers"] >= 1
    assert result["peak_rss_mb"] > 0 and result["children_peak_rss_mb"] >= 0


def test_a_failing_probe_names_itself(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="probe parse failed(.|\\n)*no documents to parse"):
        bench.child("parse", str(tmp_path / "absent"))


def test_probe_options_reach_the_probe(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
    """Each command line is parsed into the typed arguments of its function, and the result printed last."""
    seen: list[tuple[object, ...]] = []

    def encoder(*args: object) -> probes.Result:
        seen.append(args)
        return {"per_s": 1.5}

    def int8_quality(sets: list[tuple[str, Path, Path, Path]]) -> probes.Result:
        seen.append(tuple(sets))
        return {"x": {"r5": 1.0}}

    monkeypatch.setattr(probes, "encoder_probe", encoder)
    monkeypatch.setattr(probes, "int8_quality_probe", int8_quality)
    assert probes.main(["encoder", "t.json", "--threads", "2", "--batch", "8", "--int8"]) == 0
    assert probes.main(["int8-quality", "--set", "a", "c1", "i1", "q1", "--set", "b", "c2", "i2", "q2"]) == 0
    assert seen == [(Path("t.json"), 2, 8, True),
                    (("a", Path("c1"), Path("i1"), Path("q1")), ("b", Path("c2"), Path("i2"), Path("q2")))]
    lines = capsys.readouterr().out.strip().splitlines()
    first, second = json.loads(lines[0]), json.loads(lines[1])
    assert first["per_s"] == 1.5 and first["peak_rss_mb"] > 0 and first["children_peak_rss_mb"] == 0.0
    assert second["x"] == {"r5": 1.0}


def test_nearest_rank() -> None:
    times = [0.004, 0.001, 0.003, 0.002, 0.005]
    assert probes.nearest_rank_ms(times, 0.5) == pytest.approx(3.0)
    assert probes.nearest_rank_ms(times, 0.95) == pytest.approx(5.0)
    assert probes.nearest_rank_ms([0.007], 0.95) == pytest.approx(7.0)
