"""Native libraries' start-up messages (TensorFlow, TF Lite, Ray), kept from users' terminals.

On a machine without CUDA, importing TensorFlow and listing its devices prints lines such as "failed call to
cuInit: ... CUDA error" from C++ straight to file descriptor 2, whatever TF_CPP_MIN_LOG_LEVEL says; every TF
Lite interpreter announces its XNNPACK delegate, and Ray announces the log level it was given. They describe a
normal run, and a user reads them as a fault.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

START_UP_NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|cudart_stub\.cc.*Could not find cuda drivers"
    r"|cuda_platform\.cc.*failed call to cuInit"
    r"|cuda_(dnn|fft|blas)\.cc.*Unable to register cu(DNN|FFT|BLAS) factory"
    r"|computation_placer\.cc.*computation placer already registered"
    r"|TF-TRT Warning: Could not find TensorRT"
    r"|oneDNN custom operations are on"
    r"|This TensorFlow binary is optimized to use available CPU instructions"
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags"
    r"|Created TensorFlow Lite XNNPACK delegate for CPU"
    r"|logging\.cc.*Set ray log level from environment variable RAY_BACKEND_LOG_LEVEL")


def is_start_up_noise(line: str) -> bool:
    """True for the known messages of a normal start (module docstring); anything else is kept."""
    return bool(START_UP_NOISE.search(line))


@contextlib.contextmanager
def native_stderr_lines() -> Iterator[list[str]]:
    """Runs the block with file descriptor 2 sent to a temporary file; the yielded list holds its non-blank lines
    once the block ends. Nothing is written back: the caller decides."""
    sys.stderr.flush()
    lines: list[str] = []
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield lines
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines.extend(line for line in captured.read().decode("utf-8", "replace").splitlines(keepends=True)
                         if line.strip())


def write_back(lines: list[str]) -> None:
    if lines:
        sys.stderr.write("".join(lines))
        sys.stderr.flush()


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Runs the block with file descriptor 2 captured, then writes back every line of it that is not known
    start-up noise (real warnings and errors still reach the terminal, after the block)."""
    lines: list[str] = []
    try:
        with native_stderr_lines() as lines:
            yield
    finally:
        write_back([line for line in lines if not is_start_up_noise(line)])


def import_tensorflow():
    """The `tensorflow` module. The first call imports it and lists its devices (which is when CUDA is probed)
    under quiet_native_stderr."""
    if "tensorflow" not in sys.modules:
        with quiet_native_stderr():
            import tensorflow as tf

            tf.config.list_physical_devices()
            for gpu in tf.config.list_physical_devices("GPU"):
                # take GPU memory as the networks need it, not all of it at start-up: the card stays usable by
                # other work (a Ray worker per GPU, a user's notebook)
                try:
                    tf.config.experimental.set_memory_growth(gpu, True)
                except (RuntimeError, ValueError):  # the GPU was already initialised by someone else's code
                    pass
    return sys.modules["tensorflow"]
