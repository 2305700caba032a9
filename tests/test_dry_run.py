"""`analyze --dry-run`: the frames it announces are the frames a run samples; it loads no model and writes nothing."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_batch.dry_run import plan_inputs
from fer_batch.options import AnalyzeOptions
from fer_batch.sources import frames_of, walk_inputs

REPO = Path(__file__).resolve().parent.parent


def write_clip(path: Path, fps: float, frames: int) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (64, 48))
    for i in range(frames):
        writer.write(np.full((48, 64, 3), (i * 7) % 255, np.uint8))
    writer.release()
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dry")
    write_clip(root / "ten.mp4", 10.0, 30)        # 3 s
    write_clip(root / "pal.mp4", 25.0, 101)       # 4.04 s
    cv2.imwrite(str(root / "photo.jpg"), np.zeros((32, 32, 3), np.uint8))
    (root / "empty.mp4").write_bytes(b"")
    (root / "notes.txt").write_text("not media")
    return root


@pytest.mark.parametrize("options", [
    {"fps": 5.0}, {"fps": 3.0}, {"fps": None}, {"fps": 30.0}, {"fps": 5.0, "max_frames": 4},
    {"fps": 5.0, "start_s": 0.5, "end_s": 2.5}, {"fps": 2.0, "start_s": 1.05}, {"fps": None, "start_s": 2.0, "end_s": 9.0},
])
def test_the_frames_announced_are_the_frames_sampled(folder, options):
    opts = AnalyzeOptions(**options)
    inputs, _ = walk_inputs([folder / "ten.mp4", folder / "pal.mp4"])
    for item, planned in zip(inputs, plan_inputs(inputs, opts)):
        sampled = list(frames_of(item, opts.fps, opts.max_frames, [], opts.video_window()))
        assert planned.frames == len(sampled), (item.source, options)


def test_a_start_past_the_end_and_an_empty_file_are_announced_as_failures(folder):
    inputs, _ = walk_inputs([folder])
    planned = {Path(p.source).name: p for p in plan_inputs(inputs, AnalyzeOptions(start_s=3.5))}
    assert planned["empty.mp4"].problem == "file is empty (0 bytes)"
    assert planned["ten.mp4"].problem == "the video is 3.00 s long, so --start 3.5 leaves nothing to analyse"
    assert planned["pal.mp4"].problem is None and planned["pal.mp4"].frames == 3   # 3.6, 3.8, 4.0 s
    assert planned["photo.jpg"].frames == 1
    assert planned["ten.mp4"].duration_s == 0.0 and planned["pal.mp4"].duration_s == pytest.approx(4.04 - 3.5)
    capped = {Path(p.source).name: p for p in plan_inputs(inputs, AnalyzeOptions(fps=5.0, max_frames=3))}
    assert capped["ten.mp4"].duration_s == pytest.approx(0.6)   # 3 frames at 5 a second, not the whole 3 s
    assert capped["pal.mp4"].duration_s == pytest.approx(0.6)
    every = {Path(p.source).name: p for p in plan_inputs(inputs, AnalyzeOptions(fps=None, max_frames=3))}
    assert every["pal.mp4"].duration_s == pytest.approx(0.12)   # its own 25 frames a second


def test_the_duration_listed_is_the_stretch_analysed(folder):
    inputs, _ = walk_inputs([folder / "pal.mp4"])
    whole, = plan_inputs(inputs, AnalyzeOptions())
    stretch, = plan_inputs(inputs, AnalyzeOptions(start_s=1.0, end_s=2.5))
    assert whole.duration_s == pytest.approx(4.04) and stretch.duration_s == pytest.approx(1.5)


def test_dry_run_lists_and_totals_without_loading_a_model_or_writing(folder, tmp_path):
    script = ("import sys\nfrom fer_batch.cli import app\n"
              "try:\n    app(sys.argv[1:])\nexcept SystemExit as exc:\n    code = exc.code\n"
              "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'a model was loaded'\n"
              "sys.exit(code)\n")
    done = subprocess.run([sys.executable, "-c", script, "analyze", str(folder), "--dry-run", "--fps", "5",
                           "--out", str(tmp_path / "out" / "report.html")],
                          env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr   # empty.mp4 would fail, as in a real run
    lines = done.stdout.splitlines()
    ten = next(line for line in lines if line.endswith("ten.mp4"))
    assert ten.split()[:3] == ["video", "3.0", "s"] and ten.split()[3] == "15"
    assert any("empty.mp4  (would fail: file is empty (0 bytes))" in line for line in lines)
    assert "4 input(s): 3 video(s), 1 photo(s); 7.0 s of video; about 37 frame(s) to analyse; 1 would fail; 1 skipped" in lines
    assert lines[-1] == f"skipped: {folder / 'notes.txt'} (not a video or image file extension)"
    assert not (tmp_path / "out").exists()

    good = subprocess.run([sys.executable, "-m", "fer_batch", "analyze", str(folder / "ten.mp4"), str(folder / "photo.jpg"),
                           "--dry-run", "--fps", "5"], env=dict(os.environ, PYTHONPATH=str(REPO)),
                          capture_output=True, text=True, timeout=300)
    assert good.returncode == 0, good.stderr


@pytest.mark.parametrize("args, message", [
    (["--fps", "nan"], "--fps must be a positive number"), (["--fps", "inf"], "--fps must be a positive number"),
    (["--min-score", "1.5"], "--min-score must be between 0 and 1"), (["--max-side", "0"], "--max-side must be at least 32"),
    (["--smooth", "-1"], "--smooth must be 0 or more seconds"), (["--segment-seconds", "nan"], "--segment-seconds must be positive"),
    (["--batch-size", "100000000"], "--batch-size must be between 1 and 1024"),   # it was killed for its memory
])
def test_bad_numbers_are_refused_before_any_work_even_in_a_dry_run(folder, args, message):
    done = subprocess.run([sys.executable, "-m", "fer_batch", "analyze", str(folder), "--dry-run", *args],
                          env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stderr.startswith("fer-batch: " + message) and "Traceback" not in done.stderr
