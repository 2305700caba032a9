"""Per-frame results -> the per-frame DataFrame, the per-input and per-track summaries, and display smoothing."""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from fer_batch.labels import LABELS
from fer_batch.types import FrameResult

FRAME_COLUMNS: tuple[str, ...] = (
    "source", "frame", "time_s", "face", "track_id", "x", "y", "w", "h", "det_score",
    *LABELS, "expression", "confidence",
)
PROFILE_COLUMNS: tuple[str, ...] = (
    "dominant_expression", *(f"share_{label}" for label in LABELS), *(f"mean_{label}" for label in LABELS),
)
SUMMARY_COLUMNS: tuple[str, ...] = (
    "source", "kind", "frames_analysed", "duration_s", "faces", "tracks", *PROFILE_COLUMNS,
)
TRACK_COLUMNS: tuple[str, ...] = (
    "source", "track_id", "first_frame", "last_frame", "start_s", "end_s", "faces", *PROFILE_COLUMNS,
)
BY_SECOND_COLUMNS: tuple[str, ...] = (
    "second", "videos_analysed", "videos_with_face", "faces", *(f"mean_{label}" for label in LABELS),
    "dominant_expression",
)
ERROR_COLUMNS: tuple[str, ...] = ("input", "stage", "reason")
SKIPPED_COLUMNS: tuple[str, ...] = ("path", "reason")

_INT_COLUMNS = ("face", "track_id", "x", "y", "w", "h")


def frame_rows(result: FrameResult) -> list[dict]:
    """One row per face, or one row with empty face columns when the frame has no face."""
    base = {"source": result.source, "frame": result.index, "time_s": result.time_s}
    faces = result.faces
    if len(faces) == 0:
        return [base]
    rows = []
    for i in range(len(faces)):
        x1, y1, x2, y2 = (float(v) for v in faces.boxes[i])
        row = dict(base, face=i, x=int(round(x1)), y=int(round(y1)), w=int(round(x2 - x1)), h=int(round(y2 - y1)),
                   det_score=round(float(faces.scores[i]), 4))
        if faces.track_ids is not None:
            row["track_id"] = int(faces.track_ids[i])
        if faces.probs is not None:
            probs = faces.probs[i].astype(np.float64)
            best = int(np.argmax(probs))
            row.update({label: round(float(p), 5) for label, p in zip(LABELS, probs)})
            row["expression"] = LABELS[best]
            row["confidence"] = round(float(probs[best]), 5)
        rows.append(row)
    return rows


def frames_dataframe(results: Iterable[FrameResult]) -> pd.DataFrame:
    rows = [row for result in results for row in frame_rows(result)]
    df = pd.DataFrame(rows, columns=list(FRAME_COLUMNS))
    return normalise_frame_types(df)


