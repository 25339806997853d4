"""Is the store file whole? And what a failed SQLite call means, in words that name the file.

The store file is never repaired, rewritten or replaced by splinescope: a file that is not
an SQLite database, is shorter than its own header says (truncated), or has corrupt pages
is refused with an error naming it, and left exactly as it is.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from splinescope.errors import SplinescopeError

_MAGIC = b"SQLite format 3\x00"
ADVICE = (
    "it is left exactly as it is; restore it from a backup, or move it aside and use a new "
    "runs directory"
)


#: Store files this process has read the header of. Each is read at most once per process,
#: before its first connection: closing any file descriptor of a file releases every POSIX
#: lock the process holds on it, SQLite's own included, so reading the file again while a
#: connection of this process is open could let another process write under that
#: connection's lock and corrupt the store.
_CHECKED: set[str] = set()


def check_file(path: Path) -> None:
    """Refuse a store file that cannot be a whole SQLite database, from its 100-byte header
    (once per process and file, before its first connection: see ``_CHECKED``).

    An absent or empty file passes (a new store). Raises SplinescopeError naming ``path``
    when the file is a directory, does not start with SQLite's magic string, or, with no WAL
    file beside it, is shorter than the page size times the page count its header records
    (a truncated copy; with a WAL, SQLite itself reports a damaged file as corrupt).
    """
    key = os.path.realpath(path)
    if key not in _CHECKED:
        _check_header(path)  # raises for a bad file: no connection opens, it is read again
        _CHECKED.add(key)


def _check_header(path: Path) -> None:
    try:
        if path.is_dir():
            raise SplinescopeError(f"run store {str(path)!r} is a directory, not a file")
        if not path.exists():
            return
        size = path.stat().st_size
        if size == 0:
            return
        with path.open("rb") as handle:
            header = handle.read(100)
    except OSError as exc:
        raise SplinescopeError(
            f"run store {str(path)!r} cannot be read: {exc.strerror or exc}"
        ) from exc
    if len(header) < 100 or not header.startswith(_MAGIC):
        raise SplinescopeError(
            f"run store {str(path)!r} is not an SQLite database (its header is missing or "
            f"damaged; {size} bytes); {ADVICE}"
        )
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    change_counter = int.from_bytes(header[24:28], "big")
    pages = int.from_bytes(header[28:32], "big")
    valid_for = int.from_bytes(header[92:96], "big")
    # The in-header page count is trusted by SQLite only when "version-valid-for" matches
    # the change counter (files written by SQLite >= 3.7.0); only then can we compare. And
    # only for a store at rest (no WAL beside it): a WAL checkpoint running in another
    # process may write the header before it extends the file.
    at_rest = not path.with_name(path.name + "-wal").exists()
    if at_rest and pages and valid_for == change_counter and size < pages * page_size:
        raise SplinescopeError(
            f"run store {str(path)!r} is truncated: {size:,} bytes, but its header records "
            f"{pages:,} pages of {page_size:,} bytes ({pages * page_size:,} bytes); {ADVICE}"
        )


def describe(exc: sqlite3.Error, path: Path, doing: str) -> SplinescopeError:
    """A SplinescopeError naming ``path`` and saying what ``exc`` means for the user.

    ``doing`` is what failed, e.g. "write" or "read". Disk full, a file-size limit, an I/O
    error, a corrupt file and a lock held too long are told apart.
    """
    text = str(exc)
    low = text.lower()
    code = getattr(exc, "sqlite_errorname", "") or ""
    if "full" in low or code == "SQLITE_FULL":
        return SplinescopeError(
            f"run store {str(path)!r}: {doing} failed: the disk is full ({text}); the failed "
            "write was rolled back and every earlier one is kept. Free space, then continue "
            "with --resume"
        )
    if "malformed" in low or "not a database" in low or code in ("SQLITE_CORRUPT", "SQLITE_NOTADB"):
        return SplinescopeError(f"run store {str(path)!r} is corrupt ({text}); {ADVICE}")
    if "i/o" in low or code.startswith("SQLITE_IOERR"):
        return SplinescopeError(
            f"run store {str(path)!r}: {doing} failed with an I/O error ({text}): the disk may be "
            "full, a file-size limit reached, or the device failing; the failed write was rolled "
            "back and every earlier one is kept"
        )
    if "readonly" in low or "read-only" in low:
        return SplinescopeError(
            f"run store {str(path)!r}: {doing} failed: the file or its directory is read-only "
            f"({text})"
        )
    return SplinescopeError(f"run store {str(path)!r}: {doing} failed ({text})")
