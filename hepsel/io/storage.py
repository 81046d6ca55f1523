"""Writing outputs atomically: JSON, Markdown, Parquet tables and ROOT trees.

Every writer writes to a temporary name in the target directory and renames
it on success, so an interrupted or failing job leaves no half-written file.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "ParquetAppender",
    "atomic_path",
    "check_writable_dir",
    "read_json",
    "read_table",
    "write_json",
    "write_root_tree",
    "write_table",
    "write_text",
]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    Raises
    ------
    OutputError
        If the directory cannot be made or written, or ``path`` cannot be
        replaced (a directory in the way): naming ``path`` and the reason.
    """
    from ..exceptions import OutputError

    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=suffix or target.suffix, dir=target.parent
        )
    except OSError as err:
        check_writable_dir(target.parent, what="directory")  # raises, explaining what is in the way
        msg = f"cannot write {str(target)!r}: {err.strerror or err}"
        raise OutputError(msg) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes private (0600) files; outputs get the usual permissions
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        try:
            os.replace(tmp_path, target)
        except OSError as err:
            msg = f"cannot write {str(target)!r}: {err.strerror or err}"
            raise OutputError(msg) from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def check_writable_dir(path: str | os.PathLike[str], what: str = "output directory") -> Path:
    """Check that files can be written in directory ``path`` (which may not exist yet); create nothing.

    The nearest existing ancestor must be a directory in which an entry can be
    made: a probe directory is created there and removed at once (permission
    bits alone say nothing for root, nor for ``/proc`` or read-only mounts).

    Raises
    ------
    OutputError
        Naming ``path`` and the reason: a regular file in the way, no
        permission, a read-only file system, ...
    """
    from ..exceptions import OutputError

    target = Path(path).absolute()
    existing = target
    while not _exists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        reason = (
            "it is not a directory"
            if existing == target
            else f"{str(existing)!r} is a file, not a directory"
        )
        msg = f"cannot write to the {what} {str(path)!r}: {reason}"
        raise OutputError(msg)
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".hepsel-probe-", dir=existing))
    except OSError as err:
        where = "it" if existing == target else repr(str(existing))
        msg = f"cannot write to the {what} {str(path)!r}: cannot create files in {where} ({err.strerror or err})"
        raise OutputError(msg) from None
    return target


def _exists(path: Path) -> bool:
    """``path.exists()``, False where it cannot even be looked at (no permission on a parent)."""
    try:
        return path.exists()
    except OSError:
        return False


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None  # JSON has no NaN/inf; readers get null
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: str | os.PathLike[str], data: Any) -> Path:
    """Write ``data`` as indented JSON (NaN/inf become null)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_jsonable(data), indent=2) + "\n")
    return Path(path)


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file."""
    return json.loads(Path(path).read_text())


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


class ParquetAppender:
    """Write a Parquet file chunk by chunk (memory bounded by one chunk), atomically.

    Use as a context manager; the file appears under its final name only when
    the block exits without an exception.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._ctx: Any = None
        self._tmp: Path | None = None
        self._writer: Any = None
        self._schema: Any = None

    def __enter__(self) -> ParquetAppender:
        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        return self

    def append(self, columns: Mapping[str, np.ndarray]) -> None:
        """Append one chunk of equal-length flat columns."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({k: np.asarray(v) for k, v in columns.items()})
        if self._writer is None:
            self._schema = table.schema
            self._writer = pq.ParquetWriter(self._tmp, self._schema, compression="snappy")
        else:
            table = table.cast(self._schema)
        self._writer.write_table(table)

    def write_empty(self, columns: Mapping[str, np.dtype[Any]]) -> None:
        """Make sure the file exists with this schema even if no chunk was appended."""
        if self._writer is None:
            self.append({k: np.zeros(0, dtype=v) for k, v in columns.items()})

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._writer is not None:
            self._writer.close()
        self._ctx.__exit__(exc_type, exc, tb)


def write_table(path: str | os.PathLike[str], columns: Mapping[str, np.ndarray]) -> Path:
    """Write flat columns to a Parquet file in one go."""
    with ParquetAppender(path) as out:
        out.append(columns)
    return Path(path)


def read_table(
    path: str | os.PathLike[str],
    columns: Sequence[str] | None = None,
    *,
    rows: Any = None,
) -> dict[str, np.ndarray]:
    """Read flat columns of a Parquet file into numpy arrays, one column at a time.

    Parameters
    ----------
    path
        The Parquet file.
    columns
        The columns to read (default: all), in this order.
    rows
        An optional pyarrow filter expression (e.g. ``pyarrow.compute.field("fold") != 2``)
        selecting the rows to keep.

    Peak memory is the returned arrays plus one column (plus the filter's
    columns when ``rows`` is given): the Arrow buffers of each column are
    released as soon as it is converted.
    """
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    names = list(columns) if columns is not None else pf.schema_arrow.names
    missing = [c for c in names if c not in pf.schema_arrow.names]
    if missing:
        from ..exceptions import InputFileError

        msg = f"{path}: no column(s) {missing}; rerun the step that wrote it"
        raise InputFileError(msg)
    keep = None
    if rows is not None:
        import pyarrow.compute as pc
        import pyarrow.dataset as pads

        mask = pads.dataset(path, format="parquet").to_table(columns={"keep": rows}).column("keep")
        keep = np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)
    out: dict[str, np.ndarray] = {}
    for name in names:
        col = pf.read(columns=[name]).column(0).to_numpy()
        out[name] = col[keep] if keep is not None else col
    return out


def write_root_tree(
    path: str | os.PathLike[str],
    tree: str,
    columns: Mapping[str, np.ndarray],
    *,
    chunk: int = 1_000_000,
) -> Path:
    """Write flat columns as a TTree with uproot, atomically."""
    import uproot

    cols = {k: np.ascontiguousarray(v) for k, v in columns.items()}
    n = len(next(iter(cols.values()))) if cols else 0
    with atomic_path(path, suffix=".root") as tmp, uproot.recreate(tmp) as f:
        first = {k: v[:chunk] for k, v in cols.items()}
        f.mktree(tree, {k: v.dtype for k, v in cols.items()})
        f[tree].extend(first)
        for start in range(chunk, n, chunk):
            f[tree].extend({k: v[start : start + chunk] for k, v in cols.items()})
    return Path(path)
