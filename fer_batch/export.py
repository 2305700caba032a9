"""Writing outputs: atomic files, formula-safe CSV cells, output paths that stay inside the output folder."""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path, PurePosixPath

import pandas as pd

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
TEXT_COLUMNS_FROM_NAMES = ("source", "input", "path", "reason")
_UNSAFE = re.compile(r"[^\w.\- ]+")  # keeps letters of any script, so names in other alphabets do not collide


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename it over `path`: readers never see a partial file."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:40]}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes files private; outputs get the usual permissions
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno is not None and (exc.filename is None or _is_temporary_of(
                path, exc.filename)):
            # a full disk names no file, a failed temporary names a hidden one: name the file being written
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise


def _is_temporary_of(path: Path, name: object) -> bool:
    candidate = Path(os.fsdecode(name)) if isinstance(name, (str, bytes, os.PathLike)) else None
    # mkstemp names the temporary by an absolute path, whatever `path` is
    return (candidate is not None and os.path.abspath(candidate.parent) == os.path.abspath(path.parent)
            and candidate.name.startswith(f".{path.name[:40]}.") and candidate.name.endswith(".tmp"))


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once at import: os.umask can only be read by setting it


SURROGATE = re.compile("[\ud800-\udfff]")


def printable(text: str) -> str:
    """`text` with each byte of a file name that is not UTF-8 (kept by os.fsdecode as a surrogate escape) written
    as `\\xNN`, so that it can be stored as UTF-8: `caf\\xe9.jpg` for the Latin-1 name `café.jpg`."""
    def escaped(match: re.Match) -> str:
        code = ord(match.group())
        return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"

    return SURROGATE.sub(escaped, text)


def utf8(text: str) -> bytes:
    """`text` as UTF-8, a file name's bytes that are not UTF-8 written as `printable` writes them."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return printable(text).encode("utf-8")


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, utf8(text))


def neutralise_formula(value: object) -> object:
    """Prefix a text cell that a spreadsheet would run as a formula with a single quote."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def csv_text(df: pd.DataFrame) -> str:
    safe = df.copy()
    for col in TEXT_COLUMNS_FROM_NAMES:
        if col in safe.columns:
            safe[col] = safe[col].map(neutralise_formula)
    return safe.to_csv(index=False, lineterminator="\n")


def write_csv(path: str | os.PathLike, df: pd.DataFrame) -> None:
    atomic_write_text(path, csv_text(df))


def safe_component(name: str) -> str:
    """A file-name component with only portable characters, never empty, '.' or '..'. A name that had to be
    changed (or shortened) carries a short hash of the original, so two names never map to one file."""
    cleaned = _UNSAFE.sub("_", name).strip(" ").lstrip(".") or "_"
    if cleaned == name and len(name) <= 120:
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    stem, ext = os.path.splitext(cleaned)
    if len(ext) > 16 or not stem:
        stem, ext = cleaned, ""
    return f"{stem[:100]}~{digest}{ext}"


# '..' in an input path; carries a hash like every renamed component, so no real folder name maps to it
PARENT_FOLDER = "parent~" + hashlib.sha256(b"..").hexdigest()[:8]
# the root of an absolute input path, so that `/data/x.mp4` and a relative `data/x.mp4` stay two files
ROOT_FOLDER = "root~" + hashlib.sha256(b"/").hexdigest()[:8]


def safe_relative_path(source: str, suffix: str) -> PurePosixPath:
    """Mirror an input path as a relative output path: portable names, '..' renamed like any unsafe name (so
    `../d/v.mp4` and `d/v.mp4` stay two files), and an absolute path's root made a folder of its own (so
    `/d/v.mp4` and `d/v.mp4` stay two files too)."""
    parts = [p for p in re.split(r"[\\/]+", source) if p not in ("", ".")]
    parts = [ROOT_FOLDER] * (source[:1] in ("/", "\\")) + [PARENT_FOLDER if p == ".." else safe_component(p)
                                                             for p in parts] or ["_"]
    parts[-1] = parts[-1] + suffix
    return PurePosixPath(*parts)


def output_path_inside(root: str | os.PathLike, relative: PurePosixPath) -> Path:
    root = Path(root).resolve()
    target = (root / relative).resolve()
    if root != target and root not in target.parents:
        raise ValueError(f"output path {relative} would leave the output folder {root}")
    return target


def per_frame_csv_path(csv_dir: str | os.PathLike, group: str, kind: str) -> Path:
    """Per-frame CSV for a video (`<video path>.csv`) or a folder of images (`<folder>/images.csv`)."""
    if kind == "video":
        relative = safe_relative_path(group, ".csv")
    else:
        relative = safe_relative_path(group, "") / "images.csv" if group not in ("", ".") else PurePosixPath("images.csv")
    return output_path_inside(csv_dir, relative)
