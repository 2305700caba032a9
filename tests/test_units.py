"""The distributed backend's bookkeeping, without Ray: videos cut into time segments give back exactly the frames,
indices, times and decode notes of a whole-video decode (seeking where it is exact, reading from the start where
it is not); the joiner hands inputs on in input order; the units analysed in this process give the outcomes of a
local run. And: the local path never imports Ray, and a missing Ray is one clear sentence."""
from __future__ import annotations

import os
import subprocess
import sys
from collections import deque
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from fer_batch.joiner import Joiner
from fer_batch.options import AnalyzeOptions
from fer_batch.pipeline import InputOutcome
from fer_batch.sources import InputFailure, WindowEdges, frames_of, walk_inputs
from fer_batch.types import Faces, FrameResult, InputError
from fer_batch.units import UnitResult, WorkUnit, plan_units, segment_windows
from test_bad_inputs import ENV, face_frames, face_photo, overwrite_frames, restamp_mp4, write_video


@pytest.fixture(scope="module")
def videos(tmp_path_factory, astronaut_bgr) -> Path:
    root = tmp_path_factory.mktemp("segments")
    write_video(root / "cfr.mp4", face_frames(astronaut_bgr, 125, size=(240, 150)))
    (root / "vfr.mp4").write_bytes(restamp_mp4((root / "cfr.mp4").read_bytes(), [(60, 1536), (65, 512)]))
    write_video(root / "intact.avi", face_frames(astronaut_bgr, 60), fourcc="MJPG")
    intact = (root / "intact.avi").read_bytes()
    # 8 undecodable frames (1.2-2.0 s) across the 1.6 s boundary; 35 (1.5-5.0 s): a whole decode gives up there
    (root / "damaged.avi").write_bytes(overwrite_frames(intact, range(12, 20), lambda n: bytes(n)))
    (root / "ruined.avi").write_bytes(overwrite_frames(intact, range(15, 50), lambda n: bytes(n)))
    return root


def test_segments_start_on_sampling_instants_and_cover_the_video():
    windows = segment_windows(12.5, 5.0, 5.0)
    assert [(w.start_s, w.end_s, w.seek) for w in windows] == [(0.0, 5.0, False), (5.0, 10.0, True), (10.0, None, True)]
    assert [w.start_s for w in segment_windows(12.5, 3.0, 5.0)] == [0.0, 15 * (1 / 3), 30 * (1 / 3)]  # 15 samples each
    assert [w.start_s for w in segment_windows(10.0, None, 4.0)] == [0.0, 4.0, 8.0]
    assert len(segment_windows(5.0, 5.0, 5.0)) == 1


def test_segments_of_a_start_end_stretch_stay_inside_it_and_on_the_sampling_grid():
    windows = segment_windows(12.5, 5.0, 5.0, start_s=3.3, end_s=11.0)
    assert [(w.start_s, w.end_s, w.seek) for w in windows] == [(3.3, 5.0, False), (5.0, 10.0, True), (10.0, 11.0, True)]
    assert [(w.start_s, w.end_s) for w in segment_windows(12.5, 5.0, 5.0, start_s=5.0)] == [(5.0, 10.0), (10.0, None)]
    assert [(w.start_s, w.end_s) for w in segment_windows(12.5, 5.0, 5.0, end_s=4.0)] == [(0.0, 4.0)]
    assert [(w.start_s, w.end_s) for w in segment_windows(12.5, 5.0, 5.0, start_s=20.0)] == [(20.0, None)]


def test_plan_keeps_input_order_cuts_long_videos_and_groups_photos(videos, tmp_path):
    for name in ("a.jpg", "b.jpg"):
        cv2.imwrite(str(tmp_path / name), np.zeros((8, 8, 3), np.uint8))
    items = walk_inputs([tmp_path / "a.jpg", videos / "cfr.mp4", tmp_path / "b.jpg", videos / "intact.avi"])[0]
    units = plan_units(items, AnalyzeOptions(fps=5.0, segment_s=7.0))  # 12.5 s and 6 s videos
    assert [([i.path.name for i in u.items], u.segment, u.segments) for u in units] == [
        (["a.jpg"], 0, 1), (["cfr.mp4"], 0, 2), (["cfr.mp4"], 1, 2), (["b.jpg"], 0, 1), (["intact.avi"], 0, 1)]
    assert [u.key for u in units] == list(range(5))
    assert all(u.segments == 1 for u in plan_units(items, AnalyzeOptions(fps=5.0, segment_s=5.0, max_frames=10)))
    assert all(u.segments == 1 for u in plan_units(items, AnalyzeOptions(fps=5.0, segment_s=5.0, detect_every=3)))
    photos = walk_inputs([tmp_path])[0] * 20
    assert [len(u.items) for u in plan_units(photos, AnalyzeOptions())] == [16, 16, 8]


