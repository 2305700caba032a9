"""Face detection: the registry, the shared post-filtering, and each backend that runs on this machine."""
from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from fer_batch.detect import DEFAULT_DETECTOR, DETECTORS, DetectorUnavailable, create_detector
from fer_batch.detect.base import box_iou, postfilter
from fer_batch.types import Faces

# where the astronaut's face is in skimage's 512x512 photo (x1, y1, x2, y2), forehead to chin
ASTRONAUT_FACE = np.array([176, 64, 272, 172], np.float32)
RUNNABLE = ["mtcnn", "blazeface", "haar"]  # retinaface needs weights this project never downloads

_created: dict[str, object] = {}


@pytest.fixture(params=RUNNABLE)
def detector(request):
    """Each detector that can run here (created once); the optional ones skip when not installed."""
    name = request.param
    if name not in _created:
        try:
            _created[name] = create_detector(name)
        except DetectorUnavailable as exc:
            _created[name] = exc
    if isinstance(_created[name], DetectorUnavailable):
        pytest.skip(str(_created[name]))
    return _created[name]


def paste(canvas: np.ndarray, image: np.ndarray, x: int, y: int) -> None:
    canvas[y:y + image.shape[0], x:x + image.shape[1]] = image


def best_iou(faces: Faces, box: np.ndarray) -> float:
    return float(box_iou(box, faces.boxes).max()) if len(faces) else 0.0


def test_registry_names_all_four_backends_and_a_default():
    assert set(DETECTORS) == {"mtcnn", "blazeface", "haar", "retinaface"}
    assert DEFAULT_DETECTOR in DETECTORS


def test_unknown_name_lists_the_choices():
    with pytest.raises(ValueError) as info:
        create_detector("yolo")
    assert "yolo" in str(info.value)
    for name in DETECTORS:
        assert name in str(info.value)


def test_importing_the_registry_loads_no_backend():
    code = "import sys, fer_batch.detect; print(sorted(m for m in ('tensorflow', 'mtcnn', 'retinaface') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_postfilter_clips_to_the_frame_and_drops_small_and_unsure_faces():
    faces = Faces(
        np.array([[-10, -5, 50, 60], [90, 90, 130, 140], [10, 10, 18, 40], [20, 20, 80, 80]], np.float32),
        np.array([0.9, 0.8, 0.99, 0.3], np.float32),
        np.zeros((4, 5, 2), np.float32),
    )
    kept = postfilter(faces, width=100, height=120, min_face=15, min_score=0.5)
    # the third is 8 px wide, the fourth scores 0.3; the second is clipped to 10 x 30 px, under min_face
    np.testing.assert_array_equal(kept.boxes, [[0, 0, 50, 60]])
    assert kept.boxes.dtype == np.float32 and kept.landmarks.shape == (1, 5, 2)


def test_rejects_an_image_that_is_not_bgr_uint8(detector):
    with pytest.raises(ValueError):
        detector.detect([np.zeros((64, 64), np.uint8)])


def test_finds_the_astronaut_face(detector, astronaut_bgr):
    faces = detector.detect([astronaut_bgr])[0]
    assert len(faces) == 1
    assert faces.boxes.dtype == np.float32 and faces.boxes.shape == (1, 4)
    assert best_iou(faces, ASTRONAUT_FACE) >= 0.5


def test_a_blank_frame_has_no_face(detector):
    assert len(detector.detect([np.zeros((480, 640, 3), np.uint8)])[0]) == 0


@pytest.mark.parametrize("shape", [(1, 1, 3), (11, 11, 3), (20, 25, 3), (30, 3000, 3)])
def test_tiny_and_thin_frames_give_no_face_and_no_error(detector, shape):
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    assert len(detector.detect([image])[0]) == 0


def test_a_batch_gives_one_result_per_image_in_order(detector, astronaut_bgr):
    blank = np.full((300, 500, 3), 200, np.uint8)
    results = detector.detect([astronaut_bgr, blank, astronaut_bgr])
    assert [len(faces) for faces in results] == [1, 0, 1]


