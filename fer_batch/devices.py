"""`--device auto|cpu|gpu` as the TensorFlow device that the networks (classifier, MTCNN, RetinaFace) run on."""
from __future__ import annotations

from collections.abc import Sequence

DEVICES = ("auto", "cpu", "gpu")


class DeviceUnavailable(ValueError):
    """`--device gpu` on a machine where TensorFlow sees no GPU."""


def tensorflow_device(device: str, gpus: Sequence[object] | None = None) -> str:
    """"/GPU:0" or "/CPU:0" for `device`; `gpus` are the GPUs TensorFlow sees (None: ask TensorFlow).

    Raises ValueError for an unknown name and DeviceUnavailable for "gpu" without a GPU."""
    if device not in DEVICES:
        raise ValueError(f"--device must be one of {', '.join(DEVICES)}, not {device!r}")
    if device == "cpu":
        return "/CPU:0"
    if gpus is None:
        from fer_batch.native_logs import import_tensorflow

        gpus = import_tensorflow().config.list_physical_devices("GPU")
    if device == "gpu" and not gpus:
        raise DeviceUnavailable("--device gpu was asked for, but TensorFlow sees no GPU on this machine.")
    return "/GPU:0" if gpus else "/CPU:0"