def normalise_frame_types(df: pd.DataFrame) -> pd.DataFrame:
    """Fix column types: integer columns as nullable Int64, times and scores as float, text as object."""
    df = df.reindex(columns=list(FRAME_COLUMNS))
    df["frame"] = df["frame"].astype("int64")
    for col in _INT_COLUMNS:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("Int64")
    for col in ("time_s", "det_score", *LABELS, "confidence"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    for col in ("source", "expression"):
        df[col] = df[col].astype(object)
    return df


def summarise(source: str, kind: str, frames: pd.DataFrame, duration_s: float | None) -> dict:
    """One summary row for one input from its per-frame rows."""
    faces = frames[frames["face"].notna()]
    row: dict = {
        "source": source, "kind": kind, "frames_analysed": int(frames["frame"].nunique()) if len(frames) else 0,
        "duration_s": None if duration_s is None else round(float(duration_s), 3), "faces": int(len(faces)),
        "tracks": int(faces["track_id"].nunique()) if kind == "video" else int(len(faces)),
    }
    if len(faces):
        row.update(expression_profile(faces))
    return row


def expression_profile(faces: pd.DataFrame) -> dict:
    """Of some face rows: the most frequent expression, each expression's share of the rows and mean probability."""
    shares = faces["expression"].value_counts(normalize=True)
    means = faces[list(LABELS)].mean()
    profile: dict = {"dominant_expression": LABELS[int(np.argmax([shares.get(label, 0.0) for label in LABELS]))]}
    profile.update({f"share_{label}": round(float(shares.get(label, 0.0)), 5) for label in LABELS})
    profile.update({f"mean_{label}": round(float(means[label]), 5) for label in LABELS})
    return profile


def track_summary(frames: pd.DataFrame) -> pd.DataFrame:
    """One row per person (track) per video, in input order and then by track id."""
    tracked = frames[frames["track_id"].notna() & frames["face"].notna()]
    position = {source: i for i, source in enumerate(pd.unique(frames["source"]))}
    rows = []
    for (source, track_id), part in tracked.groupby(["source", "track_id"], sort=False):
        rows.append({"source": source, "track_id": int(track_id), "first_frame": int(part["frame"].min()),
                     "last_frame": int(part["frame"].max()), "start_s": _rounded(part["time_s"].min()),
                     "end_s": _rounded(part["time_s"].max()), "faces": int(len(part)), **expression_profile(part)})
    rows.sort(key=lambda row: (position[row["source"]], row["track_id"]))
    df = pd.DataFrame(rows, columns=list(TRACK_COLUMNS))
    for col in ("track_id", "first_frame", "last_frame", "faces"):
        df[col] = pd.to_numeric(df[col]).astype("Int64")
    return df


def videos_by_second(frames: pd.DataFrame, videos: Iterable[str]) -> pd.DataFrame:
    """All videos together, second by second of each video's own time (for recordings of one stimulus): for each
    whole second any video was analysed at, how many videos were analysed then and how many showed a face, how
    many face rows there are, and each expression's mean probability, averaged first within each video and then
    across the videos with a face, so each counts once (empty when none had one)."""
    rows = frames[frames["source"].isin(set(videos)) & frames["time_s"].notna()]
    if rows.empty:
        return pd.DataFrame(columns=list(BY_SECOND_COLUMNS))
    rows = rows.assign(second=np.floor(rows["time_s"].to_numpy(float) + 1e-6).astype(np.int64))
    faces = rows[rows["face"].notna()]
    seconds = pd.Index(np.unique(rows["second"].to_numpy()), name="second")
    per_video = faces.groupby(["second", "source"], sort=True)[list(LABELS)].mean()
    means = per_video.groupby(level="second").mean().reindex(seconds)
    df = pd.DataFrame({
        "second": seconds.to_numpy(np.int64),
        "videos_analysed": rows.groupby("second")["source"].nunique().reindex(seconds).to_numpy(np.int64),
        "videos_with_face": per_video.groupby(level="second").size().reindex(seconds, fill_value=0).to_numpy(np.int64),
        "faces": faces.groupby("second").size().reindex(seconds, fill_value=0).to_numpy(np.int64)})
    for label in LABELS:
        df[f"mean_{label}"] = means[label].round(5).to_numpy()
    probs = means[list(LABELS)].to_numpy(float)
    df["dominant_expression"] = [LABELS[int(np.nanargmax(p))] if not np.isnan(p).all() else None for p in probs]
    return df[list(BY_SECOND_COLUMNS)]


def _rounded(seconds: float) -> float | None:
    return None if pd.isna(seconds) else round(float(seconds), 6)   # as time_s, so a track joins its rows on time too


def summary_dataframe(rows: Sequence[dict]) -> pd.DataFrame:
    df = pd.DataFrame(list(rows), columns=list(SUMMARY_COLUMNS))
    for col in ("frames_analysed", "faces", "tracks"):
        df[col] = pd.to_numeric(df[col]).astype("Int64")
    return df


def smooth_probabilities(frames: pd.DataFrame, seconds: float) -> pd.DataFrame:
    """A copy with each track's probabilities replaced by a centred rolling mean over `seconds` of video time.

    For display only: the CSVs always hold the raw per-frame values.
    """
    out = frames.copy()
    if seconds <= 0 or out.empty:
        return out
    label_cols = list(LABELS)
    mask = out["track_id"].notna() & out["time_s"].notna()
    for _, idx in out[mask].groupby(["source", "track_id"]).groups.items():
        part = out.loc[idx].sort_values("time_s")
        times = pd.to_datetime(part["time_s"].to_numpy(), unit="s")
        rolled = part[label_cols].set_axis(times).rolling(pd.Timedelta(seconds=seconds), center=True, min_periods=1).mean()
        out.loc[part.index, label_cols] = rolled.to_numpy()
    return out
