r"""Move a fine-tuned model further along (or back along) the change its fine-tuning made to its weights.

    python training/task_vector.py --base vgg_small-stage3.keras --tuned vgg_small-refit.keras --alpha 1.25 \
        --out vgg_small-refit-x1.25.keras

Every weight (kernels, biases and the batch-norm statistics) becomes base + alpha * (tuned - base): alpha 1 is the
tuned model, 0 the base, between them an interpolation (as in WiSE-FT), above 1 an extrapolation of the
fine-tuning's direction (as in task arithmetic). The two models must share an architecture; the output has it too,
so it is as small and as fast. Writes the model and OUT.json with the inputs and alpha.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training.cli_checks import load_keras_model, model_out_problem  # noqa: E402

if TYPE_CHECKING:
    import keras

MAX_ABS_ALPHA = 4.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", required=True, help="the model the fine-tuning started from")
    p.add_argument("--tuned", required=True, help="the fine-tuned model (same architecture)")
    p.add_argument("--alpha", type=float, required=True,
                   help=f"how far along base -> tuned: 0 base, 1 tuned, above 1 beyond it (|alpha| <= {MAX_ABS_ALPHA:g})")
    p.add_argument("--out", type=Path, required=True, help="the .keras model to write")
    return p.parse_args(argv)


def weight_problem(base: keras.Model, tuned: keras.Model) -> str | None:
    """Why the two models' weights cannot be combined one by one, or None."""
    base_shapes = [tuple(w.shape) for w in base.weights]
    tuned_shapes = [tuple(w.shape) for w in tuned.weights]
    if base_shapes != tuned_shapes:
        return (f"--base ({base.name}, {len(base_shapes)} weights) and --tuned ({tuned.name}, {len(tuned_shapes)} "
                "weights) do not share an architecture")
    return None


def along_task_vector(base: keras.Model, tuned: keras.Model, alpha: float) -> keras.Model:
    """`base` with every weight set to base + alpha * (tuned - base); batch-norm variances are kept positive
    (an extrapolation past a variance's own scale would otherwise divide by a negative number)."""
    combined = []
    for variable, b, t in zip(base.weights, base.get_weights(), tuned.get_weights()):
        w = b + alpha * (t - b)
        if variable.path.endswith("moving_variance"):
            w = w.clip(min=1e-3 * b.min(initial=1.0))
        combined.append(w.astype(b.dtype))
    base.set_weights(combined)
    return base


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not abs(args.alpha) <= MAX_ABS_ALPHA:
        raise SystemExit(f"--alpha must be between -{MAX_ABS_ALPHA:g} and {MAX_ABS_ALPHA:g}; {args.alpha:g} was given")
    problem = model_out_problem("--out", args.out)
    if problem:
        raise SystemExit(problem)
    try:
        base = load_keras_model("--base", args.base)
        tuned = load_keras_model("--tuned", args.tuned)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    problem = weight_problem(base, tuned)
    if problem:
        raise SystemExit(problem)
    model = along_task_vector(base, tuned, args.alpha)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.save(args.out)
    record = {"base": str(args.base), "tuned": str(args.tuned), "alpha": args.alpha, "out": str(args.out),
              "command": shlex.join(["python", "training/task_vector.py", *(argv if argv is not None else sys.argv[1:])])}
    args.out.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out} (alpha {args.alpha:g} along {args.base} -> {args.tuned})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
