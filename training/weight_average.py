"""Weight averaging along a training run (as in SWA and SWAD): the mean of the network's weights at snapshots
taken every few optimizer steps from a given epoch on, batch-norm statistics included. Fine-tuning from one
start at a low learning rate keeps the snapshots close enough for their mean to be a working network."""
from __future__ import annotations

from pathlib import Path

import numpy as np


class WeightAverage:
    """Running mean of a model's weights after every `every` optimizer steps past step `after_step` (steps counted
    from 1: after_step 0 and every 1 take a snapshot after each step)."""

    def __init__(self, model, after_step: int, every: int):
        if every < 1 or after_step < 0:
            raise ValueError("every must be at least 1 and after_step at least 0")
        self.model, self.start, self.every = model, after_step, every
        self.sums: list[np.ndarray] | None = None
        self.latest: list[np.ndarray] | None = None
        self.count = 0

    def due(self, step: int) -> bool:
        return step > self.start and (step - self.start) % self.every == 0

    def on_step(self, step: int) -> None:
        if self.due(step):
            self.add(self.model.get_weights())

    def add(self, weights: list[np.ndarray]) -> None:
        if self.sums is None:
            self.sums = [np.zeros(w.shape, np.float64) for w in weights]
        for total, w in zip(self.sums, weights):
            if np.issubdtype(w.dtype, np.floating):
                total += w
        self.latest = [np.array(w) for w in weights]
        self.count += 1

    def mean(self) -> list[np.ndarray]:
        """The averaged weights; weights that are not floating point (counters, seeds) keep their latest value."""
        if not self.count:
            raise ValueError("no snapshot taken yet")
        return [(total / self.count).astype(w.dtype) if np.issubdtype(w.dtype, np.floating) else w
                for total, w in zip(self.sums, self.latest)]

    def save(self, path: Path) -> None:
        """Keeps the running sums beside a checkpoint, so that --resume continues the same average."""
        if not self.count:
            return
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez(tmp, count=self.count, **{f"sum{i}": s for i, s in enumerate(self.sums)},
                 **{f"latest{i}": w for i, w in enumerate(self.latest)})
        tmp.replace(path)

    def load(self, path: Path) -> None:
        if not path.exists():
            return
        with np.load(path) as saved:
            n = sum(1 for key in saved.files if key.startswith("sum"))
            self.count = int(saved["count"])
            self.sums = [saved[f"sum{i}"] for i in range(n)]
            self.latest = [saved[f"latest{i}"] for i in range(n)]


def snapshot_callback(average: WeightAverage, steps_per_epoch: int, epoch: int):
    """A Keras callback for one epoch's fit(): snapshots at the global steps the average asks for."""
    import keras

    class _Snapshots(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            average.on_step(epoch * steps_per_epoch + batch + 1)

    return _Snapshots()
