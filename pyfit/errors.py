"""Exceptions raised by pyfit for bad input.

Every problem with user input (files, models, configurations) is reported as a
:class:`PyfitError` whose message says where the problem is and what was expected.
File-format problems are :class:`FileFormatError` (also a :class:`ValueError`), whose text is
``"<file>:<line>: <message>"`` (or ``"<file>: <message>"`` when no line applies).
"""

from __future__ import annotations

import os

__all__ = ["PyfitError", "FileFormatError", "MissingFileError", "read_text"]


class PyfitError(Exception):
    """Base class of all errors pyfit raises for bad input."""


class FileFormatError(PyfitError, ValueError):
    """A file that does not follow its format.

    Parameters
    ----------
    path:
        The file (as given by the user); ``None`` for an unnamed stream.
    line:
        1-based line number, or ``None`` when the problem is not tied to one line.
    message:
        What was expected and what was found.
    """

    def __init__(self, path, line: int | None, message: str):
        super().__init__(path, line, message)  # keeps the exception picklable
        self.path = None if path is None else os.fspath(path)
        self.line = line
        self.message = message

    def __str__(self) -> str:
        where = self.path if self.path is not None else "<input>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        return f"{where}: {self.message}"


class MissingFileError(PyfitError, FileNotFoundError):
    """An input file that does not exist (or cannot be opened)."""

    def __init__(self, path, reason: str = "no such file"):
        super().__init__(f"{os.fspath(path)}: {reason}")
        self.filename = os.fspath(path)

    def __str__(self) -> str:
        return str(self.args[0])


def read_text(path) -> str:
    """The whole text of ``path``; OS and decoding problems become :class:`PyfitError`."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            return fh.read()
    except FileNotFoundError:
        raise MissingFileError(path) from None
    except IsADirectoryError:
        raise MissingFileError(path, "is a directory, expected a file") from None
    except PermissionError:
        raise MissingFileError(path, "permission denied") from None
    except UnicodeDecodeError as exc:
        text = open(path, "rb").read()
        line = text.count(b"\n", 0, exc.start) + 1
        raise FileFormatError(path, line, "not a text file (invalid UTF-8 byte); expected a "
                              "plain-text file") from None