def test_two_pasted_faces_give_two_boxes_on_them(detector, astronaut_bgr):
    canvas = np.full((700, 1200, 3), 128, np.uint8)
    paste(canvas, astronaut_bgr, 30, 50)
    paste(canvas, cv2.resize(astronaut_bgr, (384, 384), interpolation=cv2.INTER_AREA), 700, 250)
    faces = detector.detect([canvas])[0]
    assert len(faces) == 2
    assert best_iou(faces, ASTRONAUT_FACE + [30, 50, 30, 50]) >= 0.5
    assert best_iou(faces, ASTRONAUT_FACE * 0.75 + [700, 250, 700, 250]) >= 0.5


def test_boxes_map_back_to_a_frame_larger_than_max_side(detector, astronaut_bgr):
    factor = 2400 / astronaut_bgr.shape[0]
    assert 2400 > detector.max_side
    large = cv2.resize(astronaut_bgr, (2400, 2400), interpolation=cv2.INTER_CUBIC)
    small_faces, large_faces = detector.detect([astronaut_bgr, large])
    assert len(large_faces) >= 1
    assert best_iou(large_faces, small_faces.boxes[0] * factor) >= 0.7
    assert best_iou(large_faces, ASTRONAUT_FACE * factor) >= 0.5


def test_landmarks_when_given_lie_inside_their_box(detector, astronaut_bgr):
    faces = detector.detect([astronaut_bgr])[0]
    if faces.landmarks is None:
        pytest.skip(f"{detector.name} gives no landmarks")
    assert faces.landmarks.shape == (1, 5, 2)
    x1, y1, x2, y2 = faces.boxes[0]
    points = faces.landmarks[0]
    assert np.all((points[:, 0] >= x1) & (points[:, 0] <= x2) & (points[:, 1] >= y1) & (points[:, 1] <= y2))
    assert points[0, 0] < points[1, 0]  # the image-left eye comes first


def test_min_face_drops_faces_smaller_than_it(astronaut_bgr):
    # the astronaut's face is about 100 pixels across
    assert len(create_detector(DEFAULT_DETECTOR, min_face=50).detect([astronaut_bgr])[0]) == 1
    assert len(create_detector(DEFAULT_DETECTOR, min_face=200).detect([astronaut_bgr])[0]) == 0


