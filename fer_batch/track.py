"""Track faces across the sampled frames of one video: greedy matching on box overlap, with centre distance as a fallback."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fer_batch.detect.base import box_iou


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU between every box of `a` (n, 4) and `b` (m, 4), boxes as x1, y1, x2, y2."""
    return box_iou(np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4))


def _centre_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance between box centres, in units of the mean box size of the pair."""
    ca = (a[:, None, :2] + a[:, None, 2:]) / 2
    cb = (b[None, :, :2] + b[None, :, 2:]) / 2
    size_a = np.sqrt((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]))
    size_b = np.sqrt((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))
    scale = np.maximum((size_a[:, None] + size_b[None, :]) / 2, 1e-6)
    return np.linalg.norm(ca - cb, axis=2) / scale


def match_scores(a: np.ndarray, b: np.ndarray, min_iou: float = 0.3, max_centre_distance: float = 0.6) -> np.ndarray:
    """How well each box of `a` continues as each box of `b`: 1 + IoU when they overlap enough, else 1 - centre
    distance when the centres are close (fast motion), else -1 (no match)."""
    iou = iou_matrix(a, b)
    dist = _centre_distance(np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4))
    return np.where(iou >= min_iou, 1.0 + iou, np.where(dist <= max_centre_distance, 1.0 - dist, -1.0))


def greedy_pairs(score: np.ndarray) -> list[tuple[int, int]]:
    """One-to-one pairs (row, column) taken best score first, ignoring negative scores."""
    pairs: list[tuple[int, int]] = []
    rows: set[int] = set()
    cols: set[int] = set()
    if score.size == 0:
        return pairs
    for flat in np.argsort(-score, axis=None, kind="stable"):
        r, c = divmod(int(flat), score.shape[1])
        if score[r, c] < 0:
            break
        if r not in rows and c not in cols:
            pairs.append((r, c))
            rows.add(r)
            cols.add(c)
    return pairs


@dataclass
class _Track:
    track_id: int
    box: np.ndarray
    velocity: np.ndarray
    last_time: float


def max_track_gap_s(fps: float | None) -> float:
    """How long a track may go unseen: a second, or two and a half sampling steps when --fps samples more sparsely
    (at --fps 1 consecutive frames of a 29.97 frames/s video are 1.001 s apart, and a person would otherwise get a
    new track in every frame)."""
    return max(1.0, 2.5 / fps) if fps else 1.0


@dataclass
class IouTracker:
    """Assigns a track id (1, 2, ...) to each face of successive frames of one video.

    A face continues a track when its box overlaps the track's predicted box (IoU >= `min_iou`) or, for fast
    motion at low sampling rates, when the centres are within `max_centre_distance` box sizes. Tracks unseen
    for more than `max_gap_s` seconds end; a face that returns later gets a new id.
    """

    min_iou: float = 0.3
    max_centre_distance: float = 0.6
    max_gap_s: float = 1.0
    _tracks: list[_Track] = field(default_factory=list)
    _next_id: int = 1

    def update(self, boxes: np.ndarray, time_s: float) -> np.ndarray:
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        self._tracks = [t for t in self._tracks if time_s - t.last_time <= self.max_gap_s + 1e-9]
        ids = np.zeros(len(boxes), np.int64)
        unmatched = set(range(len(boxes)))
        if self._tracks and len(boxes):
            predicted = np.stack([t.box + t.velocity * (time_s - t.last_time) for t in self._tracks])
            for ti, bi in greedy_pairs(match_scores(predicted, boxes, self.min_iou, self.max_centre_distance)):
                track = self._tracks[ti]
                dt = time_s - track.last_time
                if dt > 0:
                    track.velocity = 0.5 * track.velocity + 0.5 * (boxes[bi] - track.box) / dt
                track.box, track.last_time = boxes[bi], time_s
                ids[bi] = track.track_id
                unmatched.discard(bi)
        for bi in sorted(unmatched):
            self._tracks.append(_Track(self._next_id, boxes[bi], np.zeros(4), time_s))
            ids[bi] = self._next_id
            self._next_id += 1
        return ids
