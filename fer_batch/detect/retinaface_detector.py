"""RetinaFace (ResNet-50) from the optional `retina-face` package, with weights the user provides.

retina-face downloads its weights on first use; fer-batch never lets it: the weights
file must already exist, in ~/.deepface/weights/ (or $DEEPFACE_HOME/.deepface/weights/)
or wherever $FER_BATCH_RETINAFACE_WEIGHTS points, or the detector is unavailable.
The weights file's type picks retina-face's engine: .h5 TensorFlow, .onnx onnxruntime, .pth PyTorch.
"""
from __future__ import annotations

import importlib.util
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_batch.devices import tensorflow_device
from fer_batch.native_logs import import_tensorflow
from fer_batch.detect.base import Detector, DetectorUnavailable, faces_from_arrays
from fer_batch.types import Faces

WEIGHTS_ENV = "FER_BATCH_RETINAFACE_WEIGHTS"
INSTALL_HINT = "pip install 'fer-batch[retinaface]'"


@dataclass(frozen=True)
class Engine:
    name: str                      # retina-face's DEEPFACE_BACKEND_ENGINE value
    weights_file: str              # the name retina-face looks for in .deepface/weights/
    packages: tuple[str, ...]      # modules it needs, with the pip name to install
    pip_names: tuple[str, ...]


ENGINES = {
    ".h5": Engine("tensorflow", "retinaface.h5", ("tensorflow", "tf_keras"), ("tensorflow", "tf-keras")),
    ".onnx": Engine("onnx", "retinaface.onnx", ("onnxruntime",), ("onnxruntime",)),
    ".pth": Engine("pytorch", "retinaface.pth", ("torch",), ("torch",)),
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def deepface_weights_dir() -> Path:
    return Path(os.environ.get("DEEPFACE_HOME") or Path.home()) / ".deepface" / "weights"


def find_weights() -> tuple[Path, Engine]:
    """The weights file to use and the engine it needs; DetectorUnavailable (one sentence) when there is none."""
    override = os.environ.get(WEIGHTS_ENV)
    if override:
        path = Path(override)
        engine = ENGINES.get(path.suffix.lower())
        if engine is None:
            raise DetectorUnavailable(f"{WEIGHTS_ENV} must name a .h5, .onnx or .pth RetinaFace weights file, not {path}.")
        if not path.is_file():
            raise DetectorUnavailable(f"{WEIGHTS_ENV} points at {path}, which does not exist; point it at retinaface.h5.")
        return path, engine
    folder = deepface_weights_dir()
    for engine in ENGINES.values():
        if (folder / engine.weights_file).is_file():
            return folder / engine.weights_file, engine
    raise DetectorUnavailable(
        f"the retinaface detector needs its weights file retinaface.h5, which is not in {folder} "
        f"(fer-batch never downloads weights): copy it there or set {WEIGHTS_ENV} to its path."
    )


def check_available() -> tuple[Path, Engine]:
    """Everything retinaface needs, checked without importing or downloading anything."""
    if not _installed("retinaface"):
        raise DetectorUnavailable(f"the retinaface detector needs the retina-face package, which is not installed: {INSTALL_HINT}.")
    path, engine = find_weights()
    missing = [pip for module, pip in zip(engine.packages, engine.pip_names) if not _installed(module)]
    if missing:
        raise DetectorUnavailable(
            f"the retinaface weights {path.name} run on {engine.name}, which needs {' and '.join(missing)}: "
            f"pip install {' '.join(missing)}."
        )
    return path, engine


@contextmanager
def _environment(**values: str):
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def _deepface_home_with(path: Path, file_name: str):
    """A DEEPFACE_HOME under which retina-face finds `path` as .deepface/weights/<file_name>, so it never downloads."""
    if path.name == file_name and path.parent.name == "weights" and path.parent.parent.name == ".deepface":
        yield str(path.parent.parent.parent)
        return
    with tempfile.TemporaryDirectory(prefix="fer-batch-retinaface-") as home:
        weights = Path(home) / ".deepface" / "weights"
        weights.mkdir(parents=True)
        (weights / file_name).symlink_to(path.resolve())
        yield home


class RetinaFaceDetector(Detector):
    name = "retinaface"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        path, engine = check_available()
        with _deepface_home_with(path, engine.weights_file) as home, \
                _environment(DEEPFACE_HOME=home, DEEPFACE_BACKEND_ENGINE=engine.name):
            import_tensorflow()
            from retinaface import RetinaFace

            self._retinaface = RetinaFace
            self._device = None
            if engine.name == "tensorflow":
                self._device = tensorflow_device(self.device)
                with import_tensorflow().device(self._device):
                    self._model = RetinaFace.build_model()
            else:
                self._model = RetinaFace.build_model()

    def _detect_scaled(self, images: list[np.ndarray], scales: list[float]) -> list[Faces]:
        return [self._detect_one(image) for image in images]

    def _detect_one(self, image: np.ndarray) -> Faces:
        # allow_upscaling=False: retina-face would otherwise enlarge the short side to 1024 pixels
        if self._device is None:
            found = self._retinaface.detect_faces(image, threshold=self.min_score, model=self._model,
                                                  allow_upscaling=False)
        else:
            with import_tensorflow().device(self._device):
                found = self._retinaface.detect_faces(image, threshold=self.min_score, model=self._model,
                                                      allow_upscaling=False)
        if not isinstance(found, dict) or not found:
            return Faces.empty()
        faces = list(found.values())
        # retina-face names points from the subject's side; the common order puts the image-left one first
        order = ("right_eye", "left_eye", "nose", "mouth_right", "mouth_left")
        landmarks = [[face["landmarks"][key] for key in order] for face in faces]
        return faces_from_arrays([face["facial_area"] for face in faces], [face["score"] for face in faces], landmarks)
