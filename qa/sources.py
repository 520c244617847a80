"""The one reader and writer of ``sources.csv``, the metadata catalogue beside documents.

Ingest reads it for titles, authors, years and URLs; ``qa fetch`` reads and
rewrites it with a sha256 per file. The reader opens only a regular file of
bounded size: a FIFO, a device or a link to one named ``sources.csv`` is refused
with a reason instead of hanging the run or filling memory.
"""

from __future__ import annotations

import csv
import io
import os
import re
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

from .errors import DocumentError
from .files import atomic_write
from .records import DocMeta

COLUMNS = ("path", "title", "authors", "year", "publisher", "url", "licence", "sha256")
MAX_BYTES = 8 * 1024 * 1024

_YEAR = re.compile(r"\s*(\d{4})(?!\d)")

Rows = dict[str, dict[str, str]]


def parse_year(value: object) -> int | None:
    """The year a text starts with ("2017", "2017-07-20T09:30:00Z"), or None when it names none."""
    match = _YEAR.match(value) if isinstance(value, str) else None
    year = int(match.group(1)) if match else None
    return year if year is not None and 1800 <= year <= 2200 else None


def read_regular(path: Path, max_bytes: int = MAX_BYTES) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``max_bytes``.

    Opened without blocking, so a FIFO with no writer cannot stall the caller;
    checked on the open descriptor, so a swap after the check cannot fool it.
    Raises DocumentError with the reason otherwise (FileNotFoundError passes through).
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise DocumentError(str(path), "not a regular file (a pipe, device or folder); replace it with a CSV file")
        if info.st_size > max_bytes:
            raise DocumentError(str(path), f"larger than {max_bytes} bytes; is it really a catalogue?")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(max_bytes + 1)
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise DocumentError(str(path), f"larger than {max_bytes} bytes; is it really a catalogue?")
    return data


def read_sources(path: Path, max_bytes: int = MAX_BYTES) -> tuple[Rows, list[str]]:
    """Rows of a ``sources.csv`` keyed by their ``path`` column, and its column names.

    A missing file gives no rows and the standard columns; extra columns are
    kept after the standard ones. Raises DocumentError when the file cannot be used.
    """
    try:
        data = read_regular(path, max_bytes)
    except FileNotFoundError:
        return {}, list(COLUMNS)
    except OSError as exc:
        raise DocumentError(str(path), f"cannot be opened ({exc.strerror or exc})") from None
    try:
        reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""))
        fieldnames = [name for name in reader.fieldnames or [] if name]
        if "path" not in fieldnames:
            raise DocumentError(str(path), "no 'path' column; add a header line starting with path,title,...")
        rows: Rows = {}
        for row in reader:
            key = (row.get("path") or "").strip()
            if key:
                rows[key] = {k: v or "" for k, v in row.items() if isinstance(k, str) and isinstance(v, str | None)}
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DocumentError(str(path), f"not a readable UTF-8 CSV file ({exc})") from None
    return rows, [*COLUMNS, *(c for c in fieldnames if c not in COLUMNS)]


def meta_from_row(row: Mapping[str, str]) -> DocMeta:
    """The citation metadata of one catalogue row."""
    def field(name: str) -> str:
        return (row.get(name) or "").strip()

    return DocMeta(title=field("title"), authors=field("authors"), year=parse_year(field("year")),
                   publisher=field("publisher"), url=field("url"), licence=field("licence"))


def render_sources(rows: Mapping[str, Mapping[str, str]], columns: Sequence[str]) -> str:
    """CSV text of the rows under a header of ``columns``."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows.values():
        writer.writerow({c: row.get(c, "") for c in columns})
    return buffer.getvalue()


def write_sources(path: Path, rows: Mapping[str, Mapping[str, str]], columns: Sequence[str] = COLUMNS) -> None:
    """Replace ``path`` atomically: a reader sees the old catalogue or the new one, never half."""
    atomic_write(path, render_sources(rows, columns).encode("utf-8"), prefix=".sources-")
