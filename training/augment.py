"""Batch augmentation for 2-D face crops, done with cheap whole-batch TensorFlow ops."""
from __future__ import annotations

import math

import tensorflow as tf


BLUR_SIGMA = 1.0
ERASE_AREA = (0.02, 0.2)     # share of the face a random erasure covers
ERASE_MIN_ASPECT = 0.3       # and its height/width ratio, from this to its inverse


def gaussian_blur(images: tf.Tensor, sigma: float = BLUR_SIGMA) -> tf.Tensor:
    """Each channel of a (n, h, w, c) batch blurred with a Gaussian of `sigma` pixels (edges reflected)."""
    radius = max(1, math.ceil(3 * sigma))
    taps = tf.exp(-tf.square(tf.range(-radius, radius + 1, dtype=images.dtype)) / (2.0 * sigma ** 2))
    taps /= tf.reduce_sum(taps)
    channels = images.shape[3]
    kernel = tf.tile((taps[:, None] * taps[None, :])[:, :, None, None], [1, 1, channels, 1])
    padded = tf.pad(images, [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="REFLECT")
    return tf.nn.depthwise_conv2d(padded, kernel, strides=[1, 1, 1, 1], padding="VALID")


def random_erase(images: tf.Tensor, seed: tf.Tensor, probability: float) -> tf.Tensor:
    """With `probability`, one random rectangle of each image (ERASE_AREA of it, aspect from ERASE_MIN_ASPECT to its
    inverse) replaced by uniform noise in [0, 1] (random erasing, Zhong et al. 2020): a hand, glasses or hair over
    part of the face, as faces in scene photos often have."""
    n = tf.shape(images)[0]
    height, width = images.shape[1], images.shape[2]
    seeds = tf.random.experimental.stateless_split(seed, 6)
    area = tf.random.stateless_uniform([n], seeds[0], *ERASE_AREA)
    log_aspect = tf.random.stateless_uniform([n], seeds[1], math.log(ERASE_MIN_ASPECT), -math.log(ERASE_MIN_ASPECT))
    erase_h = tf.minimum(1.0, tf.sqrt(area * tf.exp(log_aspect)))
    erase_w = tf.minimum(1.0, tf.sqrt(area / tf.exp(log_aspect)))
    top = tf.random.stateless_uniform([n], seeds[2]) * (1.0 - erase_h)
    left = tf.random.stateless_uniform([n], seeds[3]) * (1.0 - erase_w)
    rows = (tf.range(height, dtype=tf.float32) + 0.5) / height
    cols = (tf.range(width, dtype=tf.float32) + 0.5) / width
    in_rows = (rows[None, :] >= top[:, None]) & (rows[None, :] < (top + erase_h)[:, None])
    in_cols = (cols[None, :] >= left[:, None]) & (cols[None, :] < (left + erase_w)[:, None])
    chosen = tf.random.stateless_uniform([n], seeds[4]) < probability
    mask = in_rows[:, :, None] & in_cols[:, None, :] & chosen[:, None, None]
    noise = tf.random.stateless_uniform(tf.shape(images), seeds[5], dtype=images.dtype)
    return tf.where(mask[:, :, :, None], noise, images)


def augment_batch(images: tf.Tensor, seed: tf.Tensor, blur: bool = False, erase: float = 0.0) -> tf.Tensor:
    """Random flip, scale/shift (random box resized back), brightness and contrast jitter; with `blur`, each image
    also mixed with its Gaussian-blurred self in a random proportion (0 = sharp, 1 = blurred with BLUR_SIGMA), the
    softness of faces cut from large photos and shrunk, which FER2013's crops lack; with `erase` above 0, that share
    of the images gets a random rectangle replaced by noise (random_erase).

    `seed` is a shape-(2,) int tensor; the same seed gives the same augmentation.
    """
    n = tf.shape(images)[0]
    height, width = images.shape[1], images.shape[2]
    seeds = tf.random.experimental.stateless_split(seed, 6)
    flip = tf.random.stateless_uniform([n, 1, 1, 1], seeds[0]) < 0.5
    images = tf.where(flip, tf.reverse(images, axis=[2]), images)
    scale = tf.random.stateless_uniform([n], seeds[1], 0.8, 1.05)
    aspect = tf.random.stateless_uniform([n], seeds[2], 0.9, 1.1)
    box_h, box_w = scale * aspect, scale / aspect
    centre = tf.random.stateless_uniform([n, 2], seeds[3], 0.42, 0.58)
    boxes = tf.stack([centre[:, 0] - box_h / 2, centre[:, 1] - box_w / 2,
                      centre[:, 0] + box_h / 2, centre[:, 1] + box_w / 2], axis=1)
    images = tf.image.crop_and_resize(images, boxes, tf.range(n), [height, width], extrapolation_value=0.0)
    if blur:
        amount = tf.random.stateless_uniform([n, 1, 1, 1], tf.random.experimental.stateless_fold_in(seed, 6))
        images = images + amount * (gaussian_blur(images) - images)
    brightness = tf.random.stateless_uniform([n, 1, 1, 1], seeds[4], -0.15, 0.15)
    contrast = tf.random.stateless_uniform([n, 1, 1, 1], seeds[5], 0.75, 1.25)
    mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    images = (images - mean) * contrast + mean + brightness
    images = tf.clip_by_value(images, 0.0, 1.0)
    if erase > 0:
        images = random_erase(images, tf.random.experimental.stateless_fold_in(seed, 7), erase)
    return images
