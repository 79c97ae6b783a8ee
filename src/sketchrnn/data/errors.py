"""How the data room says that a file cannot be read: one error type, one line that starts with the file."""

from __future__ import annotations


class DataFileError(ValueError):
    """A data file is missing, unreadable, unsafe, or not stroke-3 sketches.

    The message is a single line that starts with the file path.
    """


def one_line(text: str) -> str:
    """Collapse whitespace (including newlines) so a message stays on one line."""
    return " ".join(str(text).split()) or "unknown error"


def reason(exc: BaseException) -> str:
    """An exception as "Type: message" on one line (just the type when it has no message)."""
    detail = one_line(str(exc))
    return f"{type(exc).__name__}: {detail}" if detail != "unknown error" else type(exc).__name__


def first_line(exc: BaseException, limit: int = 120) -> str:
    """The first line of an exception's message, at most `limit` characters ('' when it has none)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def cannot_open(name: str, exc: OSError, what: str) -> DataFileError:
    """The error for a file `name` that could not be opened as `what` (e.g. "an SVG file")."""
    if isinstance(exc, FileNotFoundError):
        return DataFileError(f"{name}: no such file")
    if isinstance(exc, IsADirectoryError):
        return DataFileError(f"{name}: is a directory, not {what}")
    return DataFileError(f"{name}: cannot read ({exc.strerror or exc})")


def not_a_zip(path: str) -> DataFileError:
    """The error for a dataset file (.npz or packed, both zip archives) that zipfile could not open,
    saying why from its first bytes."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError:
        head = b""
    if head.startswith(b"\x93NUMPY"):
        return DataFileError(f"{path}: is a bare .npy file, not a .npz archive")
    if head.startswith(b"PK"):
        return DataFileError(f"{path}: not a valid .npz file (truncated or corrupt zip)")
    return DataFileError(f"{path}: not a valid .npz file (not a zip archive)")
