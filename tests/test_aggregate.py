"""Per-track summaries from per-frame rows."""
import numpy as np
import pandas as pd
import pytest

from fer_batch.aggregate import TRACK_COLUMNS, frames_dataframe, track_summary
from fer_batch.labels import LABELS
from fer_batch.types import Faces, FrameResult


def one_hot(label: str, weight: float = 0.9) -> np.ndarray:
    probs = np.full(len(LABELS), (1.0 - weight) / (len(LABELS) - 1))
    probs[LABELS.index(label)] = weight
    return probs


def frame(source: str, index: int, time_s: float | None, faces: list[tuple[int | None, str]]) -> FrameResult:
    n = len(faces)
    boxes = np.array([[10.0 + 100 * i, 10.0, 60.0 + 100 * i, 60.0] for i in range(n)], np.float32).reshape(n, 4)
    track_ids = None if any(t is None for t, _ in faces) else np.array([t for t, _ in faces])
    found = Faces(boxes, np.full(n, 0.99, np.float32), probs=np.array([one_hot(e) for _, e in faces]).reshape(n, 7),
                  track_ids=track_ids)
    return FrameResult(source=source, index=index, time_s=time_s, faces=found)


def test_one_row_per_track_in_input_order_with_its_expressions() -> None:
    frames = frames_dataframe([
        frame("b.mp4", 0, 0.0, [(2, "happy"), (1, "sad")]),
        frame("b.mp4", 5, 0.5, [(2, "happy")]),
        frame("b.mp4", 10, 1.0, []),
        frame("b.mp4", 15, 1.5, [(2, "surprise"), (1, "sad")]),
        frame("a.mp4", 0, 0.0, [(1, "angry")]),
        frame("photo.jpg", 0, None, [(None, "happy"), (None, "fear")]),
    ])
    tracks = track_summary(frames)
    assert list(tracks.columns) == list(TRACK_COLUMNS)
    assert list(zip(tracks["source"], tracks["track_id"])) == [("b.mp4", 1), ("b.mp4", 2), ("a.mp4", 1)]
    happy_one = tracks.iloc[1]
    assert (happy_one["first_frame"], happy_one["last_frame"], happy_one["faces"]) == (0, 15, 3)
    assert (happy_one["start_s"], happy_one["end_s"]) == (0.0, 1.5)
    assert happy_one["dominant_expression"] == "happy"
    assert happy_one["share_happy"] == pytest.approx(2 / 3, abs=1e-5)
    assert happy_one["share_surprise"] == pytest.approx(1 / 3, abs=1e-5)
    assert happy_one["mean_happy"] == pytest.approx((0.9 + 0.9 + 0.1 / 6) / 3, abs=1e-5)
    shares = tracks[[f"share_{label}" for label in LABELS]].sum(axis=1)
    drifting = track_summary(frames_dataframe([frame("c.mp4", 1, 0.033367, [(1, "sad")]), frame("c.mp4", 2, 4.011963, [(1, "sad")])]))
    assert (drifting["start_s"].item(), drifting["end_s"].item()) == (0.033367, 4.011963)   # as the rows' time_s
    np.testing.assert_allclose(shares, 1.0, atol=1e-4)
    assert tracks.iloc[0]["dominant_expression"] == "sad" and tracks.iloc[2]["dominant_expression"] == "angry"


def test_no_tracks_gives_the_header_only() -> None:
    tracks = track_summary(frames_dataframe([frame("photo.jpg", 0, None, [(None, "happy")])]))
    assert tracks.empty and list(tracks.columns) == list(TRACK_COLUMNS)


def test_all_videos_by_second_count_each_video_once() -> None:
    from fer_batch.aggregate import BY_SECOND_COLUMNS, videos_by_second

    frames = frames_dataframe([
        frame("a.mp4", 0, 0.0, [(1, "happy"), (2, "happy")]),   # a: three happy faces in second 0 ...
        frame("a.mp4", 5, 0.5, [(1, "happy")]),
        frame("b.mp4", 0, 0.2, [(1, "sad")]),                   # ... b: one sad face; each video weighs the same
        frame("a.mp4", 10, 1.0, []),                             # second 1: a analysed, no face; b not analysed
        frame("b.mp4", 30, 2.999, [(1, "fear")]),                # second 2, not 3
        frame("photo.jpg", 0, None, [(None, "angry")]),          # photos are not in it
    ])
    table = videos_by_second(frames, ["a.mp4", "b.mp4"])
    assert list(table.columns) == list(BY_SECOND_COLUMNS)
    assert table["second"].tolist() == [0, 1, 2]
    assert table["videos_analysed"].tolist() == [2, 1, 1]
    assert table["videos_with_face"].tolist() == [2, 0, 1]
    assert table["faces"].tolist() == [4, 0, 1]
    expected = (one_hot("happy") + one_hot("sad")) / 2
    assert np.allclose(table.loc[0, [f"mean_{label}" for label in LABELS]].to_numpy(float), expected, atol=1e-5)
    assert table.loc[0, "mean_happy"] == table.loc[0, "mean_sad"] == pytest.approx(0.4583, abs=1e-4)
    assert table.loc[1, [f"mean_{label}" for label in LABELS]].isna().all() and pd.isna(table.loc[1, "dominant_expression"])
    assert table.loc[2, "dominant_expression"] == "fear"
    assert videos_by_second(frames, []).empty
