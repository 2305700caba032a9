"""The real clips and photos in ../shared/fixtures (skipped when ../shared is absent)."""
import cv2
import numpy as np
import pandas as pd
import pytest

import fer_batch


@pytest.fixture(scope="module")
def fixtures(shared_dir):
    return shared_dir / "fixtures"


@pytest.fixture(scope="module")
def videos(fixtures):
    names = ["pyfeat-single_face.mp4", "pyfeat-no_face.mp4", "pyfeat-face_noface.mov", "pyfeat-noface_face.mov"]
    result = fer_batch.analyze([fixtures / n for n in names], fps=4.0)
    assert result.errors.empty, result.errors
    return {n: result.frames[result.frames["source"].str.endswith(n)] for n in names}


def face_share(frames):
    return frames.groupby("frame")["face"].apply(lambda s: s.notna().any()).mean()


def test_single_face_found_in_most_frames(videos):
    frames = videos["pyfeat-single_face.mp4"]
    assert face_share(frames) >= 0.8
    assert frames["track_id"].dropna().nunique() == 1


def test_no_face_video_has_no_faces(videos):
    frames = videos["pyfeat-no_face.mp4"]
    assert len(frames) >= 5 and frames["face"].isna().all()


@pytest.mark.parametrize("name,first_half_has_faces", [("pyfeat-face_noface.mov", True), ("pyfeat-noface_face.mov", False)])
def test_faces_appear_and_disappear(videos, name, first_half_has_faces):
    frames = videos[name]
    per_frame = frames.groupby("time_s")["face"].apply(lambda s: s.notna().any())
    times = per_frame.index.to_numpy()
    mid = times.max() / 2
    early, late = per_frame[times < mid * 0.6].mean(), per_frame[times > mid * 1.4].mean()
    if first_half_has_faces:
        assert early >= 0.7 and late <= 0.3
    else:
        assert early <= 0.3 and late >= 0.7


@pytest.mark.parametrize("name", ["pyfeat-face_noface.mov", "pyfeat-noface_face.mov", "pyfeat-single_face.mp4"])
def test_timestamps_match_the_video(fixtures, videos, name):
    frames = videos[name].drop_duplicates("frame")
    cap = cv2.VideoCapture(str(fixtures / name))
    expected = {}
    index = 0
    while cap.grab():
        expected[index] = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        index += 1
    cap.release()
    for frame, time_s in zip(frames["frame"], frames["time_s"]):
        assert time_s == pytest.approx(expected[frame], abs=1e-3)
    # sampled at 4 per second of video time: consecutive samples 0.25 s apart, within one frame
    gaps = np.diff(frames["time_s"].to_numpy())
    assert np.all(gaps > 0.2) and np.all(gaps < 0.25 + 0.05)


def test_photos_multi_face_rgba_and_grayscale(fixtures):
    names = ["pyfeat-multi_face.jpg", "pyfeat-Image_with_alpha.png", "pyfeat-BWPictureHuman.jpg", "pyfeat-free-mountain-vector-01.jpg"]
    result = fer_batch.analyze([fixtures / n for n in names])
    assert result.errors.empty, result.errors
    faces = result.frames.groupby("source")["face"].count()
    by_name = {src.rsplit("/", 1)[-1]: n for src, n in faces.items()}
    assert by_name["pyfeat-multi_face.jpg"] >= 2
    assert by_name["pyfeat-Image_with_alpha.png"] >= 1
    # the grayscale photo is decoded and analysed; its one face (shouting, three-quarter profile) is one MTCNN misses
    assert "pyfeat-BWPictureHuman.jpg" in by_name
    summary = result.summary.set_index(result.summary["source"].str.rsplit("/", n=1).str[-1])
    assert summary.loc["pyfeat-BWPictureHuman.jpg", "frames_analysed"] == 1
    assert by_name["pyfeat-free-mountain-vector-01.jpg"] == 0


def test_a_frames_faces_do_not_depend_on_its_batch_mates(fixtures):
    """A real clip where mtcnn given 24 frames at once moved one frame's box by pixels against that frame alone."""
    from fer_batch.detect import create_detector

    cap = cv2.VideoCapture(str(fixtures / "pyfeat-WolfgangLanger_Pexels.mp4"))
    frames = []
    while len(frames) < 24:
        ok, image = cap.read()
        assert ok
        if int(cap.get(cv2.CAP_PROP_POS_FRAMES)) % 6 == 1:
            frames.append(image)
    cap.release()
    detector = create_detector("mtcnn")
    together = detector.detect(frames)
    for k, image in enumerate(frames):
        alone = detector.detect([image])[0]
        assert np.array_equal(alone.boxes, together[k].boxes) and np.array_equal(alone.scores, together[k].scores), k
    assert sum(len(faces) for faces in together) >= 20


def test_rows_do_not_depend_on_how_frames_are_batched(fixtures):
    clip = fixtures / "pyfeat-WolfgangLanger_Pexels.mp4"
    one = fer_batch.analyze([clip], fps=2.0, frame_batch=1, quiet=True).frames
    assert len(one) >= 20
    for frame_batch in (2, 8):   # before detection ran frame by frame, frame 72's box moved with 2
        pd.testing.assert_frame_equal(one, fer_batch.analyze([clip], fps=2.0, frame_batch=frame_batch, quiet=True).frames)
