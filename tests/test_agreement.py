"""Several models' mistakes on the same labelled faces (training/agreement.py)."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from fer_batch.labels import LABELS
from test_expw_folds import expw_scenes  # noqa: F401  (fixture)

LABELS_OF_FACES = ["happy", "sad", "angry", "neutral", "fear", "surprise"]


def _faces(predicted: list[str], found: list[int] | None = None) -> pd.DataFrame:
    n = len(LABELS_OF_FACES)
    return pd.DataFrame({"photo": [f"p{i // 2}.jpg" for i in range(n)], "face": [i % 2 for i in range(n)],
                         "label": LABELS_OF_FACES, "found": found or [1] * n, "predicted": predicted})


def test_agreement_counts_shared_mistakes_votes_and_the_best_per_face():
    from training.agreement import agreement, joined_predictions, majority_vote

    a = _faces(["happy", "neutral", "angry", "sad", "fear", "angry"])
    b = _faces(["happy", "neutral", "disgust", "neutral", "sad", "happy"])
    c = _faces(["happy", "neutral", "angry", "fear", "surprise", "neutral"], found=[1, 1, 1, 1, 1, 0])
    joined = joined_predictions([a, b, c], ["a", "b", "c"])
    assert len(joined) == 5                               # the sixth face only two models found
    result = agreement(joined, ["a", "b", "c"])
    assert result["accuracy"] == pytest.approx({"a": 3 / 5, "b": 2 / 5, "c": 2 / 5})
    assert result["all_agree"] == pytest.approx(2 / 5)     # faces 0 (all right) and 1 (all say neutral, label sad)
    assert result["accuracy_when_all_agree"] == pytest.approx(1 / 2)
    assert result["all_agree_wrong"] == 1 and result["all_agree_wrong_by_label"]["sad"]["neutral"] == 1
    assert sum(sum(row.values()) for row in result["all_agree_wrong_by_label"].values()) == 1
    assert result["right_by_at_least_one"] == pytest.approx(4 / 5)   # face 1 nobody gets
    assert result["right_by_all"] == pytest.approx(1 / 5)
    # votes: happy, neutral, angry (2 of 3), sad/neutral/fear tie -> a's sad, fear/sad/surprise tie -> a's fear
    assert majority_vote(joined[["a", "b", "c"]]).tolist() == ["happy", "neutral", "angry", "sad", "fear"]
    assert result["majority_vote_accuracy"] == pytest.approx(3 / 5)
    assert result["accuracy_when_they_differ"]["a"] == pytest.approx(2 / 3)


def test_agreement_refuses_tables_of_different_faces():
    from training.agreement import joined_predictions

    a = _faces(["happy"] * 6)
    b = _faces(["happy"] * 6)
    b.loc[0, "photo"] = "other.jpg"
    with pytest.raises(ValueError, match="same labelled faces"):
        joined_predictions([a, b], ["a", "b"])
    with pytest.raises(ValueError, match="distinct name"):
        joined_predictions([a, a], ["a", "a"])


def test_agreement_main_writes_its_report_and_figures(tmp_path, capsys):
    from training.agreement import main

    paths = []
    for name, predicted in (("a", ["happy", "neutral", "angry", "sad", "fear", "angry"]),
                            ("b", ["happy", "neutral", "disgust", "neutral", "sad", "happy"])):
        paths.append(tmp_path / f"{name}.csv")
        _faces(predicted).to_csv(paths[-1], index=False)
    out = tmp_path / "reports" / "agree.md"
    assert main([str(p) for p in paths] + ["--names", "first", "second", "--out", str(out)]) == 0
    text = out.read_text()
    assert "python training/agreement.py" in text and "| first | 0.500 |" in text and "| majority vote | 0.500 |" in text
    figures = json.loads(out.with_suffix(".json").read_text())
    assert figures["faces"] == 6 and figures["all_agree_wrong"] == 1 and figures["names"] == ["first", "second"]
    with pytest.raises(SystemExit):
        main([str(paths[0]), "--out", str(tmp_path / "never.md")])
    assert not (tmp_path / "never.md").exists()


def test_contact_sheet_shows_the_faces_all_models_call_the_same_wrong_way(expw_scenes, tmp_path):  # noqa: F811
    import cv2

    from test_expw_folds import NAMES
    from training.agreement import main

    rows = [line.split() for line in (expw_scenes / "label.lst").read_text().splitlines()]
    truth = pd.DataFrame({"photo": [r[0] for r in rows], "face": 0, "found": 1,
                          "label": [LABELS[int(r[7])] for r in rows]})
    wrong = ["neutral" if label != "neutral" else "happy" for label in truth["label"]]
    paths = []
    for name, calls in (("a", wrong), ("b", wrong[:4] + list(truth["label"][4:]))):
        paths.append(tmp_path / f"{name}.csv")
        truth.assign(predicted=calls).to_csv(paths[-1], index=False)
    sheet = tmp_path / "sheet.png"
    args = [str(p) for p in paths] + ["--out", str(tmp_path / "r.md"), "--sheet", str(sheet)]
    with pytest.raises(SystemExit):
        main(args)                                          # the faces' photos are needed
    assert main(args + ["--expw", str(expw_scenes), "--sheet-faces", "10"]) == 0
    image = cv2.imread(str(sheet))
    assert image.shape == (188, 6 * 160, 3)                 # one row: 4 faces both call the same wrong way, 2 blanks
    tiles = [image[:160, 160 * i:160 * (i + 1)] for i in range(6)]
    assert all(t.std() > 10 for t in tiles[:4]) and all((t == 255).all() for t in tiles[4:])
    assert json.loads((tmp_path / "r.json").read_text())["all_agree_wrong"] == 4 and len(NAMES) == len(rows)
