"""How much `--detect-every K` changes the per-frame output, and what it buys in speed, on real videos.

For each detector and K, every frame of each video is analysed and compared with the same detector at K=1
(the reference): the share of reference faces that still have a box (IoU >= 0.5), the mean IoU of those
boxes, the share with the same expression, and the extra faces. Speed is frames/second of the whole pipeline
with the stages built once (warm-up excluded).

    python training/eval_detect_every.py --videos ../shared/fixtures/fer-woman2.mp4 \\
        ../shared/fixtures/pyfeat-WolfgangLanger_Pexels.mp4 --detectors mtcnn blazeface --every 1 2 5 10 --out reports/
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fer_batch.api import Collector, build_stages, run_batch  # noqa: E402
from fer_batch.options import AnalyzeOptions  # noqa: E402
from fer_batch.sources import walk_inputs  # noqa: E402
from fer_batch.track import greedy_pairs, iou_matrix  # noqa: E402


def boxes_of(rows: pd.DataFrame) -> np.ndarray:
    return rows[["x", "y", "w", "h"]].to_numpy(np.float64) @ np.array(
        [[1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0], [0, 0, 0, 1]], np.float64)


def compare(reference: pd.DataFrame, candidate: pd.DataFrame, min_iou: float = 0.5) -> dict:
    """Face-level agreement of `candidate` with `reference` (per-frame CSV rows of the same video)."""
    ref_faces = reference.dropna(subset=["x"])
    cand_faces = candidate.dropna(subset=["x"])
    kept, ious, same, extra = 0, [], 0, 0
    for frame, ref_rows in ref_faces.groupby("frame"):
        cand_rows = cand_faces[cand_faces["frame"] == frame]
        iou = iou_matrix(boxes_of(ref_rows), boxes_of(cand_rows)) if len(cand_rows) else np.zeros((len(ref_rows), 0))
        pairs = greedy_pairs(np.where(iou >= min_iou, iou, -1.0))
        kept += len(pairs)
        for r, c in pairs:
            ious.append(iou[r, c])
            same += ref_rows["expression"].iloc[r] == cand_rows["expression"].iloc[c]
        extra += len(cand_rows) - len(pairs)
    extra += len(cand_faces[~cand_faces["frame"].isin(ref_faces["frame"])])
    n = len(ref_faces)
    return {"reference_faces": n, "faces_kept": kept / n if n else None,
            "mean_iou": float(np.mean(ious)) if ious else None,
            "same_expression": same / kept if kept else None, "extra_faces": int(extra)}


def run(video: Path, options: AnalyzeOptions, stages) -> tuple[pd.DataFrame, float]:
    inputs, _ = walk_inputs([video])
    started = time.perf_counter()
    analysis = run_batch(inputs, Collector([]), options, stages=stages)
    return analysis.frames, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", nargs="+", type=Path, required=True)
    parser.add_argument("--detectors", nargs="+", default=["mtcnn", "blazeface"])
    parser.add_argument("--every", nargs="+", type=int, default=[1, 2, 5, 10])
    parser.add_argument("--max-frames", type=int, default=None, help="analyse at most this many frames per video")
    parser.add_argument("--no-flip-tta", action="store_true")
    parser.add_argument("--fps", type=float, default=None, help="sample the videos at this rate [default: every frame]")
    parser.add_argument("--out", type=Path, default=Path("reports"))
    parser.add_argument("--name", default="detect-every", help="report file stem")
    args = parser.parse_args(argv)

    rows = []
    for detector in args.detectors:
        base = AnalyzeOptions(fps=args.fps, max_frames=args.max_frames, detector=detector, quiet=True,
                              flip_tta=not args.no_flip_tta)
        stages = build_stages(base)
        run(args.videos[0], AnalyzeOptions(**{**vars(base), "max_frames": 16}), stages)  # warm-up
        for video in args.videos:
            reference, ref_seconds = None, None
            for every in sorted(set([1, *args.every])):
                options = AnalyzeOptions(**{**vars(base), "detect_every": every})
                frames, seconds = run(video, options, stages)
                if every == 1:
                    reference, ref_seconds = frames, seconds
                n_frames = frames["frame"].nunique()
                row = {"video": video.name, "detector": detector, "detect_every": every, "frames": int(n_frames),
                       "fps": round(n_frames / seconds, 2), "speed_vs_every_frame": round(ref_seconds / seconds, 2)}
                row.update({k: (round(v, 4) if isinstance(v, float) else v) for k, v in compare(reference, frames).items()})
                rows.append(row)
                print(json.dumps(row), flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    command = "python training/eval_detect_every.py " + " ".join(sys.argv[1:] if argv is None else argv)
    (args.out / f"{args.name}.json").write_text(json.dumps({"command": command, "rows": rows}, indent=1))
    table = pd.DataFrame(rows)
    lines = ["# Detecting on every k-th frame", "", "```", command, "```", "",
             f"Each video analysed at {'every frame' if args.fps is None else f'{args.fps:g} frames per second'}; K = 1 is the reference each row is compared with. "
             "`faces_kept`: share of the reference's faces that still have a box at IoU >= 0.5; `mean_iou` of "
             "those boxes; `same_expression`: share of them with the same top expression; `extra_faces`: boxes "
             "the reference does not have. `fps`: frames/second of the whole pipeline (stages built once).", "",
             "| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    for record in table.itertuples(index=False):
        lines.append("| " + " | ".join("" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
                                       for v in record) + " |")
    (args.out / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
