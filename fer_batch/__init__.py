"""fer-batch: batch facial-expression analytics for folders of videos and photos."""
from __future__ import annotations

from fer_batch.labels import LABELS

__version__ = "0.1.0"
__all__ = ["LABELS", "analyze", "load_model", "Analysis", "__version__"]


def __getattr__(name: str):
    # heavy imports (TensorFlow) only when used
    if name in ("analyze", "Analysis"):
        from fer_batch import api

        return getattr(api, name)
    if name == "load_model":
        from fer_batch.classify import load_model

        return load_model
    raise AttributeError(name)