def test_retinaface_without_weights_is_unavailable_in_one_sentence(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("DEEPFACE_HOME", raising=False)
    monkeypatch.delenv("FER_BATCH_RETINAFACE_WEIGHTS", raising=False)
    with pytest.raises(DetectorUnavailable) as info:
        create_detector("retinaface")
    message = str(info.value)
    assert "\n" not in message and message.count(". ") == 0
    assert "retina-face" in message or "retinaface.h5" in message
    assert not (tmp_path / ".deepface" / "weights" / "retinaface.h5").exists()


def test_retinaface_names_the_missing_weights_file(tmp_path, monkeypatch):
    from fer_batch.detect.retinaface_detector import find_weights

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("DEEPFACE_HOME", raising=False)
    monkeypatch.delenv("FER_BATCH_RETINAFACE_WEIGHTS", raising=False)
    with pytest.raises(DetectorUnavailable, match=r"retinaface\.h5.*FER_BATCH_RETINAFACE_WEIGHTS"):
        find_weights()
    monkeypatch.setenv("FER_BATCH_RETINAFACE_WEIGHTS", str(tmp_path / "elsewhere" / "retinaface.h5"))
    with pytest.raises(DetectorUnavailable, match="does not exist"):
        find_weights()


def test_haar_without_its_cascade_file_is_unavailable(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_BATCH_HAAR_CASCADE", str(tmp_path / "missing.xml"))
    with pytest.raises(DetectorUnavailable, match="FER_BATCH_HAAR_CASCADE"):
        create_detector("haar")


def test_blazeface_without_its_model_file_is_unavailable(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_BATCH_BLAZEFACE_MODEL", str(tmp_path / "missing.tflite"))
    with pytest.raises(DetectorUnavailable, match="FER_BATCH_BLAZEFACE_MODEL"):
        create_detector("blazeface")


def test_finds_several_faces_in_the_group_photo(detector, shared_dir):
    image = cv2.imread(str(shared_dir / "fixtures" / "pyfeat-multi_face.jpg"))
    assert len(detector.detect([image])[0]) >= 2


def test_finds_no_face_in_the_mountain_drawing(detector, shared_dir):
    image = cv2.imread(str(shared_dir / "fixtures" / "pyfeat-free-mountain-vector-01.jpg"))
    assert len(detector.detect([image])[0]) == 0


def test_blazeface_runs_the_same_through_tflite_and_through_opencv(astronaut_bgr):
    """TensorFlow's TFLite interpreter is preferred (about twice as fast); OpenCV's importer is the fallback for a
    TensorFlow without one. Both must give the same faces."""
    from fer_batch.detect import blazeface_detector as blazeface

    detector = create_detector("blazeface")
    path = blazeface.find_model_file(blazeface.MODELS["full"].file_name)
    tflite = blazeface._tflite_runner(path)
    assert tflite is not None
    scene = np.full((480, 800, 3), 90, np.uint8)
    scene[60:360, 420:720] = astronaut_bgr[0:300, 100:400]
    faces = {}
    for name, runner in (("tflite", tflite), ("opencv", blazeface._opencv_runner(path))):
        detector._run = runner
        faces[name] = detector.detect([scene])[0]
    assert len(faces["tflite"]) == len(faces["opencv"]) == 1
    np.testing.assert_allclose(faces["tflite"].boxes, faces["opencv"].boxes, atol=1.0)
    x1, y1, x2, y2 = faces["tflite"].boxes[0]
    assert 420 <= x1 < x2 <= 720 and 60 <= y1 < y2 <= 360


def test_mtcnn_runs_as_compiled_graphs_on_tensors_with_the_bits_the_package_gives(astronaut_bgr, monkeypatch):
    import fer_batch.detect.mtcnn_detector as mtcnn_detector

    two = np.full((360, 640, 3), 235, np.uint8)
    paste(two, cv2.resize(astronaut_bgr[0:300, 100:400], (150, 150)), 40, 60)
    paste(two, cv2.flip(cv2.resize(astronaut_bgr[0:300, 100:400], (90, 90)), 1), 420, 200)
    images = [astronaut_bgr, two, cv2.resize(astronaut_bgr, (300, 300)), np.full((240, 320, 3), 128, np.uint8)]
    compiled = create_detector("mtcnn")
    monkeypatch.setattr(mtcnn_detector, "_compiled", lambda network: network)
    monkeypatch.setattr(mtcnn_detector, "_TensorInput", lambda stage: stage)
    op_by_op = create_detector("mtcnn")   # the mtcnn package's own path: numpy images, op by op
    got, expected = compiled.detect(images), op_by_op.detect(images)
    assert [len(f) for f in got] == [len(f) for f in expected] and len(got[1]) == 2 and len(got[3]) == 0
    for a, b in zip(got, expected):
        assert np.array_equal(a.boxes, b.boxes) and np.array_equal(a.scores, b.scores)
        assert np.array_equal(a.landmarks, b.landmarks)


def test_an_empty_batch_of_proposals_never_reaches_the_compiled_graph():
    # mtcnn reads the InvalidArgumentError of an empty batch as "no faces"; run as a graph, the same error also
    # logged an aborted rendezvous on stderr, so the wrapper raises it without running the graph
    import tensorflow as tf

    from fer_batch.detect.mtcnn_detector import _compiled

    calls = []
    network = _compiled(lambda batch: calls.append(batch.shape) or batch * 2)
    with pytest.raises(tf.errors.InvalidArgumentError):
        network(tf.zeros((0, 24, 24, 3)))
    assert calls == []
    assert float(network(tf.ones((1, 24, 24, 3)))[0, 0, 0, 0]) == 2.0 and len(calls) == 1   # traced once, then run
