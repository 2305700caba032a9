r"""Two tools on the same labelled faces: accuracy where both found the face, and where only one did.

    python training/compare_faces.py reports/e2e-shipped-blazeface-expw-sample-faces.csv \
        reports/peer-expw-sample-faces.csv --names ours peer [--fold 0 --folds 2] --out reports/compare.md

The inputs are the per-face CSVs of training/eval_end_to_end.py and training/eval_peer_expw.py. Accuracy on
"found" faces depends on which faces a detector finds (a detector that finds only easy frontal faces scores
higher on them); on the faces both found, the classifiers are compared on equal terms.
"""
from __future__ import annotations

import argparse
import math
import shlex
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training.expw_crops import photo_fold  # noqa: E402


def compare(a: pd.DataFrame, b: pd.DataFrame) -> dict[str, dict[str, float | int | None]]:
    """Counts and accuracies of A and B on the faces both found, only A found, only B found, and all."""
    both = a.merge(b, on=["photo", "face", "label"], suffixes=("_a", "_b"), validate="one_to_one")
    if len(both) != len(a) or len(both) != len(b):
        raise ValueError("the two files do not list the same labelled faces")
    right_a = both["found_a"].astype(bool) & (both["predicted_a"] == both["label"])
    right_b = both["found_b"].astype(bool) & (both["predicted_b"] == both["label"])
    groups = {
        "both found": both["found_a"].astype(bool) & both["found_b"].astype(bool),
        "only A found": both["found_a"].astype(bool) & ~both["found_b"].astype(bool),
        "only B found": ~both["found_a"].astype(bool) & both["found_b"].astype(bool),
        "all labelled faces": pd.Series(True, index=both.index),
    }
    out = {}
    for name, mask in groups.items():
        n = int(mask.sum())
        out[name] = {"faces": n, "right_a": int((right_a & mask).sum()), "right_b": int((right_b & mask).sum()),
                     "accuracy_a": None if n == 0 else float((right_a & mask).sum() / n),
                     "accuracy_b": None if n == 0 else float((right_b & mask).sum() / n)}
    on_both = groups["both found"]
    only_a, only_b = int((right_a & ~right_b & on_both).sum()), int((right_b & ~right_a & on_both).sum())
    out["both found, right by one only"] = {"a_only": only_a, "b_only": only_b, "mcnemar_p": mcnemar_exact_p(only_a, only_b)}
    return out


def mcnemar_exact_p(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar test: how likely a split of the discordant faces at least this uneven is when
    both classifiers are equally good (a binomial test at one half)."""
    n, k = only_a + only_b, min(only_a, only_b)
    if n == 0:
        return 1.0
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    p.add_argument("--names", nargs=2, default=("A", "B"))
    p.add_argument("--fold", type=int, default=None, help="only the photos of this fold (training/expw_crops.py)")
    p.add_argument("--folds", type=int, default=2)
    p.add_argument("--out", type=Path, default=None, help="Markdown report [default: print only]")
    args = p.parse_args(argv)

    a, b = (pd.read_csv(path, keep_default_na=False) for path in (args.a, args.b))
    if args.fold is not None:
        a, b = (df[[photo_fold(n, args.folds) == args.fold for n in df["photo"]]] for df in (a, b))
    result = compare(a, b)
    name_a, name_b = args.names
    fmt = lambda v: "—" if v is None else f"{v:.3f}"  # noqa: E731
    command = "python training/compare_faces.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    lines = [f"# {name_a} and {name_b} on the same labelled faces", "", "```", command, "```", "",
             f"`{args.a}` ({name_a}) and `{args.b}` ({name_b})"
             + (f", photos of fold {args.fold} of {args.folds} only" if args.fold is not None else "") + ".", "",
             "A face counts as right when the tool found it (IoU >= 0.4) and its top expression is the label.", "",
             f"| faces | count | {name_a} right | {name_a} accuracy | {name_b} right | {name_b} accuracy |",
             "|---|---|---|---|---|---|"]
    discordant = result.pop("both found, right by one only")
    for group, r in result.items():
        group = group.replace("only A", f"only {name_a}").replace("only B", f"only {name_b}")
        lines.append(f"| {group} | {r['faces']} | {r['right_a']} | {fmt(r['accuracy_a'])} | {r['right_b']} | "
                     f"{fmt(r['accuracy_b'])} |")
    lines += ["", f"On the faces both found, {name_a} alone is right on {discordant['a_only']} and {name_b} alone on "
              f"{discordant['b_only']}: exact McNemar p = {discordant['mcnemar_p']:.3g}."]
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
