"""The path contract: every path on the wire is relative to the watched root.

Paths start with ``/`` and the root itself is ``/``; there is no trailing slash and no ``//``.
Inside the agent, names that are not valid UTF-8 are carried as ``str`` with surrogate escapes
(``os.fsdecode``), so they round-trip to the file system exactly. Fusion only takes valid
UTF-8, so ``wire_path`` turns each undecodable byte into ``%XX`` (upper-case hex) when a path
leaves the agent. Names that are valid UTF-8 are sent unchanged.
"""

from __future__ import annotations

import posixpath
import re

__all__ = [
    "ROOT",
    "PathEscapeError",
    "confine",
    "join",
    "to_relative",
    "unwire_path",
    "wire_path",
]

ROOT = "/"


class PathEscapeError(ValueError):
    """A requested path points outside the watched root."""


def to_relative(root: str, absolute: str) -> str:
    """``/data/x/y`` under root ``/data`` -> ``/x/y``; the root itself -> ``/``.

    ``root`` must be normalised without a trailing slash (except ``/``) and ``absolute`` must
    lie under it; this is the hot path, so neither is checked.
    """
    if root == "/":
        return absolute
    rel = absolute[len(root) :]
    return rel or ROOT


def confine(requested: str) -> str:
    """Normalise a requested root-relative path, refusing any that would escape the root.

    ``""``, ``"."`` and ``"/"`` mean the root. ``..`` components that climb above the root
    raise :class:`PathEscapeError`. Symlinks are a file-system matter and are checked by the
    source driver, which knows the real root.
    """
    parts: list[str] = []
    for part in requested.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise PathEscapeError(f"path escapes the watched root: {requested!r}")
            parts.pop()
        else:
            parts.append(part)
    return "/" + "/".join(parts)


def _escape_surrogates(path: str) -> str:
    out = []
    for ch in path:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(f"%{code - 0xDC00:02X}")
        else:
            out.append(ch)
    return "".join(out)


def wire_path(path: str) -> str:
    """The path as Fusion can take it: valid UTF-8 names unchanged, raw bytes as ``%XX``."""
    if path.isascii():
        return path
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return _escape_surrogates(path)
    return path


_ESCAPED_BYTE = re.compile(r"%([89A-F][0-9A-F])")


def unwire_path(path: str) -> str:
    """The inverse of :func:`wire_path`: ``%XX`` (XX >= 80) back to the raw byte.

    For paths that come back from Fusion (sentinel tasks, scan commands). A name that really
    contains such a sequence is ambiguous, so callers try the path as given first.
    """
    if "%" not in path:
        return path
    return _ESCAPED_BYTE.sub(lambda m: chr(0xDC00 + int(m.group(1), 16)), path)


def join(root: str, relative: str) -> str:
    """Absolute path of a root-relative path (the inverse of :func:`to_relative`)."""
    if relative == ROOT:
        return root
    return posixpath.join(root, relative.lstrip("/")) if root != "/" else relative
