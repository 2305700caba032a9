"""Checks the training scripts make before any work, so that a wrong path or option costs one sentence, not a
traceback after minutes of loading or training."""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

FORMAT_READS = ("folders: a folder of class folders; fer2013-csv: a CSV file; "
                "expw: a folder with label.lst and image/")


def data_problem(option: str, path: str | Path, fmt: str) -> str | None:
    """Why `path` cannot be what `--format fmt` reads (as given to `option`), or None."""
    path = Path(path)
    if not path.exists():
        return f"{option} {path}: no such file or folder"
    if fmt == "folders" and not path.is_dir() or fmt == "fer2013-csv" and not path.is_file():
        return f"{option} {path} is not what --format {fmt} reads ({FORMAT_READS})"
    if fmt == "expw" and not path.is_file() and not (path / "label.lst").is_file():
        return f"{option} {path}: no label.lst there (an ExpW root holds label.lst and image/)"
    return None


def expw_root_problem(option: str, path: str | Path) -> str | None:
    """Why `path` is not an ExpW root (label.lst and image/), or None."""
    path = Path(path)
    if not path.exists():
        return f"{option} {path}: no such folder"
    if not (path / "label.lst").is_file():
        return f"{option} {path}: no label.lst there (an ExpW root holds label.lst and image/)"
    return None


def folder_problem(option: str, folder: str | Path, given: str | Path | None = None) -> str | None:
    """Why `folder` cannot be made or written to, or None (it need not exist yet); `given` is what the option
    named, when `folder` is where it goes (a file's folder)."""
    folder = Path(folder)
    given = folder if given is None else given
    if folder.exists() and not folder.is_dir():
        return f"{option} {given} cannot be made: {folder} is a file, not a folder"
    ancestor = folder
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{option} {given} cannot be made: {ancestor} is a file, not a folder"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"{option} {given} cannot be written: {ancestor} is not writable"
    return None


def crops_out_problem(option: str, folder: str | Path) -> str | None:
    """Why crops cannot be written to `folder`, or None: it must be new or empty, since crops of an earlier run
    (other folds, margins or photos) would be mixed in with the new ones, unseen, and trained on."""
    folder = Path(folder)
    if folder.is_dir() and any(folder.iterdir()):
        return f"{option} {folder} is not empty: give a new folder (or remove the earlier crops)"
    return folder_problem(option, folder)


def unused_option_problem(option: str, given: bool, reads: str, formats: Iterable[str]) -> str | None:
    """Why `option`, which only data of format `reads` use, would be ignored (given, with none of `formats` being
    `reads`), or None."""
    if given and reads not in set(formats):
        return f"{option} applies to --format {reads} data only, and no data here are {reads}, so it would be ignored"
    return None


def model_out_problem(option: str, path: str | Path) -> str | None:
    """Why a model cannot be written to `path`, or None: it must be a .keras file name (Keras writes that format
    whatever the name, and `fer-batch --model` reads a file by its suffix) in a folder that can be written."""
    path = Path(path)
    if path.is_dir():
        return f"{option} {path} is a folder: give a file name ending in .keras"
    if path.suffix.lower() != ".keras":
        return (f"{option} {path}: give a file name ending in .keras (a model is written in Keras's .keras format, "
                "and fer-batch and evaluate.py read a file by its suffix)")
    return folder_problem(option, path.parent, path)


def load_problem(option: str, path: str | Path, exc: BaseException) -> str:
    """One sentence for a data set that failed to load: a bad line, a missing column, an unreadable file."""
    if isinstance(exc, KeyError):
        message = f"no {exc.args[0]!r} column"
    elif isinstance(exc, OSError) and exc.strerror:
        message = f"{exc.strerror}" + (f": {exc.filename}" if exc.filename and str(exc.filename) != str(path) else "")
    else:
        message = str(exc)
    return f"{option}: {message}" if str(path) in message else f"{option} {path}: {message}"


def load_keras_model(option: str, path: str | Path):
    """The Keras model in `path` (safe mode); a ValueError with one sentence when it is not one."""
    from fer_batch.classify import ModelLoadError, _load_keras_model

    try:
        return _load_keras_model(Path(path))
    except ModelLoadError as exc:
        raise ValueError(f"{option}: {exc}") from None
