r"""Write reports/models.md: every model tried, its data, its validation figures and the command that trained it.

The current reports/models.md:

    python training/models_table.py \
      --calibrations reports/calibration/shipped.json:reports/eval-shipped-fer2013-val.json \
      reports/calibration/shipped.json:reports/eval-shipped-fer2013-val-zoom-tta.json \
      --task-vectors \
      reports/taskvec/task-vector-vgg_small-refit-x0.5.json:reports/taskvec/eval-vgg_small-refit-x0.5-fer2013-val.json \
      reports/taskvec/task-vector-vgg_small-refit-x1.25.json:reports/taskvec/eval-vgg_small-refit-x1.25-fer2013-val.json \
      reports/taskvec/task-vector-vgg_small-refit-x1.5.json:reports/taskvec/eval-vgg_small-refit-x1.5-fer2013-val.json \
      reports/taskvec/task-vector-vgg_small-refit-x2.0.json:reports/taskvec/eval-vgg_small-refit-x2.0-fer2013-val.json \
      reports/taskvec/task-vector-vgg_small-refit-f0-x1.25.json:reports/taskvec/eval-vgg_small-refit-f0-x1.25-fer2013-val.json \
      reports/taskvec/task-vector-vgg_small-refit-f0-x1.5.json:reports/taskvec/eval-vgg_small-refit-f0-x1.5-fer2013-val.json \
      reports/taskvec/task-vector-vgg_small-refit-f0-x1.75.json:reports/taskvec/eval-vgg_small-refit-f0-x1.75-fer2013-val.json \
      reports/taskvec/task-vector-vgg_small-refit-f0-x2.0.json:reports/taskvec/eval-vgg_small-refit-f0-x2.0-fer2013-val.json \
      --averages reports/training-vgg_small-stage4-swa-f0.json:reports/swa/eval-vgg_small-stage4-swa-f0-fer2013-val.json \
      --runs \
      reports/training-vgg_small-erase-refit-f0.json:reports/erase/eval-vgg_small-erase-refit-f0-fer2013-val.json \
      reports/training-vgg_small-stage4-erase-f0.json:reports/erase/eval-vgg_small-stage4-erase-f0-fer2013-val.json \
      reports/training-vgg_small-swa-refit-f0.json:reports/swa/eval-vgg_small-swa-refit-f0-fer2013-val.json \
      reports/training-vgg_small-stage4-swa-f0.json:reports/swa/eval-vgg_small-stage4-expw-f0-s33-fer2013-val.json \
      reports/training-vgg_small-pl-refit.json:reports/selftrain/eval-vgg_small-pl-refit-fer2013-val.json \
      reports/training-vgg_small-stage4-pl-f1.json:reports/selftrain/eval-vgg_small-stage4-pl-f1-fer2013-val.json \
      reports/training-vgg_small-pl-refit-f0.json:reports/selftrain/eval-vgg_small-pl-refit-f0-fer2013-val.json \
      reports/training-vgg_small-stage4-pl-f0.json:reports/selftrain/eval-vgg_small-stage4-pl-f0-fer2013-val.json \
      reports/training-vgg_small-reframed-s4-refit-f0.json:reports/reframe/eval-vgg_small-reframed-s4-refit-f0-fer2013-val.json \
      reports/training-vgg_small-stage4-reframed-f0.json:reports/reframe/eval-vgg_small-stage4-reframed-f0-fer2013-val.json \
      reports/training-vgg_small-reframed-refit-f0.json:reports/reframe/eval-vgg_small-reframed-refit-f0-fer2013-val.json \
      reports/training-vgg_small-stage4-dann03-f1.json:reports/dann/eval-vgg_small-stage4-dann03-f1-fer2013-val.json \
      reports/training-vgg_small-dann03-refit-f0.json:reports/dann/eval-vgg_small-dann03-refit-f0-fer2013-val.json \
      reports/training-vgg_small-stage4-dann03-f0.json:reports/dann/eval-vgg_small-stage4-dann03-f0-fer2013-val.json \
      reports/training-vgg_small-dw10-refit-f0.json:reports/dw/eval-vgg_small-dw10-refit-f0-fer2013-val.json \
      reports/training-vgg_small-dw05-refit-f0.json:reports/dw/eval-vgg_small-dw05-refit-f0-fer2013-val.json \
      reports/training-vgg_small-half-refit-f1.json:reports/curve/eval-vgg_small-half-refit-f1-fer2013-val.json \
      reports/training-vgg_small-stage4-half-f1.json:reports/curve/eval-vgg_small-stage4-half-f1-fer2013-val.json \
      reports/training-vgg_small-s3tail-f100-s0.json:reports/curve/eval-vgg_small-s3tail-f100-s0-fer2013-val.json \
      reports/training-vgg_small-s3tail-f050-s1.json:reports/curve/eval-vgg_small-s3tail-f050-s1-fer2013-val.json \
      reports/training-vgg_small-s3tail-f050-s0.json:reports/curve/eval-vgg_small-s3tail-f050-s0-fer2013-val.json \
      reports/training-vgg_small-s3tail-f025-s1.json:reports/curve/eval-vgg_small-s3tail-f025-s1-fer2013-val.json \
      reports/training-vgg_small-s3tail-f025-s0.json:reports/curve/eval-vgg_small-s3tail-f025-s0-fer2013-val.json \
      reports/training-vgg_small-s3tail-f012-s1.json:reports/curve/eval-vgg_small-s3tail-f012-s1-fer2013-val.json \
      reports/training-vgg_small-s3tail-f012-s0.json:reports/curve/eval-vgg_small-s3tail-f012-s0-fer2013-val.json \
      reports/training-vgg_small-boot07-refit-f0.json:reports/boot/eval-vgg_small-boot07-refit-f0-fer2013-val.json \
      reports/training-vgg_small-boot04-refit-f0.json:reports/boot/eval-vgg_small-boot04-refit-f0-fer2013-val.json \
      reports/training-vgg_small-blur-refit-f1.json:reports/blur/eval-vgg_small-blur-refit-f1-fer2013-val.json \
      reports/training-vgg_small-stage4-blur-f1.json:reports/blur/eval-vgg_small-stage4-blur-f1-fer2013-val.json \
      reports/training-vgg_small-s4q-refit-bias-q123.json:reports/stage4q/eval-vgg_small-s4q-refit-bias-q123-fer2013-val.json \
      reports/training-vgg_small-s4q-refit-bias-q013.json:reports/stage4q/eval-vgg_small-s4q-refit-bias-q013-fer2013-val.json \
      reports/training-vgg_small-s4q-refit-q123.json:reports/stage4q/eval-vgg_small-s4q-refit-q123-fer2013-val.json \
      reports/training-vgg_small-s4q-refit-q013.json:reports/stage4q/eval-vgg_small-s4q-refit-q013-fer2013-val.json \
      reports/training-vgg_small-stage4-q123.json:reports/stage4q/eval-vgg_small-stage4-q123-fer2013-val.json \
      reports/training-vgg_small-stage4-q013.json:reports/stage4q/eval-vgg_small-stage4-q013-fer2013-val.json \
      reports/training-vgg_small-refit-bias.json:reports/bias/eval-vgg_small-refit-bias-fer2013-val.json \
      reports/training-vgg_small-refit-bias-f0.json:reports/bias/eval-vgg_small-refit-bias-f0-fer2013-val.json \
      reports/training-vgg_small-refit-q123.json:reports/bias/eval-vgg_small-refit-q123-fer2013-val.json \
      reports/training-vgg_small-refit-q013.json:reports/bias/eval-vgg_small-refit-q013-fer2013-val.json \
      reports/training-vgg_small-fer80-refit-f1.json:reports/fer80/eval-vgg_small-fer80-refit-f1-fer2013-val.json \
      reports/training-vgg_small-fer80-refit-f0.json:reports/fer80/eval-vgg_small-fer80-refit-f0-fer2013-val.json \
      reports/training-vgg_small-fer80-s4-f1.json:reports/fer80/eval-vgg_small-fer80-s4-f1-fer2013-val.json \
      reports/training-vgg_small-fer80-s4-f0.json:reports/fer80/eval-vgg_small-fer80-s4-f0-fer2013-val.json \
      reports/training-vgg_small-fer80.json:reports/fer80/eval-vgg_small-fer80-fer2013-val.json \
      reports/training-vgg_small-long80-refit.json:reports/long/eval-vgg_small-long80-refit-fer2013-val.json \
      reports/training-vgg_small-long80-f1.json:reports/long/eval-vgg_small-long80-f1-fer2013-val.json \
      reports/training-vgg_small-refit.json:reports/calibration/eval-refit-uncalibrated-fer2013-val.json \
      reports/training-vgg_small-refit-f0.json:reports/refit/eval-vgg_small-refit-f0-fer2013-val.json \
      reports/training-vgg_small-stage4-expw-f1.json:reports/eval-vgg_small-stage4-expw-f1-fer2013-val.json \
      reports/training-vgg_small-stage4-expw-f0.json:reports/eval-vgg_small-stage4-expw-f0-fer2013-val.json \
      reports/training-vgg_small-stage4-align-f0.json:reports/eval-vgg_small-stage4-align-f0-fer2013-val.json \
      reports/training-vgg_small-stage4-m0x10-f0.json:reports/eval-vgg_small-stage4-m0x10-f0-fer2013-val.json \
      reports/training-vgg_small-stage4-drop05-f0.json:reports/eval-vgg_small-stage4-drop05-f0-fer2013-val.json \
      reports/training-vgg_small-stage4-twodet-f0.json:reports/eval-vgg_small-stage4-twodet-f0-fer2013-val.json \
      reports/training-vgg_small-stage4-control.json:reports/eval-vgg_small-stage4-control-fer2013-val.json \
      reports/training-vgg_small-stage3.json:reports/eval-vgg_small-stage3-fer2013-val.json \
      reports/training-vgg_small-stage2.json:reports/eval-vgg_small-stage2-fer2013-val.json \
      reports/training-vgg_small.json:reports/eval-vgg_small-stage1-fer2013-val.json \
      reports/training-seed.json:reports/eval-seed-fer2013-val.json \
      --e2e reports/e2e-shipped-expw-sample-fold0.json reports/e2e-shipped-mtcnn-aligned-fold0.json \
      reports/erase/e2e-vgg_small-erase-refit-f0-mtcnn-aligned-fold1.json reports/erase/e2e-vgg_small-stage4-erase-f0-mtcnn-aligned-fold1.json \
      reports/swa/e2e-vgg_small-swa-refit-f0-mtcnn-aligned-fold1.json reports/swa/e2e-vgg_small-stage4-swa-f0-mtcnn-aligned-fold1.json \
      reports/swa/e2e-vgg_small-stage4-expw-f0-s33-mtcnn-aligned-fold1.json \
      reports/selftrain/e2e-vgg_small-pl-refit-mtcnn-aligned-fold0.json reports/selftrain/e2e-vgg_small-pl-refit-f0-mtcnn-aligned-fold1.json \
      reports/selftrain/e2e-crossfit-pl-mtcnn-aligned.json \
      reports/taskvec/e2e-vgg_small-refit-x0.5-mtcnn-aligned-fold0.json reports/taskvec/e2e-vgg_small-refit-x1.25-mtcnn-aligned-fold0.json \
      reports/taskvec/e2e-vgg_small-refit-f0-s31-mtcnn-aligned-fold1.json reports/taskvec/e2e-vgg_small-refit-f0-x1.25-s31-mtcnn-aligned-fold1.json \
      reports/taskvec/e2e-vgg_small-refit-f0-x1.5-s31-mtcnn-aligned-fold1.json reports/taskvec/e2e-vgg_small-refit-f0-x1.75-s31-mtcnn-aligned-fold1.json \
      reports/taskvec/e2e-vgg_small-refit-f0-x2.0-s31-mtcnn-aligned-fold1.json \
      reports/calibration/e2e-refit-uncalibrated-mtcnn-aligned-fold0.json \
      reports/reframe/e2e-vgg_small-reframed-refit-f0-mtcnn-aligned-fold1.json \
      reports/reframe/e2e-vgg_small-stage4-reframed-f0-mtcnn-aligned-fold1.json reports/reframe/e2e-vgg_small-reframed-s4-refit-f0-mtcnn-aligned-fold1.json \
      reports/dann/e2e-vgg_small-stage4-dann03-f1-mtcnn-aligned-fold0.json \
      reports/dann/e2e-vgg_small-stage4-dann03-f0-mtcnn-aligned-fold1.json reports/dann/e2e-vgg_small-dann03-refit-f0-mtcnn-aligned-fold1.json \
      reports/dann/e2e-vgg_small-stage4-expw-f0-rebuilt-mtcnn-aligned-fold1.json \
      reports/dw/e2e-vgg_small-dw05-refit-f0-mtcnn-aligned-fold1.json reports/dw/e2e-vgg_small-dw10-refit-f0-mtcnn-aligned-fold1.json \
      reports/curve/e2e-vgg_small-half-refit-f1-mtcnn-aligned-fold0.json reports/curve/e2e-vgg_small-stage4-half-f1-mtcnn-aligned-fold0.json \
      reports/curve/e2e-vgg_small-s3tail-f100-s0-mtcnn-aligned-fold0.json reports/curve/e2e-vgg_small-s3tail-f050-s1-mtcnn-aligned-fold0.json reports/curve/e2e-vgg_small-s3tail-f050-s0-mtcnn-aligned-fold0.json reports/curve/e2e-vgg_small-s3tail-f025-s1-mtcnn-aligned-fold0.json \
      reports/curve/e2e-vgg_small-s3tail-f025-s0-mtcnn-aligned-fold0.json reports/curve/e2e-vgg_small-s3tail-f012-s1-mtcnn-aligned-fold0.json reports/curve/e2e-vgg_small-s3tail-f012-s0-mtcnn-aligned-fold0.json reports/curve/e2e-vgg_small-stage3-mtcnn-aligned-fold0.json \
      reports/boot/e2e-vgg_small-boot07-refit-f0-mtcnn-aligned-fold1.json reports/boot/e2e-vgg_small-boot04-refit-f0-mtcnn-aligned-fold1.json \
      reports/bias/e2e-vgg_small-refit-bias-mtcnn-aligned-fold0.json \
      reports/blur/e2e-vgg_small-blur-refit-f1-mtcnn-aligned-fold0.json reports/blur/e2e-vgg_small-stage4-blur-f1-mtcnn-aligned-fold0.json \
      reports/stage4q/e2e-crossfit-s4q-refit-mtcnn-aligned-fold0.json reports/stage4q/e2e-crossfit-s4q-refit-bias-mtcnn-aligned-fold0.json reports/stage4q/e2e-crossfit-stage4q-mtcnn-aligned-fold0.json \
      reports/stage4q/e2e-crossfit-stage4q-last-mtcnn-aligned-fold0.json reports/stage4q/e2e-crossfit-s4q-last-refit-mtcnn-aligned-fold0.json \
      reports/bias/e2e-vgg_small-refit-bias-f0-mtcnn-aligned-fold1.json reports/bias/e2e-crossfit-refit-bias-mtcnn-aligned.json \
      reports/bias/e2e-crossfit-refit-q-mtcnn-aligned-fold0.json \
      reports/e2e-shipped-mtcnn-aligned-zoom-tta-fold0.json \
      reports/rebuilt/e2e-vgg_small-refit-f0-rebuilt-mtcnn-aligned-fold1.json reports/rebuilt/e2e-vgg_small-refit-f0-rebuilt-mtcnn-aligned-zoom-tta-fold1.json \
      reports/fer80/e2e-vgg_small-fer80-refit-f1-mtcnn-aligned-fold0.json reports/fer80/e2e-vgg_small-fer80-s4-f1-mtcnn-aligned-fold0.json \
      reports/fer80/e2e-vgg_small-fer80-mtcnn-aligned-fold0.json \
      reports/fer80/e2e-vgg_small-fer80-refit-f0-mtcnn-aligned-fold1.json reports/fer80/e2e-vgg_small-fer80-s4-f0-mtcnn-aligned-fold1.json \
      reports/long/e2e-vgg_small-long80-refit-mtcnn-aligned-fold0.json reports/long/e2e-vgg_small-long80-f1-mtcnn-aligned-fold0.json \
      reports/e2e-shipped-blazeface-expw-sample-fold0.json reports/e2e-shipped-blazeface-aligned-fold0.json \
      reports/e2e-vgg_small-stage4-expw-f1-mtcnn-fold0.json reports/e2e-vgg_small-stage4-expw-f1-mtcnn-aligned-fold0.json \
      reports/e2e-vgg_small-stage4-expw-f1-blazeface-fold0.json reports/e2e-vgg_small-stage4-expw-f1-blazeface-aligned-fold0.json \
      reports/refit/e2e-vgg_small-refit-f0-mtcnn-fold1.json reports/refit/e2e-vgg_small-refit-f0-mtcnn-aligned-fold1.json \
      reports/refit/e2e-vgg_small-refit-f0-blazeface-fold1.json reports/refit/e2e-vgg_small-refit-f0-blazeface-aligned-fold1.json \
      reports/e2e-vgg_small-stage4-control-expw-sample-fold0.json reports/e2e-vgg_small-stage4-control-blazeface-expw-sample-fold0.json \
      reports/e2e-vgg_small-stage3-expw-sample-fold0.json reports/e2e-vgg_small-stage3-blazeface-expw-sample-fold0.json \
      reports/e2e-vgg_small-stage4-expw-f0-expw-sample-fold1.json reports/align/e2e-f0model-mtcnn-aligned-fold1.json \
      reports/e2e-vgg_small-stage4-expw-f0-blazeface-expw-sample-fold1.json \
      reports/align/e2e-vgg_small-stage4-align-f0-mtcnn-fold1.json reports/align/e2e-vgg_small-stage4-align-f0-mtcnn-aligned-fold1.json \
      reports/align/e2e-vgg_small-stage4-m0x10-f0-mtcnn-fold1.json \
      reports/align/e2e-vgg_small-stage4-drop05-f0-mtcnn-fold1.json reports/align/e2e-vgg_small-stage4-drop05-f0-mtcnn-aligned-fold1.json \
      reports/align/e2e-vgg_small-stage4-twodet-f0-mtcnn-fold1.json reports/align/e2e-vgg_small-stage4-twodet-f0-blazeface-fold1.json \
      reports/refit/e2e-crossfit-refit-mtcnn-aligned.json reports/refit/e2e-crossfit-refit-blazeface-aligned.json \
      reports/rebuilt/e2e-crossfit-refit-rebuilt-mtcnn-aligned.json reports/rebuilt/e2e-crossfit-refit-rebuilt-mtcnn-aligned-zoom-tta.json \
      reports/refit/e2e-crossfit-stage4-mtcnn-aligned.json \
      reports/fer80/e2e-crossfit-fer80-refit-mtcnn-aligned.json \
      reports/e2e-crossfit-mtcnn-expw-sample.json reports/e2e-crossfit-blazeface-expw-sample.json \
      --prepare "python training/expw_crops.py --data ../shared/data/expw-sample --out ../expw-crops --folds 2 --crop-margin 0.1" \
      "python training/expw_crops.py --data ../shared/data/expw-sample --out ../expw-crops-m0 --folds 2 --crop-margin 0" \
      "python training/expw_crops.py --data ../shared/data/expw-sample --out ../expw-crops4 --folds 4 --crop-margin 0.1 --detections-cache expw-mtcnn.npz" \
      "python training/expw_crops.py --data ../shared/data/expw-sample --out ../expw-crops-m0-align --folds 2 --crop-margin 0 --align" \
      "python training/expw_crops.py --data ../shared/data/expw-sample --out ../expw-crops-blazeface --folds 2 --crop-margin 0.1 --detector blazeface" \
      "python training/expw_crops.py --data ../shared/data/expw-sample --out ../expw-crops-half --folds 2 --crop-margin 0.1 --detections-cache expw-mtcnn.npz --photo-fraction 0.5 --photo-seed 0" \
      "python training/fer_framing.py --data ../shared/data/fer2013/train --write-crops ../fer2013-reframed/train" \
      "python training/pseudo_label.py --data ../shared/data/expw-sample --model vgg_small-refit.keras --fold 1 --detections-cache expw-mtcnn.npz --crop-margin 0.1 --out ../pseudo-f1" \
      "python training/pseudo_label.py --data ../shared/data/expw-sample --model vgg_small-refit-f0.keras --fold 0 --detections-cache expw-mtcnn.npz --crop-margin 0.1 --out ../pseudo-f0" \
      --out reports/models.md
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fer_batch.labels import LABELS  # noqa: E402
from training.model_card import train_command, training_data  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", nargs="+", required=True, metavar="TRAINING_JSON:EVAL_JSON")
    p.add_argument("--calibrations", nargs="*", default=[], metavar="CALIBRATION_JSON:EVAL_JSON",
                   help="models made by baking a temperature into a trained one (training/calibration.py --model-out), "
                        "listed first; the run that wrote the same file is shown under the calibration's input name")
    p.add_argument("--task-vectors", nargs="*", default=[], metavar="TASK_VECTOR_JSON:EVAL_JSON",
                   help="models made by moving a trained one along its fine-tuning's change of weights "
                        "(training/task_vector.py), listed after the calibrations")
    p.add_argument("--averages", nargs="*", default=[], metavar="TRAINING_JSON:EVAL_JSON",
                   help="the weight-averaged networks of runs with train.py --average-from (their --average-out), "
                        "listed after the task vectors")
    p.add_argument("--e2e", nargs="*", default=[], help="eval_end_to_end.py JSON files for a second table")
    p.add_argument("--prepare", nargs="*", default=[], help="commands that make training data, listed before the runs")
    p.add_argument("--out", type=Path, default=Path("reports/models.md"))
    args = p.parse_args(argv)
    lines = ["# Models tried", "",
             "Validation = FER2013 PublicTest (`../shared/data/fer2013/val`, 3,589 faces), the split used for model "
             "selection; evaluated with `training/evaluate.py` through the run-time classifier (shared preprocess, test-time "
             "views as noted: flip = the mirror image, zoom = the centre 95% scaled back up).", "",
             "| model | arch | starts from | training data | epochs (best) | val accuracy | val macro-F1 | TTA | "
             + " | ".join(f"recall {label}" for label in LABELS) + " |",
             "|---|---|---|---|---|---|---|---|" + "---|" * len(LABELS)]
    commands = []
    renamed = {}
    for spec in args.calibrations:
        calibration_path, _, eval_path = spec.partition(":")
        cal, result = json.loads(Path(calibration_path).read_text()), json.loads(Path(eval_path).read_text())
        renamed[cal["model_out"]] = cal["model"]
        recalls = " | ".join(f"{result['per_class'][label]['recall']:.3f}" for label in LABELS)
        lines.append(f"| `{cal['model_out']}` | same | `{cal['model']}` | its output layer divided by a temperature "
                     f"T = {cal['temperature']:.2f}, fitted on {cal['faces']} faces of `{cal['faces_csv']}` | — | "
                     f"{result['accuracy']:.4f} | {result['macro_f1']:.4f} | {tta_views(result)} | {recalls} |")
        commands.append((cal["model_out"], cal["command"], result.get("command", "")))
    for spec in args.task_vectors:
        record_path, _, eval_path = spec.partition(":")
        record, result = json.loads(Path(record_path).read_text()), json.loads(Path(eval_path).read_text())
        out = record["out"]
        recalls = " | ".join(f"{result['per_class'][label]['recall']:.3f}" for label in LABELS)
        lines.append(f"| `{out}` | same | `{record['tuned']}` | none: every weight base + {record['alpha']:g} x (tuned - base), "
                     f"base `{record['base']}` | — | {result['accuracy']:.4f} | {result['macro_f1']:.4f} | "
                     f"{tta_views(result)} | {recalls} |")
        commands.append((out, record["command"], result.get("command", "")))
    for spec in args.averages:
        training_path, _, eval_path = spec.partition(":")
        state, result = json.loads(Path(training_path).read_text()), json.loads(Path(eval_path).read_text())
        targs = state["args"]
        recalls = " | ".join(f"{result['per_class'][label]['recall']:.3f}" for label in LABELS)
        start = f"`{targs['init_from']}`" if targs.get("init_from") else "scratch"
        lines.append(f"| `{targs['average_out']}` | `{targs['arch']}` | {start} | {training_data(targs)}; the mean of "
                     f"{state['average']['snapshots']} snapshots of the weights, every {targs['average_every']} steps "
                     f"from epoch {targs['average_from']} | {state['epoch']} (all from {targs['average_from']}) | "
                     f"{result['accuracy']:.4f} | {result['macro_f1']:.4f} | {tta_views(result)} | {recalls} |")
        commands.append((targs["average_out"], train_command(targs), result.get("command", "")))
    for spec in args.runs:
        training_path, _, eval_path = spec.partition(":")
        state = json.loads(Path(training_path).read_text())
        result = json.loads(Path(eval_path).read_text())
        targs = dict(state["args"])
        targs["out"] = renamed.get(targs["out"], targs["out"])
        recalls = " | ".join(f"{result['per_class'][label]['recall']:.3f}" for label in LABELS)
        start = f"`{targs['init_from']}`" if targs.get("init_from") else "scratch"
        lines.append(f"| `{targs['out']}` | `{targs['arch']}` | {start} | {training_data(targs)} | {state['epoch']} ({state.get('best_epoch')}) | "
                     f"{result['accuracy']:.4f} | {result['macro_f1']:.4f} | {tta_views(result)} | {recalls} |")
        commands.append((targs["out"], train_command(targs), result.get("command", "")))
    if args.e2e:
        lines += ["", "End to end on ExpW scene photos (`training/eval_end_to_end.py`: the detector finds the faces, the "
                  "model classifies them; recall at IoU >= 0.4; accuracy and macro-F1 over the faces found). A model "
                  "trained with ExpW crops of one fold is scored on the other fold only; \"cross-fitted\" scores every "
                  "photo with the model that did not train on it.", "",
                  "| model | photos | detector | aligned | recall | accuracy | macro-F1 | command |", "|---|---|---|---|---|---|---|---|"]
        for path in args.e2e:
            r = json.loads(Path(path).read_text())
            if r.get("fold"):
                photos = (f"folds {r['fold']}, cross-fitted" if r.get("cross_fitted") else f"fold {r['fold']}")
            else:
                photos = "all, cross-fitted" if r.get("cross_fitted") else "all"
            aligned = r.get("align", "--align" in r["command"].split())
            lines.append(f"| `{r['model']}` | {photos} ({r['labelled_faces']} faces) | `{r['detector']}` | "
                         f"{'yes' if aligned else 'no'}{', zoom TTA' if r.get('zoom_tta') else ''} | {r['recall']:.3f} | "
                         f"{r['accuracy']:.3f} | {r['macro_f1']:.3f} | `{r['command']}` |")
    lines += ["", "## Commands", ""]
    if args.prepare:
        lines += ["Training data made first:", "", "```", *args.prepare, "```", ""]
    for model, train, evaluate in commands:
        lines += [f"`{model}`:", "", "```", train, evaluate, "```", ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    return 0


def tta_views(result: dict) -> str:
    """The test-time views an evaluation averaged: "flip", "flip + zoom", "zoom" or "none"."""
    views = [name for name, on in (("flip", result.get("flip_tta", True)), ("zoom", result.get("zoom_tta", False))) if on]
    return " + ".join(views) or "none"


if __name__ == "__main__":
    raise SystemExit(main())
