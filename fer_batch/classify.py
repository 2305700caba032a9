"""Expression classification: load a Keras model (the shipped one by default) and predict in fixed-size batches."""
from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from fer_batch.devices import tensorflow_device
from fer_batch.labels import NUM_CLASSES
from fer_batch.preprocess import preprocess
from fer_batch.native_logs import import_tensorflow

SHIPPED_MODEL = Path(__file__).resolve().parent / "assets" / "model.keras"
MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
# "auto": TensorFlow Lite's CPU kernels when the model runs on the CPU (fer_batch/lite.py), TensorFlow on a GPU
RUNTIMES = ("auto", "tensorflow")
# `zoom_tta`: the extra view is the centre of the model's input, this fraction of its side, scaled back up
# (chosen on FER2013 PublicTest among 0.9 / 0.95, with and without shifted windows: reports/tta.md)
ZOOM_TTA_SCALE = 0.95


class ModelLoadError(RuntimeError):
    """A model file that cannot be used, with a one-sentence reason."""


def _load_keras_model(path: Path):
    import keras

    if not path.exists():
        raise ModelLoadError(f"model file {path} does not exist.")
    if path.is_dir() or path.suffix.lower() not in MODEL_SUFFIXES:
        raise ModelLoadError(f"model {path} is not a Keras model file: give a .keras file, as training/train.py "
                             "writes (or a legacy .h5).")
    if path.suffix.lower() == ".keras" and not zipfile.is_zipfile(path):
        raise ModelLoadError(f"model {path} is not a Keras model file: a .keras file is a zip archive, and this one "
                             "is not (damaged or renamed?).")
    try:
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    except ValueError as exc:
        if "safe_mode" in str(exc) or "lambda" in str(exc).lower():
            raise ModelLoadError(
                f"model {path} contains code (e.g. a Lambda layer) that Keras safe mode refuses to load; "
                "retrain it with training/train.py or remove the custom code.") from None
        raise ModelLoadError(f"model {path} could not be loaded: {str(exc).splitlines()[0]}") from None
    except Exception as exc:  # corrupt archive, wrong format, ...
        raise ModelLoadError(f"model {path} could not be loaded: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    shape = model.input_shape
    if (not isinstance(shape, tuple) or len(shape) != 4 or shape[3] not in (1, 3) or None in shape[1:3]
            or model.output_shape[-1] != NUM_CLASSES):
        raise ModelLoadError(f"model {path} takes {shape} and gives {model.output_shape}; expected (None, h, w, 1 or 3) "
                             f"in, with a fixed height and width, and {NUM_CLASSES} probabilities out.")
    return model


def check_gives_probabilities(path: Path, probs: np.ndarray) -> None:
    """ModelLoadError unless every row of `probs` (the model's answer to a probe batch) is a distribution."""
    sums = probs.sum(axis=1)
    if not (np.isfinite(probs).all() and probs.min() >= -1e-6 and np.allclose(sums, 1.0, atol=1e-3)):
        raise ModelLoadError(f"model {path} does not give probabilities (on a probe input its outputs range "
                             f"{probs.min():.3g}..{probs.max():.3g} and sum to {sums.min():.3g}..{sums.max():.3g}); "
                             "end it with a softmax layer.")


class ExpressionClassifier:
    """Face crops (any size, BGR/RGB-agnostic gray or BGR, uint8) -> (n, 7) probabilities in LABELS order.

    Batches are padded to one of a few fixed sizes, so a few compiled graphs serve every call (no retracing);
    TensorFlow runs it on the GPU when one is present (`device="auto"`).
    """

    def __init__(self, model_path: str | Path | None = None, batch_size: int = 64, device: str = "auto",
                 flip_tta: bool = True, zoom_tta: bool = False, runtime: str = "auto"):
        tf = import_tensorflow()

        self.flip_tta = flip_tta
        self.zoom_tta = zoom_tta
        self.model_path = Path(model_path) if model_path else SHIPPED_MODEL
        self.batch_size = int(batch_size)
        if self.batch_size < 1:
            raise ValueError("batch size must be at least 1")
        self.device = tensorflow_device(device)
        with tf.device(self.device):
            self.model = _load_keras_model(self.model_path)
        _, height, width, channels = self.model.input_shape
        self.input_size: tuple[int, int] = (int(height), int(width))
        self.channels: int = int(channels)
        model = self.model
        # a few fixed batch shapes (powers of two up to batch_size), each traced once at warm-up: a call pads to
        # the smallest that fits, so a handful of crops does not pay for a full batch and nothing retraces
        self.batch_shapes: tuple[int, ...] = tuple(sorted({min(self.batch_size, 2 ** k) for k in range(3, 16)
                                                         if 2 ** k < self.batch_size} | {self.batch_size}))

        @tf.function(reduce_retracing=False)
        def _predict(x):
            return model(x, training=False)

        self._predict = _predict
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
        self._lite = None
        if runtime == "auto" and self.device == "/CPU:0":
            from fer_batch.lite import lite_runner

            self._lite = lite_runner(model, self.model_path, self.batch_shapes)
        self.runtime = "tflite" if self._lite else "tensorflow"
        self._warm_up()

    def _warm_up(self) -> None:
        probe = np.random.default_rng(0).random((self.batch_shapes[0], *self.input_size, self.channels), np.float32)
        check_gives_probabilities(self.model_path, self._run(probe))
        for size in self.batch_shapes[1:]:
            self._run(np.zeros((size, *self.input_size, self.channels), np.float32))

    def tracing_count(self) -> int:
        """How many graphs TensorFlow has traced: one per batch shape, however many calls were made (none when
        TensorFlow Lite runs the model)."""
        return self._predict.experimental_get_tracing_count()

    def _run(self, batch: np.ndarray) -> np.ndarray:
        tf = import_tensorflow()

        if self._lite:
            return self._lite(batch)
        with tf.device(self.device):
            return self._predict(tf.constant(batch)).numpy()

    def predict_preprocessed(self, x: np.ndarray) -> np.ndarray:
        """Probabilities for an already preprocessed float32 batch (n, h, w, c).

        With `flip_tta` the mirror image is classified too, with `zoom_tta` the centre of the input scaled back up
        (and its mirror image with both); all views go through the same batches and their distributions are averaged.
        """
        views = [x]
        if self.zoom_tta:
            views.append(zoom_centre(x, ZOOM_TTA_SCALE))
        if self.flip_tta:
            views += [v[:, :, ::-1, :] for v in views]
        probs = self._predict_batches(np.concatenate(views) if len(views) > 1 else x)
        probs = probs.reshape(len(views), len(x), NUM_CLASSES).mean(axis=0)
        return probs / probs.sum(axis=1, keepdims=True)

    def _predict_batches(self, x: np.ndarray) -> np.ndarray:
        out = np.empty((len(x), NUM_CLASSES), np.float32)
        for start in range(0, len(x), self.batch_size):
            chunk = x[start:start + self.batch_size]
            size = next(b for b in self.batch_shapes if b >= len(chunk))
            if len(chunk) < size:
                chunk = np.concatenate([chunk, np.zeros((size - len(chunk), *chunk.shape[1:]), np.float32)])
            out[start:start + len(chunk)] = self._run(np.ascontiguousarray(chunk))[: min(size, len(x) - start)]
        return out

    def predict(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        if len(crops) == 0:
            return np.zeros((0, NUM_CLASSES), np.float32)
        return self.predict_preprocessed(preprocess(crops, self.input_size, self.channels))


def zoom_centre(x: np.ndarray, scale: float, shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """The centre `scale` of each image of a (n, h, w, c) float batch, resized back to (h, w) bilinearly.

    `shift` = (down, right) moves the window by these fractions of the image's side.
    """
    n, height, width, _ = x.shape
    out = np.empty_like(x)
    # pixel-centre convention: output pixel i samples the input at c + (i - c) * scale + shift, c the image centre
    matrix = np.array([[scale, 0.0, (width - 1) / 2 * (1 - scale) + shift[1] * width],
                       [0.0, scale, (height - 1) / 2 * (1 - scale) + shift[0] * height]], np.float32)
    for i in range(n):
        view = cv2.warpAffine(x[i], matrix, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REPLICATE)
        out[i] = view.reshape(out.shape[1:])
    return out


def load_model(path: str | Path | None = None, batch_size: int = 64, device: str = "auto",
               flip_tta: bool = True, zoom_tta: bool = False, runtime: str = "auto") -> ExpressionClassifier:
    """The shipped expression classifier, or a retrained one from `path` (loaded in Keras safe mode)."""
    return ExpressionClassifier(path, batch_size=batch_size, device=device, flip_tta=flip_tta, zoom_tta=zoom_tta,
                                runtime=runtime)
