"""evidence-qa: cited answers from a corpus of evaluation reports.

The small public API: ``ingest`` a folder into an index, open an ``Engine`` on
it and ``ask``. Every stage has its own module; ``records`` holds the shared
dataclasses and ``errors`` the domain errors.
"""

from __future__ import annotations

from .embed import load_embedder
from .engine import AskSettings, Engine
from .errors import DocumentError, FetchError, IndexLockedError, IndexMismatchError, IndexMissingError, ModelError, QAError
from .ingest import IngestSettings, ingest
from .records import Answer, AnswerSentence, Chunk, Citation, Document, IngestReport, Passage
from .settings import Settings

__all__ = [
    "Answer", "AnswerSentence", "AskSettings", "Chunk", "Citation", "Document", "DocumentError", "Engine",
    "FetchError", "IndexLockedError", "IndexMismatchError", "IndexMissingError", "IngestReport",
    "IngestSettings", "ModelError", "Passage", "QAError", "Settings", "ingest", "load_embedder",
]
__version__ = "0.1.0"
