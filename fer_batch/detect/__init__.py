"""Face detection: a registry of backends behind one small interface (see base.py).

Backends are imported only when created, so listing or choosing a detector costs nothing.
"""
from __future__ import annotations

import importlib

from fer_batch.detect.base import DEFAULT_MIN_FACE, DEFAULT_MIN_SCORE, Detector, DetectorUnavailable

# name -> "module:class"; a backend's module is imported only when it is asked for
DETECTORS: dict[str, str] = {
    "mtcnn": "fer_batch.detect.mtcnn_detector:MTCNNDetector",
    "blazeface": "fer_batch.detect.blazeface_detector:BlazeFaceDetector",
    "haar": "fer_batch.detect.haar_detector:HaarDetector",
    "retinaface": "fer_batch.detect.retinaface_detector:RetinaFaceDetector",
}
DEFAULT_DETECTOR = "mtcnn"  # best recall measured on ExpW (reports/detectors.md); blazeface is faster

__all__ = ["DETECTORS", "DEFAULT_DETECTOR", "Detector", "DetectorUnavailable", "create_detector", "detector_class"]


def detector_class(name: str) -> type[Detector]:
    """The backend class registered as `name` (imports its module, not its heavy dependencies' models)."""
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}; choose one of {', '.join(DETECTORS)}")
    module_name, class_name = DETECTORS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def create_detector(name: str = DEFAULT_DETECTOR, min_face: int = DEFAULT_MIN_FACE,
                    min_score: float = DEFAULT_MIN_SCORE, max_side: int | None = None,
                    device: str = "auto") -> Detector:
    """The detector called `name`; max_side None takes that backend's measured default; `device` (auto, cpu, gpu)
    places MTCNN's and RetinaFace's TensorFlow networks (BlazeFace and Haar run on the CPU).

    Raises ValueError for an unknown name and DetectorUnavailable (one sentence) when the
    backend's package or model file is missing.
    """
    return detector_class(name)(min_face=min_face, min_score=min_score, max_side=max_side, device=device)
