"""Random erasing (train.py --erase-augment): what it changes in a batch, and how a run records it."""
from __future__ import annotations

import numpy as np
import pytest

GRAY = 0.5


def _erased(probability: float, n: int = 400, seed: int = 3) -> np.ndarray:
    """The erased pixels (True) of n flat gray 48x48 faces."""
    import tensorflow as tf

    from training.augment import random_erase

    images = tf.constant(np.full((n, 48, 48, 1), GRAY, np.float32))
    return random_erase(images, tf.constant([seed, 0], tf.int64), probability).numpy()[..., 0] != GRAY


def test_random_erasing_covers_one_rectangle_of_the_chosen_share_of_faces():
    from training.augment import ERASE_AREA, ERASE_MIN_ASPECT

    erased = _erased(0.5)
    touched = erased.any(axis=(1, 2))
    assert 0.4 < touched.mean() < 0.6
    for mask in erased[touched]:
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        assert mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].all()   # one filled rectangle, nothing outside
        assert mask.sum() == len(rows) * len(cols)
        assert ERASE_AREA[0] * 0.5 <= mask.mean() <= ERASE_AREA[1] * 1.5   # pixel rounding of the drawn area
        assert ERASE_MIN_ASPECT * 0.5 <= len(rows) / len(cols) <= 2 / ERASE_MIN_ASPECT
    sizes = erased[touched].mean(axis=(1, 2))
    assert sizes.std() > 0.02   # a different size for each face
    assert not _erased(0.0).any() and _erased(1.0).any(axis=(1, 2)).all()


def test_erasing_is_seeded_and_off_leaves_the_augmentation_as_it_was():
    import tensorflow as tf

    from training.augment import augment_batch

    images = tf.constant(np.random.default_rng(5).uniform(0, 1, (32, 48, 48, 1)).astype(np.float32))
    seed = tf.constant([11, 2], tf.int64)
    plain = augment_batch(images, seed).numpy()
    np.testing.assert_array_equal(augment_batch(images, seed, erase=0.0).numpy(), plain)
    erased = augment_batch(images, seed, erase=1.0).numpy()
    np.testing.assert_array_equal(augment_batch(images, seed, erase=1.0).numpy(), erased)
    differs = (erased != plain).any(axis=(1, 2, 3))
    assert differs.all()
    assert 0 <= erased.min() and erased.max() <= 1
    unchanged = (erased == plain).mean(axis=(1, 2, 3))
    assert (unchanged > 0.75).all()   # the rest of each face is the usual augmentation's


def test_the_training_record_names_random_erasing():
    from training.model_card import train_command, training_data

    args = {"data": "d", "arch": "vgg_small", "seed": 1, "out": "m.keras"}
    assert "--erase-augment 0.5 --seed 1" in train_command({**args, "erase_augment": 0.5})
    assert "--erase-augment" not in train_command({**args, "erase_augment": 0.0})
    assert "--erase-augment" not in train_command(args)   # records of runs from before the option
    assert "random erasing of 0.5" in training_data({**args, "erase_augment": 0.5})
    assert "erasing" not in training_data({**args, "erase_augment": 0.0})


@pytest.mark.parametrize("change, message", [
    (["--erase-augment", "1.5"], "--erase-augment must be between 0 and 1"),
    (["--erase-augment", "-0.1"], "--erase-augment must be between 0 and 1"),
    (["--erase-augment", "0.5", "--no-augment"], "--no-augment turns augmentation off"),
    (["--blur-augment", "--no-augment"], "--no-augment turns augmentation off"),
])
def test_train_refuses_bad_erasing_options_in_one_line(change, message, train_refusal):
    assert message in train_refusal(change)


def test_a_run_recorded_before_the_option_resumes_while_it_is_off():
    from training.train import options_changed

    recorded = {"arch": "vgg_small", "lr": 0.001, "resume": False}
    assert options_changed(recorded, {**recorded, "resume": True, "erase_augment": 0.0}) == []
    assert options_changed(recorded, {**recorded, "erase_augment": 0.5}) == ["erase_augment None -> 0.5"]
    assert options_changed({**recorded, "erase_augment": 0.5}, {**recorded, "erase_augment": 0.0}) == [
        "erase_augment 0.5 -> 0.0"]
