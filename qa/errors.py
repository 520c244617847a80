"""The few domain errors the library raises.

The CLI and the app turn each into a one-line message; every message names the
file or setting at fault and the fix, so no caller needs a traceback.
"""

from __future__ import annotations


class QAError(Exception):
    """Base of every error this library raises on purpose."""


class DocumentError(QAError):
    """A source file cannot be read as text (corrupt, encrypted, scanned, empty...).

    Ingest catches it, skips the file and names it with ``reason`` in its summary.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class IndexMissingError(QAError):
    """No index at the given folder: run ``qa ingest`` first."""


class IndexMismatchError(QAError):
    """The index was built with other settings (format, model, chunking): rebuild it."""


class IndexLockedError(QAError):
    """Another ingest holds the index lock."""


class IndexWriteError(QAError):
    """The index folder cannot be written (read-only, disk full, a failing disk).

    The previous index is left as it was; the message names the folder and the fix.
    """


class ModelError(QAError):
    """The embedding model cannot be found, fails its hash check or fails to load."""


class FetchError(QAError):
    """Fetching the official corpus failed (offline, refused URL, bad response)."""
