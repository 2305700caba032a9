"""Face alignment (`--align`): crops turned so the eyes are level, from the detector's landmarks."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from fer_batch.crops import aligned_crop, crop_faces, eye_angle
from fer_batch.detect import create_detector
from fer_batch.keyframes import interpolate_faces
from fer_batch.types import Faces

FACE_CENTRE = (318.0, 212.0)  # the astronaut's face on the 700x700 canvas below
FACE_BOX = np.array([270, 158, 366, 266], np.float32)


def on_canvas(astronaut_bgr: np.ndarray) -> np.ndarray:
    canvas = np.full((700, 700, 3), 120, np.uint8)
    canvas[94:606, 94:606] = astronaut_bgr
    return canvas


def turned(image: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """The image turned counter-clockwise about the face centre, and the matrix that did it."""
    matrix = cv2.getRotationMatrix2D(FACE_CENTRE, degrees, 1.0)
    return cv2.warpAffine(image, matrix, image.shape[1::-1], borderMode=cv2.BORDER_REPLICATE), matrix


def moved(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    return np.c_[points, np.ones(len(points))] @ matrix.T


def difference(a: np.ndarray, b: np.ndarray) -> float:
    size = (64, 64)
    return float(np.abs(cv2.resize(a, size).astype(np.float32) - cv2.resize(b, size).astype(np.float32)).mean())


def test_eye_angle_does_not_depend_on_which_eye_comes_first():
    points = np.array([[10, 20], [30, 10], [20, 25], [15, 30], [25, 30]], np.float32)
    assert eye_angle(points) == pytest.approx(np.degrees(np.arctan2(-10, 20)))
    assert eye_angle(points[[1, 0, 2, 3, 4]]) == pytest.approx(eye_angle(points))
    assert eye_angle(np.array([[0, 5], [9, 5], [4, 7], [2, 9], [6, 9]])) == 0.0


def test_an_aligned_crop_of_a_turned_face_is_the_upright_crop(astronaut_bgr):
    upright = on_canvas(astronaut_bgr)
    eyes_level = np.array([[296, 196], [340, 196], [318, 215], [300, 240], [336, 240]], np.float32)
    reference = crop_faces(upright, FACE_BOX[None])[0]
    assert aligned_crop(upright, FACE_BOX, eyes_level).shape == reference.shape
    assert difference(aligned_crop(upright, FACE_BOX, eyes_level), reference) < 1.0
    for degrees in (-35, 20):
        image, matrix = turned(upright, degrees)
        landmarks = moved(eyes_level, matrix)
        assert eye_angle(landmarks) == pytest.approx(-degrees, abs=1e-6)
        aligned = aligned_crop(image, FACE_BOX, landmarks)
        unaligned = crop_faces(image, FACE_BOX[None])[0]
        assert difference(aligned, reference) < 4.0 < difference(unaligned, reference)
        (together,) = crop_faces(image, FACE_BOX[None], landmarks=landmarks[None])
        np.testing.assert_array_equal(together, aligned)


@pytest.mark.parametrize("name", ["mtcnn", "blazeface"])
def test_the_detectors_landmarks_follow_a_turned_face(name, astronaut_bgr):
    detector = create_detector(name)
    upright = on_canvas(astronaut_bgr)
    level = detector.detect([upright])[0]
    assert level.landmarks is not None and abs(eye_angle(level.landmarks[0])) < 8
    image, _ = turned(upright, 25)
    faces = detector.detect([image])[0]
    assert len(faces) == 1
    assert eye_angle(faces.landmarks[0]) == pytest.approx(-25, abs=8)
    nose, mouth = faces.landmarks[0, 2], faces.landmarks[0, 3:].mean(axis=0)
    eyes = faces.landmarks[0, :2].mean(axis=0)
    assert np.linalg.norm(eyes - FACE_CENTRE) < np.linalg.norm(mouth - FACE_CENTRE) + 40
    assert np.linalg.norm(eyes - mouth) > np.linalg.norm(eyes - nose)


def test_interpolated_frames_carry_interpolated_landmarks():
    points = np.arange(10, dtype=np.float32).reshape(1, 5, 2)
    before = Faces(np.array([[0, 0, 10, 10]], np.float32), np.ones(1, np.float32), points)
    after = Faces(np.array([[4, 0, 14, 10]], np.float32), np.ones(1, np.float32), points + 4)
    middle = interpolate_faces(before, after, 0.5)
    np.testing.assert_allclose(middle.landmarks, points + 2)
    np.testing.assert_allclose(middle.boxes, [[2, 0, 12, 10]])
    without = interpolate_faces(Faces(before.boxes, before.scores), after, 0.25)
    assert without.landmarks is None and len(without) == 1


@pytest.mark.parametrize("detector", ["mtcnn", "blazeface"])
def test_analyze_with_align_classifies_a_turned_face_as_if_upright(tmp_path, astronaut_bgr, detector):
    """The crops the classifier sees (kept as the report's thumbnails) of a face turned 30 degrees match the
    upright face's with --align, not without."""
    import fer_batch

    upright = on_canvas(astronaut_bgr)
    cv2.imwrite(str(tmp_path / "a_upright.png"), upright)
    cv2.imwrite(str(tmp_path / "b_turned.png"), turned(upright, 30)[0])
    gaps = {}
    for align in (False, True):
        analysis = fer_batch.analyze(tmp_path, detector=detector, align=align, quiet=True)
        assert len(analysis.frames) == 2
        crops = {source.rsplit("/", 1)[-1]: image for (source, _), image in analysis.thumbnails.items()}
        gaps[align] = difference(crops["a_upright.png"], crops["b_turned.png"])
    assert gaps[True] < 0.6 * gaps[False]
