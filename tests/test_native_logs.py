"""A normal run prints nothing from TensorFlow's, TF Lite's or Ray's native start-up on stderr; real messages do."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2

from fer_batch.native_logs import is_start_up_noise, quiet_native_stderr

REPO = Path(__file__).resolve().parent.parent

# lines seen on this project's CPU machines (TensorFlow 2.21, Ray 2.x), written by C++ to file descriptor 2
SEEN_NOISE = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796212510.100984    2112 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.",
    "E0000 00:00:1796212516.091568    2112 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
    "[2026-12-02 11:58:37,985 I 3588 3588] logging.cc:303: Set ray log level from environment variable RAY_BACKEND_LOG_LEVEL to 2",
]


def test_known_start_up_lines_are_noise_and_real_problems_are_not():
    assert all(is_start_up_noise(line) for line in SEEN_NOISE)
    assert not is_start_up_noise("E0000 gpu_device.cc:2344] Cannot dlopen some GPU libraries.")
    assert not is_start_up_noise("ResourceExhaustedError: OOM when allocating tensor")
    assert not is_start_up_noise("Segmentation fault")


def test_native_writes_to_stderr_are_filtered_not_swallowed(capfd):
    with quiet_native_stderr():
        for line in SEEN_NOISE:
            os.write(2, (line + "\n").encode())
        os.write(2, b"E0000 something.cc:1] a real failure\n")
        print("python's own warning", file=sys.stderr)
    err = capfd.readouterr().err
    assert sorted(err.splitlines()) == ["E0000 something.cc:1] a real failure", "python's own warning"]


def test_the_block_s_exception_still_reaches_the_caller_and_stderr_is_restored(capfd):
    try:
        with quiet_native_stderr():
            os.write(2, b"a line before the failure\n")
            raise ValueError("boom")
    except ValueError as exc:
        assert str(exc) == "boom"
    os.write(2, b"after\n")
    assert capfd.readouterr().err.splitlines() == ["a line before the failure", "after"]


def test_a_quiet_run_on_this_cpu_machine_prints_nothing_at_all(tmp_path, astronaut_bgr):
    """`fer-batch analyze --quiet` loads TensorFlow, MTCNN and the TF Lite classifier: on a machine without CUDA
    each used to print CUDA and XNNPACK lines, among them 'failed call to cuInit: ... CUDA error'."""
    photo = tmp_path / "in" / "face.jpg"
    photo.parent.mkdir()
    cv2.imwrite(str(photo), astronaut_bgr)
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env.update(PYTHONPATH=str(REPO), FER_BATCH_CACHE=str(tmp_path / "cache"))
    done = subprocess.run([sys.executable, "-m", "fer_batch", "analyze", str(photo.parent), "--quiet",
                           "--out", str(tmp_path / "report.html")], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""
    assert (tmp_path / "report_csv" / "summary.csv").read_text().count("face.jpg") == 1
