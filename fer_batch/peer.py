"""Starting the peer, the `fer` package, in its own interpreter (scripts/install_peer.sh makes it).

fer needs OpenCV 4.x and fer-batch pins OpenCV 5, so the peer never runs in fer-batch's environment: its
runner, fer_batch/peer_runner.py, is started as a subprocess of the peer's Python.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

RUNNER = Path(__file__).with_name("peer_runner.py")
ENV_VAR = "FER_BATCH_PEER_PYTHON"
VENV_PYTHON = Path(".peer-venv") / "bin" / "python"
INSTALL_HINT = "scripts/install_peer.sh"


class PeerUnavailable(RuntimeError):
    """The peer interpreter is missing or the peer failed; the message is one sentence for reports."""


def default_peer_python() -> Path | None:
    """$FER_BATCH_PEER_PYTHON, else .peer-venv/bin/python in the current folder or in the repo of this package."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    for root in (Path.cwd(), Path(__file__).resolve().parent.parent):
        if (root / VENV_PYTHON).exists():
            return root / VENV_PYTHON
    return None


def run_runner(peer_python: Path | None, args: list[str], timeout: float) -> str:
    """Run peer_runner.py with `args` under the peer's interpreter and return its stdout; PeerUnavailable when it cannot or fails."""
    if peer_python is None:
        raise PeerUnavailable(f"the peer (`fer`) is not installed: no .peer-venv/ and no ${ENV_VAR} ({INSTALL_HINT} makes one)")
    if not Path(peer_python).exists():
        raise PeerUnavailable(f"the peer (`fer`) is not installed: {peer_python} does not exist ({INSTALL_HINT} makes it)")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        done = subprocess.run([str(peer_python), "-I", str(RUNNER), *args], capture_output=True, text=True,
                              timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise PeerUnavailable(f"the peer did not finish within {timeout:.0f} s") from None
    except OSError as exc:
        raise PeerUnavailable(f"the peer interpreter {peer_python} could not start: {exc}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise PeerUnavailable(f"the peer failed under {peer_python}: {last}")
    return done.stdout


def peer_video_fps(peer_python: Path | None, video: Path, mtcnn: bool = False, max_frames: int | None = None,
                   timeout: float = 3600) -> dict:
    """fer's own pipeline on every frame of `video`: {"frames", "faces", "seconds", "fps", "detector", ...}."""
    args = ["video", str(Path(video).resolve())]
    if mtcnn:
        args.append("--mtcnn")
    if max_frames:
        args += ["--max-frames", str(max_frames)]
    stdout = run_runner(peer_python, args, timeout)
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise PeerUnavailable("the peer printed no result")
    return json.loads(lines[-1])


def peer_photos(peer_python: Path | None, image_dir: Path, boxes: dict[str, list], out_dir: Path,
                mtcnn: bool = False, timeout: float = 4 * 3600) -> dict:
    """fer's detections and emotion scores on photos, and its scores on the given x1, y1, x2, y2 boxes."""
    out_dir.mkdir(parents=True, exist_ok=True)
    request, answer = out_dir / "peer-request.json", out_dir / "peer-answer.json"
    request.write_text(json.dumps({"image_dir": str(Path(image_dir).resolve()), "images": boxes}))
    try:
        run_runner(peer_python, ["photos", str(request.resolve()), str(answer.resolve())] + (["--mtcnn"] if mtcnn else []),
                   timeout)
        return json.loads(answer.read_text())
    finally:
        request.unlink(missing_ok=True)
        answer.unlink(missing_ok=True)


def mtcnn_available(peer_python: Path | None) -> bool:
    """Whether the peer's environment has facenet-pytorch (fer's mtcnn=True)."""
    if peer_python is None or not Path(peer_python).exists():
        return False
    done = subprocess.run([str(peer_python), "-I", "-c", "import importlib.util as u; "
                           "raise SystemExit(0 if u.find_spec('facenet_pytorch') and u.find_spec('torch') else 1)"],
                          capture_output=True)
    return done.returncode == 0
