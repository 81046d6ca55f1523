"""Reading ROOT files: validation of files, trees and branches, and chunked streaming.

Trees are TTrees or RNTuples (uproot reads both); "branch" below also means
an RNTuple field.

All ROOT input goes through :func:`iterate`, a thin layer over
:func:`uproot.iterate` that checks the inputs first so that a bad file or a
misspelt branch fails with a message naming it, before any output is written.
"""

from __future__ import annotations

import difflib
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import uproot

from .exceptions import BranchNotFoundError, InputFileError, TreeNotFoundError

__all__ = ["check_branches", "count_entries", "is_jagged", "iterate", "open_tree"]

_ROOT_MAGIC = b"root"


def _open(path: Path) -> Any:
    if not path.exists():
        msg = f"input file {str(path)!r} does not exist"
        raise InputFileError(msg)
    if not path.is_file():
        msg = f"input {str(path)!r} is not a file"
        raise InputFileError(msg)
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic != _ROOT_MAGIC:
        msg = f"input file {str(path)!r} is not a ROOT file (it does not start with the ROOT signature)"
        raise InputFileError(msg)
    try:
        return uproot.open(path)
    except Exception as err:
        msg = f"input file {str(path)!r} could not be opened as ROOT ({type(err).__name__}: {err}); is it truncated or corrupt?"
        raise InputFileError(msg) from err


def open_tree(path: str | os.PathLike[str], tree: str) -> Any:
    """Open ``path`` and return its TTree or RNTuple ``tree``.

    Raises
    ------
    InputFileError
        Missing, non-ROOT, truncated or corrupt file.
    TreeNotFoundError
        The file has no such tree; the message lists the trees it has.
    """
    p = Path(path)
    handle = _open(p)
    try:
        obj = handle[tree]
    except Exception as err:
        trees = sorted({k.split(";")[0] for k, c in handle.classnames().items() if _is_tree_class(c)})
        close = difflib.get_close_matches(tree, trees, n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        msg = f"tree {tree!r} not found in {p}{hint} (trees in the file: {', '.join(trees) or 'none'})"
        raise TreeNotFoundError(msg) from err
    if not hasattr(obj, "num_entries"):
        msg = f"object {tree!r} in {p} is a {type(obj).__name__}, not a TTree or RNTuple"
        raise TreeNotFoundError(msg)
    return obj


def check_branches(ttree: Any, needed: Mapping[str, Sequence[str]], *, path: str, tree: str) -> None:
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


def count_entries(path: str | os.PathLike[str], tree: str) -> int:
    """Number of entries of a tree (cheap: read from the TTree header)."""
    return int(open_tree(path, tree).num_entries)


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
    """
    ttree = open_tree(path, tree)
    library = "ak" if is_jagged(ttree, branches) else "np"
    bar = None
    if progress:
        from tqdm.auto import tqdm

        # disable=None: no bar when stderr is not a terminal (logs get one line per step instead)
        bar = tqdm(
            total=int(ttree.num_entries), desc=desc or f"{Path(path).name}:{tree}", unit=" cand",
            unit_scale=True, mininterval=1.0, disable=None,
        )
    start = time.perf_counter()
    try:
        for arrays, report in ttree.iterate(
            list(branches), step_size=step_size, library=library, report=True
        ):
            yield arrays, int(report.tree_entry_start)
            if bar is not None:
                bar.update(int(report.tree_entry_stop - report.tree_entry_start))
                rate = bar.n / max(time.perf_counter() - start, 1e-9)
                bar.set_postfix_str(f"{rate:,.0f} cand/s", refresh=False)
    except (OSError, ValueError, uproot.deserialization.DeserializationError) as err:
        msg = (
            f"failed reading {path}:{tree} ({type(err).__name__}: {err}); uproot could not decode it: "
            "the file may be truncated or corrupt, or use a layout uproot does not read"
        )
        raise InputFileError(msg) from err
    finally:
        if bar is not None:
            bar.close()
