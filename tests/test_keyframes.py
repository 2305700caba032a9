"""--detect-every K: the detector sees every k-th sampled frame, the frames between get interpolated boxes."""
import numpy as np
import pytest

from fer_batch.keyframes import KeyframeScheduler, interpolate_faces
from fer_batch.track import iou_matrix
from fer_batch.types import Faces, Frame
from test_pipeline import face_clip


def faces(*boxes):
    return Faces(np.asarray(boxes, np.float32).reshape(-1, 4), np.full(len(boxes), 0.9, np.float32))


def frame(index, fps=10.0, source="v.mp4"):
    return Frame(source, index, index / fps, np.zeros((4, 4, 3), np.uint8))


def test_interpolation_moves_matched_faces_and_hands_over_unmatched_ones_at_half_way():
    before = faces([0, 0, 100, 100], [500, 0, 600, 100])      # the second face leaves
    after = faces([40, 20, 140, 120], [900, 500, 1000, 600])   # a new face arrives far away
    quarter = interpolate_faces(before, after, 0.25)
    assert len(quarter) == 2
    assert np.allclose(quarter.boxes[0], [10, 5, 110, 105])
    assert np.allclose(quarter.boxes[1], [500, 0, 600, 100])
    assert np.isnan(quarter.scores).all()
    three_quarters = interpolate_faces(before, after, 0.75)
    assert np.allclose(three_quarters.boxes[0], [30, 15, 130, 115])
    assert np.allclose(three_quarters.boxes[1], [900, 500, 1000, 600])
    assert len(interpolate_faces(Faces.empty(), Faces.empty(), 0.5)) == 0


def test_scheduler_detects_every_kth_frame_and_releases_frames_in_order():
    scheduler = KeyframeScheduler(every=3)
    released = []
    for i in range(8):
        f = frame(i)
        if scheduler.is_keyframe(f.source):
            released += scheduler.release(f, faces([i * 10, 0, i * 10 + 50, 50]))
        else:
            scheduler.hold(f)
    last = scheduler.take_last_held("v.mp4")
    assert last is not None and last.index == 7
    released += scheduler.release(last, faces([70, 0, 120, 50]))
    assert [f.index for f, _ in released] == list(range(8))
    keyframes = {0, 3, 6, 7}
    for f, fs in released:
        assert np.isnan(fs.scores).all() != (f.index in keyframes)
        assert fs.boxes[0, 0] == pytest.approx(f.index * 10)   # linear motion is recovered exactly
    assert scheduler.take_last_held("v.mp4") is None


def test_detect_every_keeps_every_frame_and_follows_the_detected_boxes(tmp_path, astronaut_bgr):
    import fer_batch

    face = astronaut_bgr[0:300, 100:400].copy()
    clip = face_clip(tmp_path / "moving.mp4", face, seconds=3.3, gap=(1.0, 2.0))   # 33 frames: 33 % 4 != 0
    every = fer_batch.analyze(clip, fps=None, detect_every=1, quiet=True).frames
    sparse = fer_batch.analyze(clip, fps=None, detect_every=4, quiet=True).frames
    assert list(sparse["frame"].unique()) == list(every["frame"].unique()) == list(range(33))
    with_face = sparse.dropna(subset=["x"])
    detected = with_face["det_score"].notna()
    assert 6 <= detected.sum() < len(with_face) // 2   # keyframes 0, 4, ..., 32 minus those in the gap
    # frames with a face in both runs: interpolated boxes lie on the detected ones
    both = every.dropna(subset=["x"]).merge(with_face, on="frame", suffixes=("_every", "_sparse"))
    assert len(both) >= 18
    overlap = [iou_matrix(np.array([[r.x_every, r.y_every, r.x_every + r.w_every, r.y_every + r.h_every]]),
                          np.array([[r.x_sparse, r.y_sparse, r.x_sparse + r.w_sparse, r.y_sparse + r.h_sparse]]))[0, 0]
               for r in both.itertuples()]
    assert np.median(overlap) > 0.8
    assert (both["expression_every"] == both["expression_sparse"]).mean() >= 0.8
    assert sparse["track_id"].dropna().nunique() == every["track_id"].dropna().nunique()


def test_detect_every_must_be_positive():
    import fer_batch

    with pytest.raises(ValueError, match="detect-every"):
        fer_batch.analyze([], detect_every=0)


def test_results_do_not_depend_on_how_frames_are_batched(tmp_path, astronaut_bgr):
    """With --detect-every K a batch holds up to K x frame_batch frames; smaller batches must give the same rows."""
    import fer_batch

    face = astronaut_bgr[0:300, 100:400].copy()
    clip = face_clip(tmp_path / "moving.mp4", face, seconds=3.3, gap=(1.0, 2.0))
    large = fer_batch.analyze(clip, fps=None, detect_every=4, frame_batch=8, quiet=True).frames
    small = fer_batch.analyze(clip, fps=None, detect_every=4, frame_batch=1, quiet=True).frames
    assert len(large) == 33
    assert large.drop(columns=["det_score"]).equals(small.drop(columns=["det_score"]))
    assert np.allclose(large["det_score"], small["det_score"], equal_nan=True)


def test_fast_flag_means_blazeface_on_every_fifth_frame_without_the_mirror_pass(tmp_path, astronaut_bgr):
    import os
    import subprocess
    import sys

    import pandas as pd

    from test_pipeline import REPO

    face = astronaut_bgr[0:300, 100:400].copy()
    clip = face_clip(tmp_path / "moving.mp4", face, seconds=2.0, gap=(0.5, 0.9))
    env = dict(os.environ, PYTHONPATH=REPO)
    cmd = [sys.executable, "-m", "fer_batch", "analyze", "--quiet", "--every-frame", "--out", str(tmp_path / "r.html")]
    done = subprocess.run(cmd + ["--fast", str(clip)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    rows = pd.read_csv(next((tmp_path / "r_csv").rglob("moving*.csv")))
    detected = rows.dropna(subset=["x"])
    assert len(rows) == 20 and len(detected) > 0
    assert 0 < detected["det_score"].notna().sum() < len(detected)   # keyframes only carry a detection score
    both = subprocess.run(cmd + ["--fast", "--detector", "mtcnn", str(clip)], env=env, capture_output=True, text=True)
    assert both.returncode == 2 and "--fast" in both.stderr
    for given in (["--no-align"], ["--align"], ["--flip-tta"], ["--detect-every", "1"]):   # defaults too: refused
        mixed = subprocess.run(cmd + ["--fast", *given, str(clip)], env=env, capture_output=True, text=True)
        assert mixed.returncode == 2 and "--no-align" in mixed.stderr, given
