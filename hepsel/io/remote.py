"""Remote inputs: ROOT files named by an XRootD (``root://host//path``) or HTTP(S) URL.

Input files (samples, ``apply:`` datasets, ``hepsel apply``) may be URLs next
to local paths. uproot reads them in place: XRootD through uproot's XRootD source
(the ``remote`` extra: ``pip install 'hepsel[remote]'``: the ``xrootd``
bindings, and ``fsspec-xrootd`` for globs), HTTP(S) through uproot's own
range-request source. Globs expand on XRootD directories with
fsspec's ``glob``; a URL is kept as a ``str`` (a :class:`~pathlib.Path` would
fold the ``//`` that separates host and path).
"""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path
from typing import Any

from ..exceptions import InputFileError

__all__ = ["InputPath", "as_input", "expand_url", "is_url", "open_url"]

#: A local file or a URL.
InputPath = Path | str

_URL = re.compile(r"^(root|roots|xroot|xroots|http|https)://", re.IGNORECASE)
_XROOTD = ("root", "roots", "xroot", "xroots")


def is_url(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a remote URL hepsel reads (``root://``, ``xroot://``, ``http(s)://``)."""
    return isinstance(path, str) and _URL.match(path) is not None


def as_input(path: str | os.PathLike[str]) -> InputPath:
    """``path`` as an input: a URL stays a string, anything else becomes a :class:`~pathlib.Path`."""
    return path if is_url(path) else Path(path)  # type: ignore[return-value]


def _scheme(url: str) -> str:
    return url.split("://", 1)[0].lower()


def _one_line(err: BaseException) -> str:
    """The server's answer in ``err`` on one line (uproot appends paragraphs of help on file names)."""
    return " ".join(str(err).strip().split("\n\n")[0].split()) or type(err).__name__


def expand_url(pattern: str, key: str) -> list[str]:
    """The URL ``pattern``, or the sorted URLs its glob matches on an XRootD server.

    Raises
    ------
    InputFileError
        A glob on an HTTP URL (HTTP lists no directories), a server that cannot
        be reached, or no match; the message names ``key``, the pattern and the server's answer.
    """
    if not glob.has_magic(pattern.split("://", 1)[1]):
        return [pattern]
    if _scheme(pattern) not in _XROOTD:
        msg = f"{key}: pattern {pattern!r}: globs work on XRootD (root://) directories only; list HTTP files one by one"
        raise InputFileError(msg)
    fs, path = _xrootd_fs(pattern, key)
    try:
        matches = fs.glob(path)
    except Exception as err:  # the server's answer, whatever the client raised it as
        msg = f"{key}: pattern {pattern!r} cannot be listed: {_one_line(err)}"
        raise InputFileError(msg) from err
    if not matches:
        msg = f"{key}: pattern {pattern!r} matches no file"
        raise InputFileError(msg)
    return sorted(fs.unstrip_protocol(m) for m in matches)


def _xrootd_fs(url: str, key: str) -> tuple[Any, str]:
    try:
        import fsspec

        return fsspec.core.url_to_fs(url)
    except ImportError as err:
        msg = f"{key}: {url!r} needs the XRootD client: pip install 'hepsel[remote]' (xrootd, fsspec-xrootd)"
        raise InputFileError(msg) from err


def open_url(url: str) -> Any:
    """Open the ROOT file at ``url`` with uproot.

    Raises
    ------
    InputFileError
        One line naming the URL and the server's answer (no such file,
        refused connection, an HTTP status, a missing XRootD client).
    """
    import uproot

    options: dict[str, object] = {}
    if _scheme(url) in ("http", "https"):
        # uproot's own range-request source: no aiohttp needed
        options["handler"] = uproot.source.http.HTTPSource
    else:
        try:
            import XRootD.client  # noqa: F401
        except ImportError as err:
            msg = f"input file {url!r} needs the XRootD client: pip install 'hepsel[remote]' (xrootd, fsspec-xrootd)"
            raise InputFileError(msg) from err
        # one read per basket: uproot 5.7's fsspec source passes numpy offsets that the xrootd 6
        # bindings refuse, and its vector reads fail on xrootd 5 servers ("Invalid operation")
        options["handler"] = uproot.source.xrootd.MultithreadedXRootDSource
    try:
        return uproot.open(url, **options)
    except Exception as err:
        msg = f"input file {url!r} cannot be opened: {_one_line(err)}"
        raise InputFileError(msg) from err
