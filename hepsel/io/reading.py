"""Reading ROOT files: validation of files, trees and branches, and chunked streaming.

Trees are TTrees or RNTuples (uproot reads both); "branch" below also means
an RNTuple field.

All ROOT input goes through :func:`iterate`, a thin layer over
:func:`uproot.iterate` that checks the inputs first so that a bad file or a
misspelt branch fails with a message naming it, before any output is written.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import uproot

from ..exceptions import BranchNotFoundError, HepselError, InputFileError, TreeNotFoundError
from .remote import InputPath, as_input, is_url, open_url

__all__ = [
    "branch_types",
    "check_branches",
    "corrupt_error",
    "count_entries",
    "is_jagged",
    "iterate",
    "open_tree",
    "read_arrays",
    "reading_errors",
    "type_change",
]

_ROOT_MAGIC = b"root"


def _one_line(err: BaseException) -> str:
    """``Type: message`` of an exception on one line (uproot's messages span several)."""
    text = " ".join(str(err).split())
    if len(text) > 200:
        text = text[:197] + "..."
    kind = type(err).__qualname__
    if type(err).__module__ not in ("builtins", "uproot.deserialization", "uproot.exceptions"):
        kind = (
            f"{type(err).__module__.split('.')[0]}.{kind}"  # zlib.error rather than a bare 'error'
        )
    return f"{kind}: {text}" if text else kind


def corrupt_error(path: str | os.PathLike[str], what: str, err: BaseException) -> InputFileError:
    """The one-line error for a ROOT file that cannot be decoded: names the file, ``what`` failed and why."""
    why = "the file is corrupt or truncated, or uses a layout uproot does not read"
    if is_url(str(path)):  # read over the network: the server may have failed, not the file
        why = "the server stopped answering or refused the read, or " + why
    msg = f"{path}: {what} cannot be read ({_one_line(err)}); {why}"
    return InputFileError(msg)


@contextlib.contextmanager
def reading_errors(path: str | os.PathLike[str], what: str) -> Iterator[None]:
    """Turn any error uproot raises while decoding ``path`` into one :class:`InputFileError` naming ``what``.

    A corrupt basket fails deep inside uproot or a decompressor (``zlib.error``,
    ``OSError``, ``struct.error``, ``ValueError``, ...), so everything but
    hepsel's own errors is caught.
    """
    try:
        yield
    except (HepselError, MemoryError):  # a file too big for memory is not a corrupt one
        raise
    except Exception as err:
        raise corrupt_error(path, what, err) from err


def _open(path: InputPath) -> Any:
    if isinstance(path, str):  # a URL: read in place, the server's answer names what is wrong
        return open_url(path)
    if not path.exists():
        msg = f"input file {str(path)!r} does not exist"
        raise InputFileError(msg)
    if not path.is_file():
        msg = f"input {str(path)!r} is not a file"
        raise InputFileError(msg)
    try:
        with path.open("rb") as handle:
            header = handle.read(20)
    except OSError as err:
        msg = f"input file {str(path)!r} cannot be read: {err.strerror or err}"
        raise InputFileError(msg) from err
    if header[:4] != _ROOT_MAGIC:
        msg = f"input file {str(path)!r} is not a ROOT file (it does not start with the ROOT signature)"
        raise InputFileError(msg)
    # the header records where the file ends: a shorter file was cut off (an interrupted copy or job)
    end, size = _header_end(header), path.stat().st_size
    if end is not None and size < end:
        msg = (
            f"input file {str(path)!r} is truncated: it has {size:,} bytes but its header says {end:,}; "
            "copy or produce it again"
        )
        raise InputFileError(msg)
    with reading_errors(path, "the file header or top directory"):
        return uproot.open(path)


def _header_end(header: bytes) -> int | None:
    """``fEND`` of a ROOT file header (the file's size when complete), or ``None`` if the header is too short.

    Layout: ``root``, then big-endian int32 ``fVersion``, int32 ``fBEGIN`` and
    ``fEND``, an int64 in large files (``fVersion >= 1000000``).
    """
    import struct

    if len(header) < 16:
        return None
    (version,) = struct.unpack(">i", header[4:8])
    if version >= 1_000_000:
        return struct.unpack(">q", header[12:20])[0] if len(header) >= 20 else None
    return struct.unpack(">i", header[12:16])[0]


def _trees(handle: Any) -> list[str] | None:
    """Names of the trees in an open file, or ``None`` when the directory cannot be listed (corrupt file)."""
    try:
        return sorted(
            {k.split(";")[0] for k, c in handle.classnames().items() if _is_tree_class(c)}
        )
    except Exception:
        return None


def open_tree(path: str | os.PathLike[str], tree: str) -> Any:
    """Open ``path`` and return its TTree or RNTuple ``tree``.

    Raises
    ------
    InputFileError
        Missing, non-ROOT, truncated or corrupt file (including a tree
        listed in the file whose header cannot be decoded).
    TreeNotFoundError
        The file has no such tree; the message lists the trees it has.
    """
    p = as_input(path)
    handle = _open(p)
    try:
        obj = handle[tree]
    except Exception as err:
        trees = _trees(handle)
        listed = trees is None or tree in trees or tree.split(";")[0] in trees
        if listed and not isinstance(err, uproot.KeyInFileError):
            # the key exists but its object does not decode: corruption, not a misspelt name
            raise corrupt_error(p, f"tree {tree!r}", err) from err
        if trees is None:
            raise corrupt_error(p, "the list of objects", err) from err
        close = difflib.get_close_matches(tree, trees, n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        msg = f"tree {tree!r} not found in {p}{hint} (trees in the file: {', '.join(trees) or 'none'})"
        raise TreeNotFoundError(msg) from err
    if not hasattr(obj, "num_entries"):
        msg = f"object {tree!r} in {p} is a {type(obj).__name__}, not a TTree or RNTuple"
        raise TreeNotFoundError(msg)
    return obj


def check_branches(
    ttree: Any, needed: Mapping[str, Sequence[str]], *, path: str, tree: str
) -> None:
    """Check that every branch in ``needed`` exists in ``ttree``.

    ``needed`` maps a branch name to the config items that use it, which the
    error message names together with close matches among the tree's branches.
    """
    available = set(ttree.keys(recursive=True, full_paths=False)) | set(ttree.keys())
    missing = [b for b in needed if b not in available]
    if not missing:
        return
    lines = []
    for b in missing:
        close = difflib.get_close_matches(b, sorted(available), n=3, cutoff=0.6)
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        users = "; ".join(needed[b])
        lines.append(f"branch {b!r} not found in {path}:{tree}{hint}, used by {users}")
    raise BranchNotFoundError("\n".join(lines))


def _is_tree_class(classname: str) -> bool:
    return classname.startswith("TTree") or classname == "ROOT::RNTuple"


def _rntuple_field_is_flat(field: Any) -> bool:
    """Whether an RNTuple field holds one plain number per entry."""
    import awkward as ak

    try:
        form = field.to_akform()[0].contents[0]
    except (AttributeError, IndexError, TypeError):  # an uproot without this API: read as awkward
        return False
    return isinstance(form, ak.forms.NumpyForm) and form.inner_shape == ()


def is_jagged(ttree: Any, branches: Sequence[str]) -> bool:
    """Whether any of ``branches`` holds a variable-length collection (or is not a plain number)."""
    for b in branches:
        field = ttree[b]
        if hasattr(field, "interpretation"):  # a TTree branch
            if not isinstance(field.interpretation, uproot.AsDtype):
                return True
        elif not _rntuple_field_is_flat(field):  # an RNTuple field
            return True
    return False


def branch_types(ttree: Any, branches: Sequence[str]) -> dict[str, str]:
    """Type of each of ``branches`` as awkward writes it: ``"float32"``, ``"bool"``, ``"var * int32"``.

    Branches whose layout has no awkward form are left out (they are not compared).
    """
    out: dict[str, str] = {}
    for b in branches:
        try:
            field = ttree[b]
            if hasattr(field, "interpretation"):  # a TTree branch
                form = field.interpretation.awkward_form(ttree.file)
            else:  # an RNTuple field
                form = field.to_akform()[0].contents[0]
            out[b] = str(form.type)
        except Exception:  # an odd or unreadable layout: nothing to compare
            continue
    return out


def _split_type(text: str) -> tuple[str, str]:
    """``"var * 3 * float32"`` -> (``"var * 3"``, ``"float32"``): the dimensions and the leaf type."""
    dims, _, leaf = text.rpartition(" * ")
    return dims, leaf


def type_change(trained: str, seen: str) -> str | None:
    """Why reading a branch of type ``seen`` in place of ``trained`` changes values, or ``None`` if it does not.

    Safe: the same type, a widening (``float32`` -> ``float64``, a narrower
    integer -> a wider one) and any integer -> a float. Refused: a
    narrowing, a float -> an integer, ``bool`` where a number was trained or
    the reverse, and a change of dimensions (flat vs. variable-length).
    Leaf types that are not numbers (records, strings) must be equal.
    """
    if trained == seen:
        return None
    (t_dims, t_leaf), (s_dims, s_leaf) = _split_type(trained), _split_type(seen)
    if t_dims != s_dims:
        return "a different shape"
    try:
        t, s = np.dtype(t_leaf), np.dtype(s_leaf)
    except TypeError:
        return "a different layout"
    if t.kind not in "biuf" or s.kind not in "biuf":
        return None if t == s else "a different layout"
    if (t.kind == "b") != (s.kind == "b"):
        return (
            "bool where a number was trained"
            if s.kind == "b"
            else "a number where a bool was trained"
        )
    if t.kind in "iu" and s.kind == "f":
        return None  # the same numbers, held as floats
    if t.kind == "f" and s.kind in "iu":
        return "an integer where a float was trained (values are truncated)"
    if np.can_cast(t, s, casting="safe"):
        return None
    return "a narrower type, which cannot hold every value of the trained one"


def count_entries(path: str | os.PathLike[str], tree: str) -> int:
    """Number of entries of a tree (cheap: read from the TTree header)."""
    return int(open_tree(path, tree).num_entries)


def _culprit(ttree: Any, branches: Sequence[str], start: int, stop: int) -> str | None:
    """The first of ``branches`` that cannot be read at entries ``[start, stop)`` (on the error path only)."""
    for b in branches:
        try:
            ttree[b].array(entry_start=start, entry_stop=stop, library="ak")
        except Exception:
            return b
    return None


def _read_failure(
    path: str | os.PathLike[str],
    tree: str,
    ttree: Any,
    branches: Sequence[str],
    start: int,
    stop: int,
    err: Exception,
) -> InputFileError:
    """The error for a failed read of entries ``[start, stop)``, naming the branch at fault when one is found."""
    stop = min(stop, int(ttree.num_entries))
    bad = _culprit(ttree, branches, start, stop)
    what = (
        f"tree {tree!r}"
        + (f", branch {bad!r}" if bad else "")
        + f" (entries {start:,} to {stop:,})"
    )
    return corrupt_error(path, what, err)


def read_arrays(
    path: str | os.PathLike[str], ttree: Any, tree: str, branches: Sequence[str]
) -> Any:
    """All entries of ``branches`` (numpy dict when all are flat, else an awkward record array).

    A corrupt or truncated file raises one :class:`InputFileError` naming the file, tree and branch.
    """
    with reading_errors(path, f"tree {tree!r}"):
        library = "ak" if is_jagged(ttree, branches) else "np"
    try:
        return ttree.arrays(list(branches), library=library)
    except MemoryError:
        raise
    except Exception as err:
        raise _read_failure(path, tree, ttree, branches, 0, int(ttree.num_entries), err) from err


def iterate(
    path: str | os.PathLike[str],
    tree: str,
    branches: Sequence[str],
    *,
    step_size: int | str = "100 MB",
    progress: bool = False,
    desc: str | None = None,
) -> Iterator[tuple[Mapping[str, Any], int]]:
    """Stream ``branches`` of ``path:tree`` in chunks.

    Flat branches are read as numpy arrays (``library="np"``), which is
    the fastest path; when any branch is jagged the chunk is an awkward
    record array instead. Yields ``(arrays, entry_start)``.

    Raises
    ------
    InputFileError
        If the file is truncated or a basket does not decode (corrupt file);
        the message names the file, the tree, the branch and the entries.
    """
    ttree = open_tree(path, tree)
    with reading_errors(path, f"tree {tree!r}"):
        library = "ak" if is_jagged(ttree, branches) else "np"
    # entries per chunk, only to name the entries (and the branch) of a chunk that fails to decode
    try:
        step = (
            int(step_size)
            if isinstance(step_size, int)
            else int(ttree.num_entries_for(step_size, list(branches)))
        )
    except Exception:
        step = int(ttree.num_entries)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        # disable=None: no bar when stderr is not a terminal (logs get one line per step instead)
        bar = tqdm(
            total=int(ttree.num_entries),
            desc=desc or f"{Path(str(path)).name}:{tree}",
            unit=" cand",
            unit_scale=True,
            mininterval=1.0,
            disable=None,
        )
    start = time.perf_counter()
    next_entry = 0
    try:
        for arrays, report in ttree.iterate(
            list(branches), step_size=step_size, library=library, report=True
        ):
            next_entry = int(report.tree_entry_stop)
            yield arrays, int(report.tree_entry_start)
            if bar is not None:
                bar.update(int(report.tree_entry_stop - report.tree_entry_start))
                rate = bar.n / max(time.perf_counter() - start, 1e-9)
                bar.set_postfix_str(f"{rate:,.0f} cand/s", refresh=False)
    except (HepselError, MemoryError):
        raise
    except Exception as err:
        # only uproot's reading runs inside this try (the consumer's errors are not thrown into a generator)
        raise _read_failure(
            path, tree, ttree, branches, next_entry, next_entry + max(step, 1), err
        ) from err
    finally:
        if bar is not None:
            bar.close()
