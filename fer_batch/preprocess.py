"""Face-crop preprocessing shared by training and inference.

crop -> gray or colour -> resize -> float32 in [0, 1]. The target size and
channel count come from the model's input shape, so a retrained model with a
different input keeps working.
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np


def to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """Return `image` (gray HxW, HxWx1, BGR HxWx3 or BGRA HxWx4, any dtype) with 1 or 3 channels, uint8."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        if img.dtype == np.uint16:
            img = np.round(img.astype(np.float32) / 257.0).astype(np.uint8)
        elif np.issubdtype(img.dtype, np.floating) and img.max(initial=0) <= 1.0:
            img = (img * 255.0).clip(0, 255).astype(np.uint8)
        else:
            img = img.clip(0, 255).astype(np.uint8)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    if channels == 1:
        return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    return img


def _check_crop(i: int, crop: object) -> None:
    if not isinstance(crop, np.ndarray) or not (np.issubdtype(crop.dtype, np.number) or crop.dtype == np.bool_):
        raise ValueError(f"crop {i} is a {type(crop).__name__}, not a numpy image array")
    if crop.ndim not in (2, 3) or (crop.ndim == 3 and crop.shape[2] not in (1, 3, 4)):
        raise ValueError(f"crop {i} has shape {crop.shape}; a crop is (h, w) gray or (h, w, 1, 3 or 4 channels)")
    if crop.shape[0] == 0 or crop.shape[1] == 0:
        raise ValueError(f"crop {i} is empty (shape {crop.shape})")
    if np.issubdtype(crop.dtype, np.floating) and not np.isfinite(crop).all():
        raise ValueError(f"crop {i} contains NaN or infinite values")


def preprocess(crops: Sequence[np.ndarray], size: tuple[int, int] = (48, 48), channels: int = 1) -> np.ndarray:
    """Turn face crops of any size into a float32 batch of shape (n, h, w, channels) in [0, 1].

    Colour crops are taken to be BGR (OpenCV's order); gray crops are accepted as they are.
    """
    if isinstance(crops, np.ndarray) and crops.ndim == 3 and crops.shape[2] in (3, 4):
        raise ValueError(f"got one {crops.shape} image where a list of crops was expected; pass [image]")
    height, width = size
    batch = np.empty((len(crops), height, width, channels), dtype=np.float32)
    for i, crop in enumerate(crops):
        _check_crop(i, crop)
        img = to_channels(crop, channels)
        interpolation = cv2.INTER_AREA if img.shape[0] > height else cv2.INTER_LINEAR
        img = cv2.resize(img, (width, height), interpolation=interpolation)
        batch[i] = img.reshape(height, width, channels).astype(np.float32) / 255.0
    return batch
