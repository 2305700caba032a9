from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("FER_BATCH_SHARED", REPO.parent / "shared"))
# the classifier's converted model (fer_batch/lite.py) is cached for the session here, not in the user's home;
# subprocesses started by the tests inherit it
os.environ.setdefault("FER_BATCH_CACHE", tempfile.mkdtemp(prefix="fer-batch-test-cache-"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the clone; tests that need it skip when it is absent (a user's clone)."""
    if not (SHARED / "data").is_dir():
        pytest.skip("../shared is absent; this test needs the project's shared data")
    return SHARED


@pytest.fixture(scope="session")
def astronaut_bgr():
    """A real face photo that scikit-image ships (512x512 RGB), as BGR."""
    import cv2
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium; skipped on a user's machine without it, an error in CI (where .ci/run installs it)."""
    from fer_batch.browser import HeadlessChromium, find_chromium

    if find_chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("no Chromium binary found in CI: scripts/test.sh should have installed Debian's chromium")
        pytest.skip("no Chromium binary found (Debian package `chromium`); the browser check needs one")
    with HeadlessChromium() as chromium:
        yield chromium


@pytest.fixture
def train_refusal(tmp_path, monkeypatch, capsys):
    """train.py with these extra options on empty data folders (`--epochs 3 --out m.keras`): asserts it stops with
    exit code 2 before writing anything, and gives its last line on stderr (argparse's usage comes first)."""
    def refuse(options: list[str]) -> str:
        from training.train import main as train_main

        monkeypatch.chdir(tmp_path)
        (tmp_path / "faces").mkdir(exist_ok=True)
        (tmp_path / "val").mkdir(exist_ok=True)
        with pytest.raises(SystemExit) as stopped:
            train_main(["--data", "faces", "--val-data", "val", "--epochs", "3", "--out", "m.keras", *options])
        assert stopped.value.code == 2
        assert not (tmp_path / "m.ckpt").exists()
        return capsys.readouterr().err.strip().splitlines()[-1]
    return refuse
