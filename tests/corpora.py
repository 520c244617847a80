"""Small generated corpora for ingest, store, crash and load tests (and ``tests/faultkit.py``).

Every document has its own topic words, so questions have clear right answers
even with the hashing ``FakeEmbedder``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from conftest import make_pdf

if TYPE_CHECKING:
    from qa.records import Chunk, Page

TOPICS = [
    ("kinship", "Kinship carers asked for training, respite and financial support from the council."),
    ("adolescents", "Edge of care teams worked intensively with adolescents at risk of entering care."),
    ("conferences", "Family group conferences let relatives agree a plan before care proceedings."),
    ("caseloads", "Social workers had smaller caseloads and spent more time in direct work with families."),
    ("leavers", "Care leavers kept a personal adviser and stayed put with foster carers until twenty one."),
    ("pedagogy", "Social pedagogy shaped practice in residential children's homes across the pilots."),
    ("mockingbird", "Mockingbird constellations linked a hub carer with six to ten satellite foster families."),
    ("exploitation", "Youth workers met young people at risk of criminal exploitation in the evenings."),
    ("domestic", "Domestic abuse workers joined social work teams to support survivors and their children."),
    ("mental", "Clinical psychologists embedded in teams improved access to mental health support."),
    ("adoption", "Regional adoption agencies matched children with adopters more quickly than before."),
    ("savings", "The evaluation estimated savings from fewer children entering care and shorter stays."),
]

QUESTIONS = [
    "What support did kinship carers ask for?",
    "How did edge of care teams work with adolescents?",
    "What do family group conferences do before proceedings?",
    "Did social workers have smaller caseloads?",
    "Who supports care leavers after they leave care?",
    "What is social pedagogy in residential homes?",
    "How are Mockingbird constellations organised?",
    "How did youth workers tackle criminal exploitation?",
    "How were domestic abuse survivors supported?",
    "Did psychologists improve mental health support?",
    "Did regional adoption agencies match children faster?",
    "What savings did the evaluation estimate?",
]


def _pages(index: int, n_pages: int) -> list[str]:
    word, sentence = TOPICS[index % len(TOPICS)]
    other = TOPICS[(index + 5) % len(TOPICS)][1]
    pages = []
    for page in range(n_pages):
        body = [f"Section {page + 1} of report {index}: {word} findings."]
        body += [sentence] * 2 + [other]
        body += [f"Paragraph {k} records how the {word} work developed in area {index}-{page}." for k in range(3)]
        body.insert(3, f"Reference code doc{index:02d}x.")  # a word no other document has, mid-page
        pages.append("\n".join(body))
    return pages


def build_corpus(folder: Path, n_docs: int = 8, pages_per_pdf: int = 3, with_catalogue: bool = True) -> Path:
    """PDFs (with running header/footer, some with roman front matter), Markdown and text files."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n_docs):
        word = TOPICS[i % len(TOPICS)][0]
        if i % 4 == 3:
            path = folder / f"notes-{i:02d}-{word}.md"
            pages = _pages(i, 1)
            path.write_text(f"# Notes on {word}\n\n" + pages[0] + "\n", encoding="utf-8")
        elif i % 4 == 2 and i % 8 == 6:
            path = folder / f"memo-{i:02d}-{word}.txt"
            path.write_text(_pages(i, 1)[0] + "\n", encoding="utf-8")
        else:
            labels = [(0, "/r", 1), (1, "/D", 1)] if i % 3 == 1 else None
            path = make_pdf(folder / f"report-{i:02d}-{word}.pdf", _pages(i, pages_per_pdf),
                            header="Children's Social Care Innovation Programme", footer="Page {n}", labels=labels)
        if with_catalogue and i % 2 == 0:
            rows.append({"path": path.name, "title": f"Evaluation of {word} services", "authors": "Evaluation Team",
                         "year": str(2015 + i % 5), "publisher": "Department for Education", "url": f"https://example.org/{i}",
                         "licence": "OGL-UK-3.0"})
    if rows:
        with (folder / "sources.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return folder


def build_index(folder: Path, n_docs: int) -> tuple[Path, Path]:
    """(corpus, index) under ``folder``: a generated corpus ingested in this process with ``FakeEmbedder``."""
    from qa.ingest import IngestSettings, ingest

    from conftest import FakeEmbedder

    corpus = build_corpus(folder / "corpus", n_docs=n_docs)
    index = folder / "index"
    ingest(corpus, index, FakeEmbedder(), settings=IngestSettings(workers=0))
    return corpus, index


class Snapshot(TypedDict):
    """What ``snapshot`` records of an index."""

    documents: dict[str, Any]
    pages: dict[str, list[Page]]
    chunks: list[Chunk]
    vectors: bytes
    manifest_documents: dict[str, str]
    skipped: dict[str, list[str]]
    fts: list[Any]


def snapshot(index: Path) -> Snapshot:
    """Everything an index holds that a clean build must reproduce (not its name or build time)."""
    from qa.store import IndexStore

    store = IndexStore(index)
    try:
        n = store.count("chunks")
        chunks = store.chunks(range(n))
        return {
            "documents": dict(store.documents),
            "pages": {doc: store.pages(doc) for doc in store.documents},
            "chunks": [chunks[i] for i in range(n)],
            "vectors": store.all_vectors().tobytes(),
            "manifest_documents": dict(store.manifest.documents),
            "skipped": dict(store.manifest.skipped),
            "fts": store.db.execute("SELECT rowid, text, section, title FROM chunks_fts ORDER BY rowid").fetchall(),
        }
    finally:
        store.close()


def npz_declaring(path: Path, elements: int) -> None:
    """A small lexical.npz whose ``ids`` header declares ``elements`` int32s but holds two."""
    import zipfile

    import numpy as np

    arrays = {"terms": np.array(["a"]), "starts": np.array([0, 2], dtype=np.int64), "ids": np.array([0, 1], dtype=np.int32),
              "scores": np.array([1.0, 1.0], dtype=np.float32), "rows": np.array([2], dtype=np.int64)}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            with archive.open(f"{name}.npy", "w") as member:
                header = {"descr": np.lib.format.dtype_to_descr(array.dtype), "fortran_order": False,
                          "shape": (elements,) if name == "ids" else array.shape}
                np.lib.format.write_array_header_1_0(member, header)
                member.write(array.tobytes())
