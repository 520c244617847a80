"""File helpers every stage shares: hashing, durable renames and atomic writes.

One place for them so the index, the catalogue and the fetcher agree on what
"written" means: a reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

TEMP_SUFFIX = ".part"


def sha256_file(path: Path) -> str:
    """sha256 of a file read in blocks, so hashing never holds the whole file."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def sha256_or_none(path: Path) -> str | None:
    """sha256 of a file, or None when it cannot be read (missing, unreadable, a folder)."""
    try:
        return sha256_file(path)
    except OSError:
        return None


def fsync_path(path: Path, *, strict: bool = True) -> None:
    """Flush a file or folder to disk, so a rename in a folder survives a power cut.

    ``strict=False`` ignores platforms and file systems that cannot sync a folder.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        if strict:
            raise
        return
    try:
        os.fsync(fd)
    except OSError:
        if strict:
            raise
    finally:
        os.close(fd)


def create_temp(folder: Path, prefix: str) -> tuple[int, Path]:
    """A new ``<prefix><random>.part`` file in ``folder``, open for writing.

    Created with mode 0666 so the umask and the folder's default ACL decide its
    permissions, like any file the user makes there (mkstemp's 0600 would lock
    other users out).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    while True:
        path = folder / f"{prefix}{secrets.token_hex(8)}{TEMP_SUFFIX}"
        try:
            return os.open(path, flags, 0o666), path
        except FileExistsError:
            continue


def remove_parts(folder: Path, *prefixes: str) -> None:
    """Delete temporary files an interrupted run left in ``folder``."""
    for part in (part for prefix in prefixes for part in folder.glob(f"{prefix}*{TEMP_SUFFIX}")):
        if not part.is_dir():
            part.unlink(missing_ok=True)


def atomic_write(path: Path, data: bytes, prefix: str = ".write-") -> None:
    """Replace ``path`` with ``data`` atomically and durably; nothing is left behind on failure."""
    fd, temp = create_temp(path.parent, prefix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_path(path.parent, strict=False)
