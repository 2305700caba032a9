"""--backend ray on this machine's CPUs (2 in CI): the CSVs of a local run, row for row, with a long video cut
into segments (its face's track runs across the boundaries) and a variable-frame-rate one (its seeking proves
inexact, so its segments are read again from the start); a cluster joined with --address stays up after the run,
a local instance is stopped by it; workers killed mid-run are restarted by Ray and the result is still complete."""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import pandas as pd
import pytest

from fer_batch.export import ROOT_FOLDER
from test_bad_inputs import ENV, face_frames, face_photo, restamp_mp4, write_video

try:
    import ray  # noqa: F401
except ImportError:
    if os.environ.get("CI"):  # scripts/test.sh installs the ray extra: in CI these tests must run
        raise
    pytest.skip("the Ray backend's tests need Ray: pip install 'fer-batch[ray]'", allow_module_level=True)

OPTIONS = ["--quiet", "--fps", "5"]
RAY_OPTIONS = ["--backend", "ray", "--segment-seconds", "5"]
ACTOR_TITLE = b"ray::AnalyzerActor"
# a cluster secured as README says, with a token of its own (nothing is read from or written to ~/.ray)
RAY_ENV = dict(ENV, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))


def run_cli(*args: str, timeout: float | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fer_batch", "analyze", *args], env=RAY_ENV, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, astronaut_bgr) -> Path:
    root = tmp_path_factory.mktemp("ray") / "inputs"
    (root / "photos").mkdir(parents=True)
    # 12.5 s, the face crossing the frame slowly: one track through the segments 0-5, 5-10 and 10-12.5 s
    write_video(root / "long.mp4", face_frames(astronaut_bgr, 125, size=(240, 150)))
    # the same frames 0.15 s apart, then 0.05 s apart: OpenCV's frame numbers after a seek are wrong here
    (root / "vfr.mp4").write_bytes(restamp_mp4((root / "long.mp4").read_bytes(), [(60, 1536), (65, 512)]))
    write_video(root / "short.mp4", face_frames(astronaut_bgr, 20))
    cv2.imwrite(str(root / "photos" / "a.jpg"), face_photo(astronaut_bgr))
    cv2.imwrite(str(root / "photos" / "b.png"), face_photo(astronaut_bgr, 160, flip=True))
    (root / "photos" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    (root / "notes.txt").write_text("not media")
    return root


@pytest.fixture(scope="module")
def local_run(inputs, tmp_path_factory) -> Path:
    """The CSV folder of a local run: the reference."""
    out = tmp_path_factory.mktemp("local")
    done = run_cli(*OPTIONS, "--out", str(out / "report.html"), str(inputs))
    assert done.returncode == 1, done.stderr  # broken.jpg
    return out / "report_csv"


@pytest.fixture(scope="module")
def local_csvs(local_run) -> dict[str, pd.DataFrame]:
    return read_all_csvs(local_run)


def read_all_csvs(csv_dir: Path) -> dict[str, pd.DataFrame]:
    return {str(path.relative_to(csv_dir)): pd.read_csv(path, keep_default_na=False)
            for path in sorted(csv_dir.rglob("*.csv"))}


def assert_same_csvs(got: dict[str, pd.DataFrame], expected: dict[str, pd.DataFrame]) -> None:
    assert sorted(got) == sorted(expected)
    for name, frame in expected.items():
        pd.testing.assert_frame_equal(got[name], frame, check_exact=True, obj=name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def descendants(pid: int) -> dict[int, bytes]:
    """The processes below `pid` (this test's own), by id, with the first word of their command line."""
    children: dict[int, list[int]] = {}
    titles: dict[int, bytes] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            titles[int(entry)] = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    found, stack = {}, [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found[child] = titles.get(child, b"")
            stack.append(child)
    return found


def wait_until_listening(head: subprocess.Popen, port: int, limit: float = 180.0) -> None:
    """Until the head answers on its port. Popen returns as soon as `ray start` is launched; on a loaded machine
    a test's first client could come before the head listens, and the CLI rightly reports a refused connection."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if head.poll() is not None:
            pytest.fail(f"ray start --head exited ({head.returncode}): {head.stderr.read().decode()[-2000:]}")
        with socket.socket() as probe:
            probe.settimeout(1.0)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    pytest.fail(f"the Ray head did not answer on port {port} within {limit:.0f} s")


def alive(pid: int) -> bool:
    try:
        return not Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def cluster():
    """A one-node Ray cluster started as a user would (`ray start --head`), stopped by its own process id."""
    port = free_port()
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    head = subprocess.Popen([shutil.which("ray") or "ray", "start", "--head", "--block", f"--port={port}",
                             "--num-cpus=2", "--include-dashboard=false", f"--temp-dir={temp_dir}", "--disable-usage-stats"],
                            env=RAY_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        wait_until_listening(head, port)
        yield head, f"127.0.0.1:{port}"
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_run_joining_a_cluster_resumes_a_local_run_into_its_csvs(inputs, local_run, local_csvs, cluster, tmp_path):
    """An interrupted local run (two inputs journalled) resumed on the cluster: the rest is analysed there."""
    head, address = cluster
    csv_dir = tmp_path / "report_csv"
    shutil.copytree(local_run, csv_dir)
    journal = csv_dir / ".fer-batch" / "journal.jsonl"
    header, *entries = journal.read_text().splitlines()
    kept = [line for line in entries if json.loads(line).get("source", "").endswith(("short.mp4", "b.png"))]
    assert len(kept) == 2
    journal.write_text("\n".join([header, *kept]) + "\n")
    for csv in csv_dir.rglob("*.csv"):
        csv.unlink()

    done = run_cli(*OPTIONS, *RAY_OPTIONS, "--address", address, "--resume", "--out", str(tmp_path / "report.html"),
                   str(inputs))
    assert done.returncode == 1, done.stderr
    got = read_all_csvs(csv_dir)
    assert_same_csvs(got, local_csvs)
    assert (tmp_path / "report.html").stat().st_size > 100_000
    assert head.poll() is None, "the run must leave a cluster it joined running"

    rel = f"{ROOT_FOLDER}/{str(inputs).lstrip('/')}"
    long = got[f"{rel}/long.mp4.csv"]
    assert long["time_s"].min() < 5.0 and long["time_s"].max() >= 10.0  # frames of all three segments
    assert long["face"].ne("").all() and long["track_id"].nunique() == 1  # one track across both boundaries
    assert got["errors.csv"]["input"].tolist() == [os.path.join(str(inputs), "photos", "broken.jpg")]


def test_workers_killed_mid_run_are_restarted_and_the_result_is_complete(inputs, local_csvs, tmp_path):
    command = [sys.executable, "-m", "fer_batch", "analyze", *OPTIONS, *RAY_OPTIONS, "--workers", "2",
               "--out", str(tmp_path / "report.html"), str(inputs)]
    run = subprocess.Popen(command, env=RAY_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen: dict[int, set[bytes]] = {}  # every title each process had (an exiting one's is empty)
    killed: list[int] = []
    try:
        while run.poll() is None:
            below = descendants(run.pid)
            for pid, title in below.items():
                seen.setdefault(pid, set()).add(title)
            actors = [pid for pid, title in below.items() if title.startswith(ACTOR_TITLE)]
            busy = [pid for pid in actors if b".analyze" in below[pid]]
            if not killed and len(busy) == 2:  # both workers in the middle of a unit
                for pid in actors:
                    os.kill(pid, signal.SIGKILL)
                killed = actors
            time.sleep(0.05)
        stderr = run.stderr.read().decode()
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 1 and "Traceback" not in stderr, stderr
    assert killed, "the run ended before both workers were seen analysing"
    assert_same_csvs(read_all_csvs(tmp_path / "report_csv"), local_csvs)
    restarted = [pid for pid, titles in seen.items()
                 if pid not in killed and any(title.startswith(ACTOR_TITLE) for title in titles)]
    assert len(restarted) >= 2, f"Ray should have restarted the killed workers: {seen}"
    ray_processes = [pid for pid, titles in seen.items() if any(b"raylet" in t or b"gcs_server" in t for t in titles)]
    assert ray_processes and not any(alive(pid) for pid in ray_processes), "the local Ray instance must be stopped"


def test_an_address_where_no_cluster_answers_is_one_sentence(inputs, tmp_path):
    """Ray itself retried such an address for over ten minutes, printing its native warnings (the timeout only keeps
    a regression from hanging the suite)."""
    done = run_cli(*OPTIONS, *RAY_OPTIONS, "--address", f"127.0.0.1:{free_port()}", "--out",
                   str(tmp_path / "report.html"), str(inputs / "photos"), timeout=600)
    assert done.returncode == 2
    assert done.stderr.startswith("fer-batch: could not join the Ray cluster at 127.0.0.1:"), done.stderr
    assert done.stderr.count("\n") == 1, done.stderr


def test_an_address_where_a_web_server_answers_is_one_sentence(inputs, tmp_path):
    """Something other than Ray at the address (here a web server): Ray retried it for over ten minutes too."""
    import http.server
    import threading

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        address = f"127.0.0.1:{server.server_address[1]}"
        done = run_cli(*OPTIONS, *RAY_OPTIONS, "--address", address, "--out", str(tmp_path / "report.html"),
                       str(inputs / "photos"), timeout=600)
    finally:
        server.shutdown()
    assert done.returncode == 2
    assert done.stderr.startswith(f"fer-batch: could not join the Ray cluster at {address} (what answers at "
                                  f"{address} is not a Ray cluster: it answered b'"), done.stderr
    assert done.stderr.count("\n") == 1, done.stderr


def test_a_cluster_that_refuses_the_token_is_one_sentence_without_ray_s_retries(inputs, cluster, tmp_path):
    """Ray printed a native warning a second while it retried with the wrong token, then gave up."""
    head, address = cluster
    wrong = dict(RAY_ENV, RAY_AUTH_TOKEN=secrets.token_hex(32))
    done = subprocess.run([sys.executable, "-m", "fer_batch", "analyze", *OPTIONS, *RAY_OPTIONS, "--address", address,
                           "--csv-dir", str(tmp_path / "csv"), str(inputs / "photos")],
                          env=wrong, capture_output=True, text=True, timeout=600)
    assert done.returncode == 2
    assert done.stderr.startswith(f"fer-batch: could not start or join the Ray cluster at {address} ("), done.stderr
    assert "the cluster refused this process's authentication token" in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert head.poll() is None


def test_a_run_refused_by_its_workers_leaves_the_earlier_run_s_outputs_and_journal(inputs, local_run, tmp_path):
    """A model the workers cannot load stops the run before the journal and CSVs are touched, as in a local run
    (the workers used to load it only after the earlier run's CSVs had been deleted)."""
    csv_dir = tmp_path / "report_csv"
    shutil.copytree(local_run, csv_dir)

    def contents() -> dict[Path, bytes]:
        return {path: path.read_bytes() for path in csv_dir.rglob("*") if path.is_file() and path.name != "lock"}

    before = contents()
    done = run_cli(*OPTIONS, *RAY_OPTIONS, "--model", str(tmp_path / "missing.keras"), "--out",
                   str(tmp_path / "report.html"), str(inputs))
    assert done.returncode == 2 and "missing.keras does not exist" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert contents() == before


CTRL_C_IN_RAY_INIT = """
import signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)   # as in a terminal (CI's background job ignores it)
import ray
from fer_batch import ray_backend
from fer_batch.options import AnalyzeOptions

real_init, events = ray.init, []
def init_hit_by_ctrl_c(*args, **kwargs):
    signal.raise_signal(signal.SIGINT)   # Ctrl-C while Ray starts (inside it, the process crashed at exit: -11)
    events.append("init went on")
    return real_init(*args, **kwargs)
ray.init = init_hit_by_ctrl_c
try:
    with ray_backend.ray_session(AnalyzeOptions(backend="ray")):
        events.append("session body ran")
except KeyboardInterrupt:
    events.append("KeyboardInterrupt")
print(events, ray.is_initialized())
"""


def test_a_ctrl_c_while_ray_starts_waits_for_it_then_stops_it():
    done = subprocess.run([sys.executable, "-c", CTRL_C_IN_RAY_INIT], env=RAY_ENV, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "['init went on', 'KeyboardInterrupt'] False"
