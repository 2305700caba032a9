"""Detection on every k-th sampled frame of a video (`--detect-every K`): the frames between two keyframes get
boxes interpolated from the faces the detector found on either side, and are classified like any other frame.

An interpolated face has no detection score (NaN, an empty `det_score` cell): the detector did not see it there.
A face found on only one side is kept for the half of the gap nearer to that side.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fer_batch.track import greedy_pairs, match_scores
from fer_batch.types import Faces, Frame


def interpolate_faces(before: Faces, after: Faces, fraction: float) -> Faces:
    """The faces at `fraction` (0..1) of the way from the keyframe `before` to the keyframe `after`."""
    pairs = greedy_pairs(match_scores(before.boxes, after.boxes)) if len(before) and len(after) else []
    # (box, landmarks) of each face: a straight line between the keyframes, or held from the nearer one
    with_points = before.landmarks is not None and after.landmarks is not None
    points = [((1.0 - fraction) * before.landmarks[i] + fraction * after.landmarks[j]) if with_points else None
              for i, j in pairs]
    boxes = [(1.0 - fraction) * before.boxes[i] + fraction * after.boxes[j] for i, j in pairs]
    nearer, paired = (before, {i for i, _ in pairs}) if fraction < 0.5 else (after, {j for _, j in pairs})
    for k in range(len(nearer)):
        if k not in paired:
            boxes.append(nearer.boxes[k])
            points.append(nearer.landmarks[k] if with_points else None)
    if not boxes:
        return Faces.empty()
    landmarks = np.asarray(points, np.float32).reshape(-1, 5, 2) if with_points else None
    return Faces(np.asarray(boxes, np.float32).reshape(-1, 4), np.full(len(boxes), np.nan, np.float32), landmarks)


@dataclass
class _VideoState:
    sampled: int = 0
    last_key: tuple[Frame, Faces] | None = None
    waiting: list[Frame] = field(default_factory=list)


@dataclass
class KeyframeScheduler:
    """Decides which sampled frames of each video the detector sees, and fills in the ones it skips.

    Frames arrive in order per video. `is_keyframe` is asked once per frame; non-keyframes are `hold`-ed until the
    next keyframe's faces are known (`release`), or until the video ends (`take_last_held`)."""

    every: int
    _videos: dict[str, _VideoState] = field(default_factory=dict)

    def is_keyframe(self, source: str) -> bool:
        state = self._videos.setdefault(source, _VideoState())
        state.sampled += 1
        return self.every <= 1 or (state.sampled - 1) % self.every == 0

    def hold(self, frame: Frame) -> None:
        self._videos[frame.source].waiting.append(frame)

    def release(self, key: Frame, faces: Faces) -> list[tuple[Frame, Faces]]:
        """The held frames before keyframe `key` with interpolated faces, then `key` itself, in frame order."""
        state = self._videos.setdefault(key.source, _VideoState())
        ready = []
        if state.waiting:
            previous = state.last_key
            for frame in state.waiting:
                if previous is None:
                    ready.append((frame, faces))
                    continue
                start, end = previous[0].time_s or 0.0, key.time_s or 0.0
                fraction = (frame.time_s - start) / (end - start) if end > start and frame.time_s is not None else 0.5
                ready.append((frame, interpolate_faces(previous[1], faces, float(np.clip(fraction, 0.0, 1.0)))))
            state.waiting.clear()
        state.last_key = (key, faces)
        ready.append((key, faces))
        return ready

    def take_last_held(self, source: str) -> Frame | None:
        """At the end of a video: the last held frame, which becomes a keyframe so the frames before it have a
        keyframe on both sides (None when nothing is held)."""
        state = self._videos.get(source)
        if state is None or not state.waiting:
            return None
        return state.waiting.pop()

    def forget(self, source: str) -> None:
        self._videos.pop(source, None)