def decode_only(unit: WorkUnit, fps: float | None) -> UnitResult:
    """A unit's frames as a worker decodes them, without faces: what the joiner's bookkeeping works on."""
    item = unit.items[0]
    outcome = InputOutcome(item)
    edges = WindowEdges() if unit.window is not None else None
    try:
        for frame in frames_of(item, fps, None, outcome.problems, unit.window, edges):
            outcome.results.append(FrameResult(frame.source, frame.index, frame.time_s, Faces.empty(), thumbnails=[]))
    except InputFailure as exc:
        outcome.error = InputError(item.source, exc.stage, exc.reason)
    return UnitResult(unit, [outcome], edges)


@pytest.mark.parametrize("fps", [5.0, None])
@pytest.mark.parametrize("name, segment_s, rereads, stretch", [
    ("cfr.mp4", 5.0, 0, {}),        # constant frame rate: every seek is exact
    ("vfr.mp4", 5.0, 2, {}),        # OpenCV's frame numbers after a seek are wrong: both later segments read again
    ("damaged.avi", 1.6, 1, {}),    # the segment starting inside the broken stretch counts fewer broken frames
    ("ruined.avi", 1.6, None, {}),  # a whole decode gives up in the stretch; so do the segments after it
    ("cfr.mp4", 3.0, 0, {"start_s": 2.1, "end_s": 11.3}),   # --start/--end: the stretch, off the grid at both ends
    ("vfr.mp4", 3.0, None, {"start_s": 2.1, "end_s": 11.3}),
    ("damaged.avi", 1.6, None, {"start_s": 0.5, "end_s": 4.0}),
])
def test_segments_joined_are_the_frames_of_a_whole_video_decode(videos, name, segment_s, rereads, stretch, fps):
    item = walk_inputs([videos / name])[0][0]
    options = AnalyzeOptions(fps=fps, segment_s=segment_s, **stretch)
    whole_problems: list[str] = []
    whole = [(f.index, f.time_s) for f in frames_of(item, fps, None, whole_problems, options.video_window())]
    units = plan_units([item], options)
    assert len(units) > 2
    joined: list[InputOutcome] = []
    joiner = Joiner([item], units, joined.append)
    queue, read_again = deque(reversed(units)), 0  # the last segment first: results arrive in any order
    while queue:
        again = joiner.add(decode_only(joiner.prepare(queue.popleft()), fps))
        read_again += len(again)
        queue.extendleft(again)
    assert joiner.done and len(joined) == 1
    assert [(r.index, r.time_s) for r in joined[0].results] == whole
    if stretch:
        assert stretch["start_s"] <= whole[0][1] and whole[-1][1] < stretch["end_s"]
    assert joined[0].problems == whole_problems and joined[0].error is None
    if rereads is not None:
        assert read_again == rereads


def test_joiner_hands_inputs_on_in_input_order_and_a_lost_segment_keeps_the_frames_before_it(videos, tmp_path):
    cv2.imwrite(str(tmp_path / "a.jpg"), np.zeros((8, 8, 3), np.uint8))
    items = walk_inputs([videos / "cfr.mp4", tmp_path / "a.jpg"])[0]
    units = plan_units(items, AnalyzeOptions(fps=5.0, segment_s=5.0))
    done: list[InputOutcome] = []
    frames: list[int] = []
    joiner = Joiner(items, units, done.append, frames.append)
    joiner.add(UnitResult(units[3], [InputOutcome(items[1])]))
    assert done == []  # the photo waits for the video before it
    joiner.add(decode_only(units[0], 5.0))
    joiner.fail(units[2], "its Ray worker process kept dying while analysing it, on 2 workers (ActorDiedError)")
    assert done == []
    joiner.add(decode_only(units[1], 5.0))
    assert [o.item.source for o in done] == [items[0].source, items[1].source] and joiner.done
    video = done[0]
    assert [r.index for r in video.results] == list(range(0, 100, 2))  # segments 0 and 1: 0-10 s at 5 fps
    assert video.error == InputError(items[0].source, "worker", "its Ray worker process kept dying while "
                                                                "analysing it, on 2 workers (ActorDiedError)")
    assert sum(frames) == 50


@pytest.fixture(scope="module")
def batch(videos, tmp_path_factory, astronaut_bgr) -> Path:
    root = tmp_path_factory.mktemp("batch")
    for name in ("cfr.mp4", "vfr.mp4"):
        (root / name).write_bytes((videos / name).read_bytes())
    cv2.imwrite(str(root / "face.jpg"), face_photo(astronaut_bgr))
    two = np.full((300, 500, 3), 240, np.uint8)
    two[40:240, 20:220] = face_photo(astronaut_bgr)
    two[40:240, 280:480] = face_photo(astronaut_bgr, flip=True)
    cv2.imwrite(str(root / "two.png"), two)
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    return root


