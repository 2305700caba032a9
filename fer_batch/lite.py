"""The classifier's CPU runtime: the Keras model converted to TensorFlow Lite and run by its XNNPACK kernels.

On this project's 2-core CPUs that classified 1.1-1.6 times as many crops a second as TensorFlow itself without
test-time views (about as many with flip TTA on the newest host), with the same probabilities to within about 1e-6
(README, The expression model). The conversion takes seconds, so its result is kept in
a cache folder keyed by the model file's content and the TensorFlow version. One interpreter per fixed batch shape.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from fer_batch.native_logs import import_tensorflow, quiet_native_stderr

BatchRunner = Callable[[np.ndarray], np.ndarray]
CACHE_ENV = "FER_BATCH_CACHE"


def cache_dir() -> Path:
    """$FER_BATCH_CACHE, else $XDG_CACHE_HOME/fer-batch, else ~/.cache/fer-batch."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fer-batch"


def converted_model(model, model_path: Path) -> bytes:
    """The TensorFlow Lite flatbuffer of `model` (loaded from `model_path`), from the cache when it is there."""
    tf = import_tensorflow()

    digest = hashlib.sha256(model_path.read_bytes()).hexdigest()[:32]
    cached = cache_dir() / f"{digest}-tf{tf.__version__}.tflite"
    if cached.is_file():
        return cached.read_bytes()
    with contextlib.redirect_stdout(io.StringIO()):  # Keras' export prints "Saved artifact at ..." and its tensors
        flatbuffer = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cached.parent, suffix=".tmp", delete=False) as fh:
            fh.write(flatbuffer)
        os.replace(fh.name, cached)
    except OSError:  # a read-only home: convert again next time
        pass
    return flatbuffer


def lite_runner(model, model_path: Path, batch_shapes: Sequence[int]) -> BatchRunner | None:
    """A function running `model` on float32 batches of the given sizes, or None when TensorFlow Lite cannot
    convert or run it here (the caller keeps TensorFlow)."""
    tf = import_tensorflow()

    try:
        flatbuffer = converted_model(model, model_path)
        threads = tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count() or 1
        interpreters = {}
        for size in batch_shapes:
            # its deprecation notice is for developers; when the interpreter is gone, TensorFlow runs the model
            with warnings.catch_warnings(), quiet_native_stderr():
                warnings.filterwarnings("ignore", message=r"\s*Warning: tf\.lite\.Interpreter is deprecated")
                interpreter = tf.lite.Interpreter(model_content=flatbuffer, num_threads=threads)
                index = interpreter.get_input_details()[0]["index"]
                interpreter.resize_tensor_input(index, [size, *model.input_shape[1:]])
                interpreter.allocate_tensors()
            interpreters[size] = (interpreter, index, interpreter.get_output_details()[0]["index"])
    except Exception:  # no tf.lite in this TensorFlow, or a layer it cannot convert
        return None

    def run(batch: np.ndarray) -> np.ndarray:
        interpreter, input_index, output_index = interpreters[len(batch)]
        interpreter.set_tensor(input_index, np.ascontiguousarray(batch, np.float32))
        interpreter.invoke()
        return interpreter.get_tensor(output_index).copy()

    return run
