"""Shared fixtures: a tiny deterministic embedder, generated PDFs and corpora.

Most tests use ``FakeEmbedder``: it hashes words into a small vector, so texts
sharing words are similar, runs in microseconds and never loads a model.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
DATA = Path(__file__).resolve().parent / "data"


class FakeEmbedder:
    """Bag-of-hashed-words vectors: deterministic, fast, similar for texts sharing words."""

    def __init__(self, dimension: int = 64, name: str = "fake-hash") -> None:
        self.name = f"{name}-{dimension}"
        self.fingerprint = "fake-" + str(dimension)
        self.dimension = dimension
        self.tokenizer_file: str | None = None
        self.calls = 0
        self.texts_embedded = 0

    def _vector(self, text: str) -> np.ndarray:
        vec = np.zeros(self.dimension, dtype=np.float32)
        for word in re.findall(r"\w+", text.lower()):
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            index = int.from_bytes(digest[:4], "little") % self.dimension
            vec[index] += 1.0 if digest[4] & 1 else -1.0
        norm = float(np.linalg.norm(vec))
        return vec / norm if norm else vec

    def embed(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        self.calls += 1
        self.texts_embedded += len(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._vector(t) for t in texts]).astype(np.float32)


LONG_TIMEOUT = 1800  # seconds: a first real-model test may ingest a whole corpus before it starts


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give tests that use the real model or a browser the long time limit, unless they set their own."""
    for item in items:
        if item.get_closest_marker("timeout") is None and (
            item.get_closest_marker("model") or item.get_closest_marker("browser")
        ):
            item.add_marker(pytest.mark.timeout(LONG_TIMEOUT))


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


def make_pdf(path: Path, pages: Sequence[str], *, header: str | None = None, footer: str | None = "Page {n}",
             labels: Sequence[tuple[int, str, int]] | None = None, title: str | None = None) -> Path:
    """Write a PDF with one text page per entry, optional running header/footer and /PageLabels.

    ``labels``: (first page index, style "/r" or "/D", start number) ranges.
    """
    from fpdf import FPDF
    from pypdf import PdfReader, PdfWriter
    from pypdf.constants import PageLabelStyle

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_font("Helvetica", size=11)
    if title:
        pdf.set_title(title)
    for n, text in enumerate(pages, start=1):
        pdf.add_page()
        if header:
            pdf.set_xy(15, 10)
            pdf.cell(0, 6, header)
        pdf.set_xy(15, 25)
        pdf.multi_cell(180, 6, text)
        if footer:
            pdf.set_xy(15, 280)
            pdf.cell(0, 6, footer.format(n=n))
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    if labels:
        reader = PdfReader(str(path))
        writer = PdfWriter(clone_from=reader)
        bounds = [start for start, _, _ in labels] + [len(pages)]
        for (start, style, first), end in zip(labels, bounds[1:], strict=True):
            writer.set_page_label(start, end - 1, style=PageLabelStyle(style), start=first)
        with path.open("wb") as handle:
            writer.write(handle)
    return path


@pytest.fixture
def pdf_factory():
    return make_pdf


@pytest.fixture
def shared_dir() -> Path:
    """``../shared`` beside the checkout; tests using it skip with the reason when it is absent."""
    if not (SHARED / "corpus").is_dir():
        pytest.skip(f"needs the shared corpus at {SHARED} (absent in this checkout)")
    return SHARED


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.fixture(scope="session")
def real_embedder():
    """The bundled all-MiniLM-L6-v2, loaded once for the whole test session."""
    from qa.embed import load_embedder

    return load_embedder()


@pytest.fixture(scope="session")
def sample_index(tmp_path_factory: pytest.TempPathFactory, real_embedder) -> tuple[Path, Path]:
    """(corpus, index): the repository's sample corpus ingested once with the real model."""
    from qa.ingest import IngestSettings, ingest

    base = tmp_path_factory.mktemp("sample")
    corpus = copy_tree(ROOT / "corpus", base / "corpus")
    index = base / "index"
    ingest(corpus, index, real_embedder, settings=IngestSettings(workers=0))
    return corpus, index


@pytest.fixture(scope="session")
def shared_index(tmp_path_factory: pytest.TempPathFactory, real_embedder) -> tuple[Path, Path]:
    """(corpus, index): copies of ../shared/corpus (as corpus/) and ../shared/seeds (as seeds/),
    ingested once with the real model. Skips when ../shared is absent."""
    if not (SHARED / "corpus").is_dir():
        pytest.skip(f"needs the shared corpus at {SHARED} (absent in this checkout)")
    from qa.ingest import IngestSettings, ingest

    base = tmp_path_factory.mktemp("shared")
    corpus = base / "corpus"
    shutil.copytree(SHARED / "corpus", corpus / "corpus", ignore=shutil.ignore_patterns("*.md"))
    shutil.copytree(SHARED / "seeds", corpus / "seeds")
    index = base / "index"
    ingest(corpus, index, real_embedder, settings=IngestSettings())
    return corpus, index
