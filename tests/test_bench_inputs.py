"""`fer-batch bench` refuses, before any measuring, an input it cannot measure on and outputs it could not write."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest


def run_bench(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fer_batch", "bench", *args, "--no-peer", "--name", "b"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)


def assert_refused(result: subprocess.CompletedProcess, *words: str) -> None:
    """Exit status 2 and one sentence on stderr holding `words`."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def no_reports(tmp_path: Path) -> bool:
    return not list(tmp_path.rglob("*.md")) and not list(tmp_path.rglob("*.json"))


def write_video(path: Path, frames: int) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    rng = np.random.default_rng(0)
    for _ in range(frames):
        writer.write(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    writer.release()
    return path


def write_file(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("make, words", [
    (lambda folder: folder / "nonexist.mp4", ["nonexist.mp4", "no such file"]),
    (lambda folder: write_file(folder / "empty.mp4", b""), ["empty.mp4", "empty"]),
    (lambda folder: write_file(folder / "text.mp4", b"hello\n"), ["text.mp4", "not a readable video"]),
    (lambda folder: write_file(folder / "text.jpg", b"hello\n"), ["text.jpg", "not a video"]),
    (lambda folder: write_file(folder / "notes.txt", b"hello\n"), ["notes.txt", "not a video"]),
    (lambda folder: write_video(folder / "zero.avi", frames=0), ["zero.avi", "no frame"]),
], ids=["missing", "empty", "text-mp4", "text-jpg", "txt", "no-frames"])
def test_a_video_that_cannot_be_measured_on_is_refused(tmp_path, make, words):
    video = make(tmp_path)
    result = run_bench(tmp_path, str(video), "--json", "out.json", "--reports", "reports", "--max-frames", "2")
    assert_refused(result, *words)
    assert no_reports(tmp_path)


@pytest.mark.parametrize("max_frames", ["0", "-1"])
def test_max_frames_below_one_is_refused(tmp_path, max_frames):
    video = write_video(tmp_path / "clip.avi", frames=3)
    result = run_bench(tmp_path, str(video), "--json", "out.json", "--reports", "reports", "--max-frames", max_frames)
    assert_refused(result, "--max-frames", "at least 1")
    assert no_reports(tmp_path)


def test_reports_that_is_a_file_is_refused_before_measuring(tmp_path):
    video = write_video(tmp_path / "clip.avi", frames=3)
    (tmp_path / "reports").write_text("not a folder\n")
    result = run_bench(tmp_path, str(video), "--json", "out.json", "--reports", "reports", "--max-frames", "2")
    assert_refused(result, "--reports", "reports", "not a folder")
    assert no_reports(tmp_path)


def test_reports_in_an_unwritable_place_is_refused_before_measuring(tmp_path):
    video = write_video(tmp_path / "clip.avi", frames=3)
    (tmp_path / "file").write_text("a file, not a folder\n")
    result = run_bench(tmp_path, str(video), "--reports", "file/reports", "--max-frames", "2")
    assert_refused(result, "--reports", "file/reports")
    assert no_reports(tmp_path)


def test_json_that_is_a_folder_is_refused_before_measuring(tmp_path):
    video = write_video(tmp_path / "clip.avi", frames=3)
    (tmp_path / "out").mkdir()
    result = run_bench(tmp_path, str(video), "--json", "out", "--reports", "reports", "--max-frames", "2")
    assert_refused(result, "--json", "out", "is a folder")
    assert no_reports(tmp_path)


def test_earlier_bench_reports_may_be_replaced(tmp_path):
    """A bench run again under its name replaces its .md and .json (the report check refuses other files)."""
    from fer_batch.bench import check_bench

    (tmp_path / "bench.md").write_text("earlier")
    (tmp_path / "bench.json").write_text("{}")
    check_bench(None, tmp_path / "bench.json", tmp_path, "bench", max_frames=5)
    assert (tmp_path / "bench.md").read_text() == "earlier"   # checked, not written yet
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8\xff")
    with pytest.raises(ValueError, match="is an existing file that is not a .json file"):
        check_bench(None, photo, tmp_path, "bench", max_frames=5)
    with pytest.raises(ValueError, match="cannot bench"):
        check_bench(tmp_path / "missing.mp4", None, tmp_path / "new-reports", "bench")
    assert not (tmp_path / "new-reports").exists()   # a refused video leaves no output folder behind
