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


def preprocess(crops: Sequence[np.ndarray], size: tuple[int, int] = (48, 48), channels: int = 1) -> np.ndarray:
    """Turn face crops of any size into a float32 batch of shape (n, h, w, channels) in [0, 1].

    Colour crops are taken to be BGR (OpenCV's order); gray crops are accepted as they are.
    """
    height, width = size
    batch = np.empty((len(crops), height, width, channels), dtype=np.float32)
    for i, crop in enumerate(crops):
        img = to_channels(crop, channels)
        if img.shape[0] == 0 or img.shape[1] == 0:
            raise ValueError(f"crop {i} is empty (shape {img.shape})")
        interpolation = cv2.INTER_AREA if img.shape[0] > height else cv2.INTER_LINEAR
        img = cv2.resize(img, (width, height), interpolation=interpolation)
        batch[i] = img.reshape(height, width, channels).astype(np.float32) / 255.0
    return batch
