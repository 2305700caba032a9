from pathlib import Path

import pandas as pd
import pytest

from fer_batch.export import (atomic_write_text, csv_text, neutralise_formula, output_path_inside,
                              per_frame_csv_path, safe_relative_path)


@pytest.mark.parametrize("cell", ["=1+1", "+cmd", "-2", "@SUM(A1)", "=HYPERLINK(\"x\")"])
def test_formula_cells_are_neutralised(cell):
    assert neutralise_formula(cell) == "'" + cell


def test_plain_cells_and_numbers_are_kept():
    assert neutralise_formula("videos/a.mp4") == "videos/a.mp4"
    assert neutralise_formula(-3) == -3


def test_csv_text_neutralises_names_but_not_numbers():
    df = pd.DataFrame({"source": ["=cmd|' /C calc'!A0.mp4"], "x": [-5]})
    text = csv_text(df)
    assert "'=cmd" in text
    assert ",-5" in text


@pytest.mark.parametrize("source", ["../../etc/passwd", "/abs/path/v.mp4", "a/../../b.mp4", "..\\..\\x.mp4", "\n.mp4", ".."])
def test_output_paths_never_leave_the_output_folder(tmp_path, source):
    out = tmp_path / "out"
    path = per_frame_csv_path(out, source, "video")
    assert out.resolve() in path.parents
    img = per_frame_csv_path(out, source, "image")
    assert out.resolve() in img.parents


def test_mirrored_path_keeps_the_tree():
    assert str(safe_relative_path("videos/day 1/clip.mp4", ".csv")) == "videos/day 1/clip.mp4.csv"


def test_output_path_inside_refuses_escape(tmp_path):
    from pathlib import PurePosixPath

    with pytest.raises(ValueError):
        output_path_inside(tmp_path, PurePosixPath("..") / "x")


def test_atomic_write_leaves_no_temp_files(tmp_path):
    target = tmp_path / "a" / "b.csv"
    atomic_write_text(target, "x\n")
    atomic_write_text(target, "y\n")
    assert target.read_text() == "y\n"
    assert [p.name for p in target.parent.iterdir()] == ["b.csv"]


def test_names_that_differ_only_in_replaced_characters_get_different_csvs(tmp_path):
    names = ["a:b.mp4", "a?b.mp4", "a_b.mp4", "a\nb.mp4", "x" * 130 + "1.mp4", "x" * 130 + "2.mp4"]
    paths = {per_frame_csv_path(tmp_path, f"clips/{name}", "video") for name in names}
    assert len(paths) == len(names)
    assert per_frame_csv_path(tmp_path, "clips/a_b.mp4", "video").name == "a_b.mp4.csv"   # clean names stay as they are
    assert all(p.parent == tmp_path / "clips" and p.name.endswith(".mp4.csv") for p in paths)


def test_a_folder_above_and_one_of_the_same_name_here_get_different_csvs(tmp_path):
    """`fer-batch analyze ../d d` from a subfolder: both d/v.mp4 had one CSV, the second overwriting the first."""
    from fer_batch.export import PARENT_FOLDER

    sources = ["../d/v.mp4", "d/v.mp4", "../../d/v.mp4", "sub/../d/v.mp4"]
    assert len({per_frame_csv_path(tmp_path, s, "video") for s in sources}) == len(sources)
    assert len({per_frame_csv_path(tmp_path, s.rsplit("/", 1)[0], "image") for s in sources}) == len(sources)
    assert per_frame_csv_path(tmp_path, "../d/v.mp4", "video") == tmp_path.resolve() / PARENT_FOLDER / "d" / "v.mp4.csv"


def test_an_absolute_path_and_the_same_path_relative_get_different_csvs(tmp_path):
    """`/data/x.mp4` and `data/x.mp4` (given from another folder) are two files: both CSVs wrote one path."""
    from fer_batch.export import ROOT_FOLDER

    sources = ["/data/x.mp4", "data/x.mp4", "\\\\server\\data\\x.mp4", "server/data/x.mp4"]
    assert len({per_frame_csv_path(tmp_path, s, "video") for s in sources}) == len(sources)
    assert per_frame_csv_path(tmp_path, "/data/x.mp4", "video") == tmp_path.resolve() / ROOT_FOLDER / "data" / "x.mp4.csv"
    assert per_frame_csv_path(tmp_path, "/", "image") == tmp_path.resolve() / ROOT_FOLDER / "images.csv"
    assert len({per_frame_csv_path(tmp_path, s, "image") for s in ("/data", "data", "/", ".")}) == 4


def test_a_failed_atomic_write_names_the_file_not_its_temporary(tmp_path):
    import resource
    import signal
    import subprocess
    import sys

    (tmp_path / "taken").mkdir()   # a folder where the file should go: the final rename fails
    with pytest.raises(OSError) as failed:
        atomic_write_text(tmp_path / "taken", "x")
    assert failed.value.filename == str(tmp_path / "taken")
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]   # no temporary left behind

    def small_files_only() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))

    code = ("import sys; from fer_batch.export import atomic_write_text\n"
            "try:\n    atomic_write_text(sys.argv[1], 'x' * 5000)\n"
            "except OSError as exc:\n    print(exc.filename, exc.strerror)")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "big.csv")], capture_output=True, text=True,
                          preexec_fn=small_files_only)
    assert done.stdout.strip() == f"{tmp_path / 'big.csv'} File too large"   # a full disk's error names no file



def test_a_relative_path_s_temporary_is_known_by_its_absolute_name(tmp_path, monkeypatch):
    """mkstemp names the temporary absolutely: a failure on it (a read-only folder) was reported under its name."""
    from fer_batch.export import _is_temporary_of

    monkeypatch.chdir(tmp_path)
    assert _is_temporary_of(Path("out/big.csv"), str(tmp_path / "out" / ".big.csv.k2x9.tmp"))
    assert not _is_temporary_of(Path("out/big.csv"), str(tmp_path / "other" / ".big.csv.k2x9.tmp"))
