"""Remote inputs, read in place from real servers: Debian's ``xrootd`` and Python's ``http.server``.

The XRootD tests skip when the ``xrootd`` server binary or the ``fsspec-xrootd``
client is missing (``apt-get install xrootd-server``, ``pip install 'hepsel[remote]'``);
``.ci/run`` installs both.
"""

from __future__ import annotations

import functools
import http.server
import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import uproot

from hepsel.config.loading import load_config
from hepsel.exceptions import InputFileError
from hepsel.io.reading import iterate, open_tree, read_arrays

from .conftest import REPO, tiny_config, write_config, write_flat_tree


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(
    port: int, proc: subprocess.Popen[bytes] | None = None, seconds: float = 20.0
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the server exited with status {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    pytest.fail(f"no server listening on port {port} after {seconds} s")


def _served_dir(prefix: str) -> Path:
    """A directory in the system temp dir that an unprivileged server user can read (pytest's are 0700)."""
    d = Path(tempfile.mkdtemp(prefix=prefix))
    d.chmod(0o755)
    return d


@pytest.fixture(scope="module")
def xrootd() -> Iterator[tuple[str, Path]]:
    """Debian's ``xrootd`` on a free localhost port, exporting a fresh directory: ``(root://localhost:PORT/, dir)``."""
    binary = shutil.which("xrootd")
    if binary is None:
        pytest.skip("the xrootd server is not installed (Debian: apt-get install xrootd-server)")
    pytest.importorskip(
        "fsspec_xrootd", reason="the XRootD client is not installed (pip install 'hepsel[remote]')"
    )
    # the config and the files the tests write must be readable by the server's user
    umask = os.umask(0o022)
    served = _served_dir("hepsel-xrootd-")
    admin = Path(tempfile.mkdtemp(prefix="hepsel-xrootd-admin-"))
    admin.chmod(0o777)  # the server user writes its pid file and sockets here
    cfg = admin / "xrootd.cfg"
    cfg.write_text(f"all.export {served}\nall.adminpath {admin}\nall.pidpath {admin}\n")
    port = _free_port()
    # Debian's xrootd refuses to run as the superuser: drop to an unprivileged user
    user = ["-R", "nobody"] if os.geteuid() == 0 else []
    log = admin / "xrootd.log"
    proc = subprocess.Popen(
        [binary, "-p", str(port), *user, "-c", str(cfg), "-l", str(log), "-n", "hepsel"],
        cwd=admin,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(port, proc)
        yield f"root://localhost:{port}/", served
    finally:
        os.umask(umask)
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(served, ignore_errors=True)
        shutil.rmtree(admin, ignore_errors=True)


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """``http.server`` with single byte-range requests (206), as file servers answer them."""

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def send_head(self):  # type: ignore[no-untyped-def]
        rng = self.headers.get("Range")
        path = Path(self.translate_path(self.path))
        if (
            rng is None or "," in rng or not path.is_file()
        ):  # several ranges: the whole file, uproot falls back
            return super().send_head()
        first, last = rng.removeprefix("bytes=").split("-")
        data = path.read_bytes()
        start, stop = int(first), min(int(last) + 1, len(data))
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{len(data)}")
        self.send_header("Content-Length", str(stop - start))
        self.end_headers()
        return io.BytesIO(data[start:stop])


@pytest.fixture(scope="module")
def http_server() -> Iterator[tuple[str, Path]]:
    """Python's ``http.server`` on a free localhost port: ``(http://127.0.0.1:PORT/, dir)``."""
    served = _served_dir("hepsel-http-")
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_RangeHandler, directory=str(served))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", served
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(served, ignore_errors=True)


def _hepsel(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hepsel.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
    )


def _one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("hepsel: error: ")
    return lines[0]


@pytest.mark.parametrize("server", ["xrootd", "http_server"])
def test_tree_read_in_place_equals_local(server: str, request: pytest.FixtureRequest) -> None:
    """Every branch read over the network, whole and in chunks across several baskets, equals the local file's."""
    base, served = request.getfixturevalue(server)
    rng = np.random.default_rng(4)
    parts = [{"x": rng.normal(size=n), "n": np.arange(n, dtype=np.int32)} for n in (700, 500, 900)]
    with uproot.recreate(served / "baskets.root") as f:
        f.mktree("t", {"x": np.float64, "n": np.int32})
        for part in parts:  # one basket per branch and call
            f["t"].extend(part)
    want = {k: np.concatenate([p[k] for p in parts]) for k in ("x", "n")}
    url = f"{base}{served}/baskets.root" if server == "xrootd" else f"{base}baskets.root"
    got = read_arrays(url, open_tree(url, "t"), "t", ["n", "x"])
    chunks = list(iterate(url, "t", ["n", "x"], step_size=300))
    assert [start for _, start in chunks] == list(range(0, 2100, 300))
    ((whole, start),) = iterate(
        url, "t", ["n", "x"], step_size="100 MB"
    )  # the project's default step
    assert start == 0
    for k, v in want.items():
        np.testing.assert_array_equal(got[k], v, err_msg=k)
        np.testing.assert_array_equal(np.concatenate([c[k] for c, _ in chunks]), v, err_msg=k)
        np.testing.assert_array_equal(whole[k], v, err_msg=k)


def test_glob_on_xrootd_directory(xrootd: tuple[str, Path], tmp_path: Path) -> None:
    """A glob in a root:// sample pattern lists the served directory (sorted, full URLs); none matching is an error."""
    base, served = xrootd
    sub = served / "glob"
    (sub / "deeper").mkdir(parents=True)
    sub.chmod(0o755)
    (sub / "deeper").chmod(0o755)
    for name in ("b_1.root", "a_0.root", "deeper/c_2.root", "other.txt"):
        write_flat_tree(sub / name, n_events=5)
    cfg_dict = tiny_config("data")
    cfg_dict["samples"]["signal"]["files"] = [f"{base}{sub}/*.root"]
    del cfg_dict["samples"]["signal"]["generate"]
    cfg_dict["samples"]["minbias"]["files"] = [f"{base}{sub}/nothing_*.root"]
    del cfg_dict["samples"]["minbias"]["generate"]
    cfg = load_config(write_config(tmp_path / "a", cfg_dict), base_dir=tmp_path)
    assert cfg.sample_files("signal") == [f"{base}{sub}/a_0.root", f"{base}{sub}/b_1.root"]
    with pytest.raises(
        InputFileError,
        match=r"samples\.minbias\.files: pattern 'root://.*nothing_\*\.root' matches no file",
    ):
        cfg.sample_files("minbias")


def test_unreachable_xrootd_file_one_line_no_output(
    xrootd: tuple[str, Path], tmp_path: Path
) -> None:
    """``hepsel apply`` on a file the server does not have: one line naming the URL and the server's answer, no output."""
    base, served = xrootd
    write_flat_tree(served / "here.root", n_events=5)
    missing = f"{base}{served}/missing.root"
    out = tmp_path / "out"
    proc = _hepsel(
        "apply",
        "--selection",
        str(tmp_path / "sel"),
        f"{base}{served}/here.root",
        missing,
        "-o",
        str(out),
        cwd=tmp_path,
    )
    line = _one_error_line(proc)
    assert repr(missing) in line
    assert "[3011]" in line and "no such file" in line.lower()  # the server's own answer
    assert not out.exists()


def test_unreachable_http_file_one_line_no_output(
    http_server: tuple[str, Path], tmp_path: Path
) -> None:
    base, _ = http_server
    missing = f"{base}missing.root"
    out = tmp_path / "out"
    proc = _hepsel(
        "apply", "--selection", str(tmp_path / "sel"), missing, "-o", str(out), cwd=tmp_path
    )
    line = _one_error_line(proc)
    assert repr(missing) in line
    assert "not found" in line
    assert not out.exists()


def test_prepare_unreachable_sample_file(xrootd: tuple[str, Path], tmp_path: Path) -> None:
    """The workflow's prepare step on a sample file the server does not have: one line, no table."""
    base, served = xrootd
    cfg = tiny_config("data")
    for s in ("signal", "minbias"):
        cfg["samples"][s]["files"] = [f"{base}{served}/gone_{s}.root"]
        del cfg["samples"][s]["generate"]
    path = write_config(tmp_path / "analyses" / "gone", cfg)
    proc = _hepsel(
        "prepare",
        "--config",
        str(path),
        "--sample",
        "signal",
        "--index",
        "0",
        "--no-progress",
        cwd=tmp_path,
    )
    line = _one_error_line(proc)
    assert f"'{base}{served}/gone_signal.root'" in line and "[3011]" in line
    assert not list(tmp_path.rglob("*.parquet"))


def test_snakemake_remote_glob_matching_nothing_one_line(
    xrootd: tuple[str, Path], tmp_path: Path
) -> None:
    """A root:// sample glob that matches nothing on the server stops Snakemake with one line, no traceback."""
    base, served = xrootd
    cfg = tiny_config("data")
    for s in ("signal", "minbias"):
        cfg["samples"][s]["files"] = [f"{base}{served}/none_{s}_*.root"]
        del cfg["samples"][s]["generate"]
    analysis = tmp_path / "analyses" / "tiny"
    write_config(analysis, cfg)
    proc = _snakemake(tmp_path, analysis, "-n")
    assert proc.returncode != 0
    lines = [x for x in proc.stderr.splitlines() if x.startswith("hepsel: error: ")]
    assert lines == [
        f"hepsel: error: samples.signal.files: pattern '{base}{served}/none_signal_*.root' matches no file"
    ], proc.stderr
    assert "Traceback" not in proc.stderr


def test_read_failure_of_a_url_names_the_server() -> None:
    """A read that fails mid-way over the network is not blamed on the file alone."""
    from hepsel.io.reading import corrupt_error

    err = corrupt_error(
        "root://host//d/f.root", "tree 't'", OSError("XRootD error: [FATAL] Socket timeout")
    )
    assert str(err) == (
        "root://host//d/f.root: tree 't' cannot be read (OSError: XRootD error: [FATAL] Socket timeout); "
        "the server stopped answering or refused the read, or the file is corrupt or truncated, or uses a layout uproot does not read"
    )
    local = corrupt_error("/d/f.root", "tree 't'", OSError("bad"))
    assert "server" not in str(local)


def test_generate_refuses_url_pattern(tmp_path: Path) -> None:
    """The simulation writes local files: a URL pattern with '{index}' and a 'generate' block is a config error."""
    cfg = tiny_config("root://localhost:1//data")
    proc = _hepsel(
        "prepare",
        "--config",
        str(write_config(tmp_path / "a", cfg)),
        "--sample",
        "signal",
        "--index",
        "0",
        cwd=tmp_path,
    )
    assert proc.returncode != 0
    assert "samples.signal: 'generate' writes local files" in proc.stderr


def _snakemake(workdir: Path, analysis: Path, *targets: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        "2",
        *targets,
        "--config",
        f"analysis={analysis}",
    ]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=workdir)


@pytest.mark.slow
def test_workflow_from_xrootd_equals_local(
    xrootd: tuple[str, Path], http_server: tuple[str, Path], tmp_path: Path
) -> None:
    """The tiny analysis from root:// inputs (a glob on the server) gives the scores.root of the local files,
    without local copies; the apply target reads an http:// input in place and equals ``hepsel apply`` on the local file."""
    base, served = xrootd
    http_base, http_dir = http_server
    models = {"fisher": {"type": "fisher"}}
    local = tmp_path / "local"
    local_analysis = local / "analyses" / "tiny"
    write_config(
        local_analysis, tiny_config("data", models=models, files=2, sig_events=1500, mb_events=6000)
    )
    proc = _snakemake(local, local_analysis, str(local / "results" / "tiny" / "scores.root"))
    assert proc.returncode == 0, proc.stderr[-4000:]

    data = served / "tiny"
    data.mkdir()
    data.chmod(0o755)
    for f in sorted((local / "data").glob("*.root")):
        shutil.copy(f, data / f.name)
        (data / f.name).chmod(0o644)
    shutil.copy(local / "data" / "signal_000.root", http_dir / "signal_000.root")
    cfg = tiny_config("data", models=models)
    for s in ("signal", "minbias"):
        cfg["samples"][s]["files"] = [f"{base}{data}/{s}_*.root"]
        del cfg["samples"][s]["generate"]
    cfg["apply"] = {"datasets": {"web": {"files": [f"{http_base}signal_000.root"]}}}
    remote = tmp_path / "remote"
    remote_analysis = remote / "analyses" / "tiny"
    write_config(remote_analysis, cfg)
    proc = _snakemake(
        remote, remote_analysis, str(remote / "results" / "tiny" / "scores.root"), "apply"
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert not (remote / "data").exists()  # nothing was copied to local files
    # the same URLs: nothing to rerun; another file at an index of the glob: that prepare job and a new one
    proc = _snakemake(
        remote, remote_analysis, "-n", str(remote / "results" / "tiny" / "scores.root")
    )
    assert proc.returncode == 0 and "Nothing to be done" in proc.stdout + proc.stderr, proc.stdout[
        -2000:
    ]
    shutil.copy(data / "signal_000.root", data / "signal_000b.root")
    (data / "signal_000b.root").chmod(0o644)
    proc = _snakemake(
        remote, remote_analysis, "-n", str(remote / "results" / "tiny" / "scores.root")
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout + proc.stderr
    counts = dict(
        line.split()
        for line in out.splitlines()
        if len(line.split()) == 2 and line.split()[1].isdigit()
    )
    assert counts.get("prepare") == "2", out[-3000:]
    (data / "signal_000b.root").unlink()

    with uproot.open(local / "results" / "tiny" / "scores.root") as f:
        want = f["scores"].arrays(library="np")
    with uproot.open(remote / "results" / "tiny" / "scores.root") as f:
        got = f["scores"].arrays(library="np")
    assert set(got) == set(want)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)

    # the apply job of the http:// input equals hepsel apply on the local copy
    proc = _hepsel(
        "apply",
        "--selection",
        str(remote / "results" / "tiny" / "selection"),
        str(local / "data" / "signal_000.root"),
        "-o",
        str(tmp_path / "applied"),
        "--no-progress",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    (applied,) = (remote / "results" / "tiny" / "apply" / "web").rglob("*_hepsel.root")
    for tree in ("hepsel", "hepsel_events"):
        with uproot.open(applied) as f:
            got_t = f[tree].arrays(library="np")
        with uproot.open(tmp_path / "applied" / "signal_000_hepsel.root") as f:
            want_t = f[tree].arrays(library="np")
        for k in want_t:
            np.testing.assert_array_equal(got_t[k], want_t[k], err_msg=f"{tree}.{k}")