@pytest.mark.parametrize("stretch", [{}, {"start_s": 2.1, "end_s": 11.3}])
def test_units_analysed_and_joined_give_the_outcomes_of_a_local_run(batch, stretch):
    """The worker's side (UnitAnalyzer) and the driver's (Joiner) in this process: frames, track ids across
    segment boundaries, errors and every thumbnail are those of the local pipeline (also with --start/--end)."""
    from fer_batch.api import Collector, build_stages, run_batch
    from fer_batch.units import UnitAnalyzer

    options = AnalyzeOptions(fps=5.0, segment_s=5.0, **stretch)
    inputs, skipped = walk_inputs([batch])
    stages = build_stages(options)
    local = run_batch(inputs, Collector(skipped), options, stages)

    collector = Collector(skipped)
    units = plan_units(inputs, options)
    joiner = Joiner(inputs, units, collector.add, fps=options.fps)
    analyzer = UnitAnalyzer(options, stages)
    queue = deque(reversed(units))
    while queue:
        queue.extendleft(joiner.add(analyzer.analyze(joiner.prepare(queue.popleft()))))
    joined = collector.analysis()

    assert sum(u.segments > 1 for u in units) == 6  # both videos in three segments
    pd.testing.assert_frame_equal(joined.frames, local.frames)
    pd.testing.assert_frame_equal(joined.summary, local.summary)
    pd.testing.assert_frame_equal(joined.errors, local.errors)
    assert joined.thumbnails.keys() == local.thumbnails.keys()
    assert all(np.array_equal(joined.thumbnails[key], local.thumbnails[key]) for key in local.thumbnails)
    cfr = joined.frames[joined.frames["source"].str.endswith("cfr.mp4")]
    assert cfr["time_s"].max() >= 10.0 and cfr["track_id"].nunique() == 1  # one track over both boundaries
    if stretch:
        assert cfr["time_s"].min() >= 2.1 and cfr["time_s"].max() < 11.3


def test_local_path_never_imports_ray(batch, tmp_path):
    script = ("import sys, fer_batch\n"
              f"fer_batch.analyze([{str(batch / 'face.jpg')!r}], csv_dir={str(tmp_path / 'csv')!r})\n"
              "assert 'ray' not in sys.modules, 'the local path imported ray'\n")
    done = subprocess.run([sys.executable, "-c", script], env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "csv" / "summary.csv").is_file()


def test_ray_backend_without_ray_and_misused_options_are_one_sentence_each(batch, tmp_path):
    def cli(*args: str, hide_ray: bool = False) -> subprocess.CompletedProcess:
        prelude = "import sys; sys.modules['ray'] = None; " if hide_ray else ""  # `import ray` fails as if absent
        code = prelude + "from fer_batch.cli import main; sys.argv[0] = 'fer-batch'; main()"
        return subprocess.run([sys.executable, "-c", "import sys; " + code, "analyze", "--quiet", *args,
                               "--out", str(tmp_path / "r.html"), str(batch / "face.jpg")],
                              env=ENV, capture_output=True, text=True)

    missing = cli("--backend", "ray", hide_ray=True)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert missing.stderr.strip().splitlines() == [
        "fer-batch: --backend ray needs Ray, which cannot be imported (import of ray halted; None in sys.modules): "
        "pip install 'fer-batch[ray]'"]
    address = cli("--address", "127.0.0.1:6379")
    assert address.returncode == 2 and address.stderr.strip() == "fer-batch: --address needs --backend ray"
    ray_only = cli("--segment-seconds", "30", "--cpus-per-worker", "2")
    assert ray_only.returncode == 2
    assert ray_only.stderr.strip() == "fer-batch: --segment-seconds and --cpus-per-worker need --backend ray"
    annotate = cli("--backend", "ray", "--annotate", str(tmp_path / "ann"))
    assert annotate.returncode == 2 and "--annotate needs --backend local" in annotate.stderr
    assert not os.path.exists(tmp_path / "ann")


def test_a_file_gone_before_its_unit_runs_is_a_read_error_that_says_why(batch, tmp_path):
    """On a worker, a file that is not there (deleted mid-batch, or not shared with that node) costs only itself."""
    from fer_batch.api import build_stages
    from fer_batch.units import UnitAnalyzer

    gone = tmp_path / "gone.jpg"
    gone.write_bytes((batch / "face.jpg").read_bytes())
    options = AnalyzeOptions(detector="haar")
    inputs, _ = walk_inputs([batch / "face.jpg", gone])
    units = plan_units(inputs, options)
    gone.unlink()
    outcomes = [o for unit in units for o in UnitAnalyzer(options, build_stages(options)).analyze(unit).outcomes]
    by_name = {Path(o.item.source).name: o for o in outcomes}
    assert by_name["face.jpg"].error is None and by_name["face.jpg"].results
    assert by_name["gone.jpg"].error.stage == "read"
    assert "deleted since the batch started" in by_name["gone.jpg"].error.reason
