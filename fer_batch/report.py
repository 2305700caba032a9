"""The interactive HTML report: one self-contained, offline page with plotly.js embedded once.

Per-input charts are stored as JSON and drawn only when their section is opened; the files table's rows and
the per-input sections arrive in <template> elements that the page's script inserts once (each section's
body, with its thumbnails, only when it is first opened), and the per-input share chart draws one page of
inputs at a time, so a report over thousands of inputs opens in seconds (scripts/report_load.py measures it).
Every text that comes from the file system is HTML-escaped, and JSON placed in <script> blocks has `<`, `>`
and `&` escaped, so no file name can inject markup. As a second wall, a Content-Security-Policy lets only the
page's own two scripts run (by hash) and forbids every network load.
"""
from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from fer_batch.aggregate import smooth_probabilities
from fer_batch.export import SURROGATE, atomic_write_bytes, printable, utf8
from fer_batch.labels import LABELS

EXPRESSION_COLORS: dict[str, str] = {
    "angry": "#d62728", "disgust": "#7f9a1f", "fear": "#9467bd", "happy": "#f0b400",
    "sad": "#1f77b4", "surprise": "#e377c2", "neutral": "#8c8c8c",
}
NO_FACE_COLOR = "#d9d9d9"
THUMBNAIL_MAX_PX = 112
GROUPED_BAR_MAX_FACES = 8       # more faces in one photo are shown as a heatmap
SHARE_PAGE_SIZE = 50            # the per-input share chart draws this many inputs at a time; a picker pages
SHARE_ROW_PX, SHARE_BASE_PX, SHARE_MIN_PX = 20, 100, 220
CHART_LABEL_MAX_CHARS = 42
NO_SCRIPT = ("<noscript><p class=\"headline\">This report draws its charts and lists its inputs with JavaScript, "
             "which is off here; the same figures are in the CSV folder written beside it.</p></noscript>")
PLOT_CONFIG = {"responsive": True, "displaylogo": False, "showSendToCloud": False, "showLink": False,
               "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d", "toggleSpikelines"]}
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif"


# -- escaping -----------------------------------------------------------------------------------
def escape(value: object) -> str:
    """HTML-escape any value for text or a quoted attribute."""
    return html.escape(str(value), quote=True)


def script_json(value: Any) -> str:
    """JSON that is safe inside a <script> element: no `<`, `>`, `&`, line separators or surrogates appear raw."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for raw, escaped in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(raw, escaped)
    # a file name's bytes that are not UTF-8: the JSON string holds `printable`'s text (a backslash escaped)
    return SURROGATE.sub(lambda match: printable(match.group()).replace("\\", "\\\\"), text)


def chart_text(value: object, max_chars: int | None = None) -> str:
    """Text for plotly.js, which reads a few HTML tags in labels: shortened, then `&<>` escaped.

    plotly.js decodes &amp; &lt; &gt; but shows &quot; literally, so quotes stay as they are.
    """
    text = str(value)
    if max_chars is not None and len(text) > max_chars:
        keep = max_chars - 1
        text = text[: keep - keep // 3] + "…" + text[len(text) - keep // 3:]
    return html.escape(text, quote=False)


# -- small value helpers ------------------------------------------------------------------------
def _is_missing(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _number(value: object) -> float | None:
    if _is_missing(value):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _floats(values: Iterable[object], digits: int = 3) -> list[float | None]:
    return [None if (n := _number(v)) is None else round(n, digits) for v in values]


def _count(value: object) -> str:
    number = _number(value)
    return "—" if number is None else f"{int(number):,}"


def _seconds(value: object) -> str:
    number = _number(value)
    return "—" if number is None else f"{number:,.1f} s"


def _text(value: object, missing: str = "—") -> str:
    return missing if _is_missing(value) or str(value) == "" else str(value)


def thumbnail_data_uri(image: np.ndarray | None) -> str | None:
    """A small JPEG data URI for a BGR (or grey) uint8 face image; None when there is nothing to show."""
    if image is None or not isinstance(image, np.ndarray) or image.ndim not in (2, 3) or image.size == 0:
        return None
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    elif image.ndim == 3 and image.shape[2] != 3:
        return None
    height, width = image.shape[:2]
    scale = THUMBNAIL_MAX_PX / max(height, width)
    if scale < 1:
        image = cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))),
                           interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", np.ascontiguousarray(image.astype(np.uint8)),
                               [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


# -- figures (plain plotly.js figure dicts; tests validate them with plotly.graph_objects) --------
def _layout(height: int, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "height": height, "margin": {"l": 56, "r": 16, "t": 36, "b": 44},
        "font": {"family": FONT, "size": 12}, "paper_bgcolor": "#ffffff", "plot_bgcolor": "#ffffff",
        "legend": _legend(),
    }
    layout.update(extra)
    return layout


def _legend(**extra: Any) -> dict[str, Any]:
    return {"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 0, "xanchor": "left", **extra}


def _axis(title: str = "", **extra: Any) -> dict[str, Any]:
    axis: dict[str, Any] = {"gridcolor": "#ececec", "zerolinecolor": "#cfcfcf", "automargin": True}
    if title:
        axis["title"] = {"text": title}
    axis.update(extra)
    return axis


def share_chart_height(rows: int) -> int:
    """Pixels for a share chart of `rows` bars (the page's script sizes each page of the chart alike)."""
    return max(SHARE_MIN_PX, SHARE_BASE_PX + SHARE_ROW_PX * rows)


def share_pages(count: int) -> list[tuple[int, int]]:
    """(first, last) input numbers, from 1, of each page of the per-input share chart."""
    return [(start + 1, min(start + SHARE_PAGE_SIZE, count)) for start in range(0, count, SHARE_PAGE_SIZE)]


def overview_share_figure(summary: pd.DataFrame) -> dict[str, Any]:
    """Stacked horizontal bars: each input's share of faces per expression, first input on top.

    The figure holds every input; the page draws one page of SHARE_PAGE_SIZE of them at a time, because
    plotly.js lays out and measures every bar and label it is given (a bar per input made 4,500 inputs
    take seconds to draw)."""
    labels = [f"{i + 1}. {chart_text(source, CHART_LABEL_MAX_CHARS)}" for i, source in enumerate(summary["source"])]
    names = [chart_text(source) for source in summary["source"]]
    customdata = [[i, name] for i, name in enumerate(names)]
    traces = []
    for label in LABELS:
        column = f"share_{label}"
        shares = _floats(summary[column] if column in summary else [None] * len(summary))
        traces.append({
            "type": "bar", "orientation": "h", "name": label, "y": labels, "x": shares,
            "marker": {"color": EXPRESSION_COLORS[label]}, "customdata": customdata,
            "hovertemplate": "%{customdata[1]}<br>" + label + ": %{x:.0%}<extra></extra>",
        })
    return {"data": traces, "layout": _layout(
        share_chart_height(min(len(labels), SHARE_PAGE_SIZE)), barmode="stack",
        margin={"l": 8, "r": 16, "t": 64, "b": 36}, legend=_legend(traceorder="normal"),
        xaxis=_axis("share of faces", range=[0, 1], tickformat=".0%", fixedrange=True),
        yaxis=_axis(autorange="reversed", type="category", fixedrange=True),
    )}


def overview_dominant_figure(summary: pd.DataFrame) -> dict[str, Any]:
    """How many inputs have each dominant expression (and how many have no face at all)."""
    dominant = summary["dominant_expression"] if "dominant_expression" in summary else pd.Series(dtype=object)
    counts = [int((dominant == label).sum()) for label in LABELS]
    no_face = int(sum(_is_missing(v) or v == "" for v in dominant))
    x = [*LABELS, "no face"]
    return {"data": [{
        "type": "bar", "x": x, "y": [*counts, no_face], "text": [*counts, no_face], "textposition": "auto",
        "marker": {"color": [*(EXPRESSION_COLORS[label] for label in LABELS), NO_FACE_COLOR]},
        "hovertemplate": "%{x}: %{y} inputs<extra></extra>",
    }], "layout": _layout(260, showlegend=False, xaxis=_axis(fixedrange=True),
                          yaxis=_axis("inputs", fixedrange=True, rangemode="tozero"))}


def overview_by_second_figure(by_second: pd.DataFrame) -> dict[str, Any]:
    """All videos second by second: each expression's mean probability (each video counted once) over video time."""
    seconds = _floats(by_second["second"])
    videos = [int(v) for v in by_second["videos_with_face"]]
    traces = [{
        "type": "scatter", "mode": "lines+markers", "name": label, "x": seconds, "y": _floats(by_second[f"mean_{label}"]),
        "customdata": videos, "line": {"color": EXPRESSION_COLORS[label], "width": 2}, "marker": {"size": 4},
        "connectgaps": False, "hovertemplate": label + ": %{y:.2f} (%{customdata} videos with a face)<extra></extra>",
    } for label in LABELS]
    return {"data": traces, "layout": _layout(
        320, hovermode="x unified", xaxis=_axis("second of video time"),
        yaxis=_axis("mean probability", range=[0, 1.02], fixedrange=True),
    )}


def share_figure(row: Mapping[str, Any]) -> dict[str, Any] | None:
    """One input's share of faces per expression beside its mean probability per expression."""
    shares = _floats(row.get(f"share_{label}") for label in LABELS)
    if all(v is None for v in shares):
        return None
    means = _floats(row.get(f"mean_{label}") for label in LABELS)
    colors = [EXPRESSION_COLORS[label] for label in LABELS]
    return {"data": [
        {"type": "bar", "name": "share of faces", "x": list(LABELS), "y": shares, "marker": {"color": colors},
         "hovertemplate": "%{x}: %{y:.1%} of faces<extra></extra>"},
        {"type": "bar", "name": "mean probability", "x": list(LABELS), "y": means,
         "marker": {"color": colors, "opacity": 0.45, "pattern": {"shape": "/"}},
         "hovertemplate": "%{x}: mean probability %{y:.2f}<extra></extra>"},
    ], "layout": _layout(280, barmode="group", xaxis=_axis(fixedrange=True),
                         yaxis=_axis(range=[0, 1], tickformat=".0%", fixedrange=True))}


def _sampling_step(times: pd.Series) -> float | None:
    unique = np.unique(times.dropna().to_numpy(dtype=float))
    if unique.size < 2:
        return None
    return float(np.median(np.diff(unique)))


def _with_gaps(times: np.ndarray, probs: np.ndarray, step: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Insert an empty point wherever the track was not seen for more than 1.5 sampling steps."""
    if step is None or times.size < 2:
        return times, probs
    breaks = np.flatnonzero(np.diff(times) > 1.5 * step) + 1
    if breaks.size == 0:
        return times, probs
    middles = (times[breaks - 1] + times[breaks]) / 2
    gap_rows = np.full((breaks.size, probs.shape[1]), np.nan)
    return np.insert(times, breaks, middles), np.insert(probs, breaks, gap_rows, axis=0)


def _points_without_line(probs: np.ndarray) -> np.ndarray:
    """Which rows of a gapped timeline no line would show: seen rows with a gap (or the end) on both sides, and
    every row of a track seen fewer than 3 times."""
    seen = ~np.isnan(probs[:, 0])
    if seen.sum() < 3:
        return seen
    before = np.concatenate([[False], seen[:-1]])
    after = np.concatenate([seen[1:], [False]])
    return seen & ~before & ~after


def timeline_figure(times: np.ndarray, probs: np.ndarray, step: float | None) -> dict[str, Any]:
    """One track's probabilities (n, 7) over sorted video times (n,), one line per expression,
    broken where the track was lost for more than 1.5 sampling steps."""
    times, probs = _with_gaps(times, probs, step)
    x = _floats(times)
    lone = _points_without_line(probs)
    # markers only where a point stands alone: a marker per point of a long track would slow drawing and grow the page
    points = {"mode": "lines+markers", "marker": {"size": [6 if shown else 0 for shown in lone]}} if lone.any() \
        else {"mode": "lines"}
    traces = [{
        "type": "scatter", "name": label, "x": x, "y": _floats(probs[:, i]), **points,
        "line": {"color": EXPRESSION_COLORS[label], "width": 2},
        "connectgaps": False, "hovertemplate": label + ": %{y:.2f}<extra></extra>",
    } for i, label in enumerate(LABELS)]
    return {"data": traces, "layout": _layout(
        320, hovermode="x unified", xaxis=_axis("time (s)"),
        yaxis=_axis("probability", range=[0, 1.02], fixedrange=True),
    )}


def faces_figure(face_rows: pd.DataFrame) -> dict[str, Any]:
    """A photo's probabilities per face: grouped bars, or a heatmap when there are many faces."""
    ordered = face_rows.sort_values("face")
    names = [f"face {int(face)}" for face in ordered["face"]]
    probs = ordered[list(LABELS)].to_numpy(dtype=float)
    if len(names) <= GROUPED_BAR_MAX_FACES:
        traces = [{
            "type": "bar", "name": name, "x": list(LABELS), "y": _floats(probs[i]),
            "hovertemplate": name + " · %{x}: %{y:.2f}<extra></extra>",
        } for i, name in enumerate(names)]
        return {"data": traces, "layout": _layout(
            280, barmode="group", showlegend=len(names) > 1, xaxis=_axis(fixedrange=True),
            yaxis=_axis("probability", range=[0, 1], fixedrange=True))}
    return {"data": [{
        "type": "heatmap", "x": list(LABELS), "y": names, "z": [_floats(p) for p in probs],
        "zmin": 0, "zmax": 1, "colorscale": "Blues", "reversescale": True,   # plotly.js's Blues runs dark to light
        "hovertemplate": "%{y} · %{x}: %{z:.2f}<extra></extra>",
    }], "layout": _layout(max(240, 60 + 22 * len(names)), xaxis=_axis(fixedrange=True, side="top"),
                          yaxis=_axis(autorange="reversed", fixedrange=True))}


# -- per-input sections -------------------------------------------------------------------------
@dataclass
class FaceCard:
    """One track (video) or face (photo): its thumbnail and a few words about it."""

    figure_key: str | None
    title: str
    detail: str
    expression: str | None
    thumbnail: str | None


def _mode_expression(expressions: np.ndarray) -> tuple[str | None, float]:
    """The most frequent expression (first in LABELS order on a tie) and its share."""
    counts = [int(np.count_nonzero(expressions == label)) for label in LABELS]
    best = int(np.argmax(counts))
    total = sum(counts)
    return (LABELS[best], counts[best] / total) if total else (None, 0.0)


def _chip(expression: str | None, missing: str = "no face") -> str:
    """A coloured label for an expression; a grey one when there is none."""
    if expression in EXPRESSION_COLORS:
        return f'<span class="chip" style="background:{EXPRESSION_COLORS[expression]}">{escape(expression)}</span>'
    return f'<span class="chip none">{escape(expression or missing)}</span>'


def _card_html(card: FaceCard) -> str:
    image = (f'<img src="{card.thumbnail}" alt="">' if card.thumbnail
             else '<span class="no-thumb">no image</span>')
    tag, attrs = ("button", f' type="button" data-show="{card.figure_key}"') if card.figure_key else ("div", "")
    return (f'<{tag} class="card"{attrs}>{image}<span class="card-text"><b>{escape(card.title)}</b>'
            f'{_chip(card.expression, "—")}'
            f'<small>{escape(card.detail)}</small></span></{tag}>')


def _video_parts(source: str, rows: pd.DataFrame, display: pd.DataFrame,
                 thumbnails: Mapping[tuple[str, int], np.ndarray]) -> tuple[list[FaceCard], dict[str, Any]]:
    step = _sampling_step(rows["time_s"])
    tracked = display[display["track_id"].notna()]
    track_ids = tracked["track_id"].to_numpy(dtype=np.int64)
    times = tracked["time_s"].to_numpy(dtype=float)
    probs = tracked[list(LABELS)].to_numpy(dtype=float)
    expressions = tracked["expression"].to_numpy(dtype=object)
    order = np.lexsort((times, track_ids))
    ids, starts, lengths = np.unique(track_ids[order], return_index=True, return_counts=True)
    cards, figures = [], {}
    for i in sorted(range(len(ids)), key=lambda i: (-lengths[i], ids[i])):  # longest track first
        track_id, rows_of_track = int(ids[i]), order[starts[i]:starts[i] + lengths[i]]
        key = f"track-{track_id}"
        figures[key] = timeline_figure(times[rows_of_track], probs[rows_of_track], step)
        expression, share = _mode_expression(expressions[rows_of_track])
        start, end = times[rows_of_track[0]], times[rows_of_track[-1]]
        detail = f"{start:.1f}–{end:.1f} s · {lengths[i]} frames"
        if expression:
            detail += f" · {share:.0%} {expression}"
        cards.append(FaceCard(key, f"Track {track_id}", detail, expression,
                              thumbnail_data_uri(thumbnails.get((source, track_id)))))
    return cards, figures


def _image_parts(source: str, rows: pd.DataFrame,
                 thumbnails: Mapping[tuple[str, int], np.ndarray]) -> tuple[list[FaceCard], dict[str, Any]]:
    faces = rows[rows["face"].notna()]
    cards = []
    for _, face in faces.sort_values("face").iterrows():
        index = int(face["face"])
        confidence = _number(face.get("confidence"))
        detail = "" if confidence is None else f"confidence {confidence:.0%}"
        expression = None if _is_missing(face.get("expression")) else str(face["expression"])
        cards.append(FaceCard(None, f"Face {index}", detail, expression,
                              thumbnail_data_uri(thumbnails.get((source, index)))))
    figures = {"faces": faces_figure(faces)} if len(faces) else {}
    return cards, figures


def _stats_line(row: Mapping[str, Any], rows: pd.DataFrame) -> str:
    kind = _text(row.get("kind"))
    parts = [f"<b>{escape(kind)}</b>"]
    if kind == "video":
        parts.append(f"duration {escape(_seconds(row.get('duration_s')))}")
        parts.append(f"{escape(_count(row.get('frames_analysed')))} frames analysed")
    parts.append(f"{escape(_count(row.get('faces')))} faces")
    if kind == "video":
        parts.append(f"{escape(_count(row.get('tracks')))} tracks")
        if len(rows) and "face" in rows:
            empty = rows[rows["face"].isna()]["frame"].nunique()
            parts.append(f"{empty:,} frames without a face")
    return " · ".join(parts)


def _problem_items_by_input(errors: pd.DataFrame) -> dict[str, str]:
    """For inputs that were partly analysed: their error rows as <li> items, by input name."""
    items: dict[str, str] = {}
    if errors.empty or "input" not in errors:
        return items
    for _, error in errors.iterrows():
        name = str(error["input"])
        items[name] = items.get(name, "") + (f"<li>{escape(_text(error.get('stage')))}: "
                                             f"{escape(_text(error.get('reason')))}</li>")
    return items


def _section_html(index: int, row: Mapping[str, Any], rows: pd.DataFrame, display: pd.DataFrame,
                  problems: Mapping[str, str], thumbnails: Mapping[tuple[str, int], np.ndarray]) -> str:
    source = str(row.get("source"))
    kind = _text(row.get("kind"))
    dominant = None if _is_missing(row.get("dominant_expression")) else str(row["dominant_expression"])
    if kind == "video":
        cards, figures = _video_parts(source, rows, display, thumbnails)
    else:
        cards, figures = _image_parts(source, rows, thumbnails)

    body = [f'<p class="stats">{_stats_line(row, rows)}</p>']
    if source in problems:
        body.append(f'<ul class="problems">{problems[source]}</ul>')
    if not cards:
        body.append('<p class="empty">No face was found in this input.</p>')
    else:
        body.append(f'<div class="cards">{"".join(_card_html(card) for card in cards)}</div>')
    track_keys = [key for key in figures if key.startswith("track-")]
    if track_keys:
        options = "".join(f'<option value="{key}">{escape(key.replace("-", " "))}</option>' for key in track_keys)
        picker = (f'<label class="picker">Timeline of <select data-picker>{options}</select></label>'
                  if len(track_keys) > 1 else "")
        body.append(f'<h4>Expression over time</h4>{picker}'
                    f'<div class="fig" data-fig="{track_keys[0]}"></div>')
    if "faces" in figures:
        body.append('<h4>Probabilities per face</h4><div class="fig" data-fig="faces"></div>')
    share = share_figure(row) if kind == "video" else None
    if share is not None:
        figures["share"] = share
        body.append('<h4>Share of each expression</h4><div class="fig" data-fig="share"></div>')
    body.append('<p class="back"><a href="#files">back to the list of inputs</a></p>')

    summary_line = (
        f'<summary><span class="num">{index + 1}.</span><span class="kind">{escape(kind)}</span>'
        f'<span class="name">{escape(source)}</span>'
        f'{_chip(dominant)}</summary>'
    )
    data = f'<script type="application/json" id="figs-{index}">{script_json(figures)}</script>'
    return (f'<details class="input" id="input-{index}" data-index="{index}">{summary_line}'
            f'<template><div class="body">{"".join(body)}</div></template>{data}</details>')


# -- overview table and problems ----------------------------------------------------------------
def _share_pager(count: int) -> str:
    """The picker of which inputs the share chart draws; none when they all fit on one page."""
    pages = share_pages(count)
    if len(pages) < 2:
        return ""
    options = "".join(f'<option value="{i}">{first:,}–{last:,}</option>' for i, (first, last) in enumerate(pages))
    return (f'<label class="picker">Inputs <select id="shares-page" aria-label="Inputs shown">{options}</select>'
            f' of {count:,}; click a bar to open its input</label>')


def _inert(holder_id: str, markup: str) -> str:
    """Markup the browser parses but neither lays out nor loads until the page's script moves it in, once.

    A page of thousands of rows and sections was laid out again for every chunk the parser added, and loaded
    every thumbnail of every closed section; a <template> is inert (each section's body has its own, opened
    on first view), so the page is laid out once, when the script inserts it."""
    return f'<template id="{holder_id}">{markup}</template>'


def _number_cell(value: object, shown: str) -> str:
    """A right-aligned cell that sorts by its number (empty sorts last)."""
    number = _number(value)
    return f'<td class="n" data-v="{"" if number is None else number}">{escape(shown)}</td>'


def _files_table(summary: pd.DataFrame) -> str:
    head = "".join(
        f'<th data-type="{kind}" scope="col"><button type="button">{escape(name)}</button></th>'
        for name, kind in (("#", "num"), ("Input", "text"), ("Kind", "text"), ("Duration", "num"),
                           ("Frames analysed", "num"), ("Faces", "num"), ("Tracks", "num"),
                           ("Dominant expression", "text")))
    body = []
    for index, (_, row) in enumerate(summary.iterrows()):
        kind = _text(row.get("kind"))
        dominant = _text(row.get("dominant_expression"), "no face")

        body.append(
            f'<tr data-kind="{escape(kind)}" data-expr="{escape(dominant)}">'
            f'<td class="n" data-v="{index + 1}">{index + 1}</td>'
            f'<td class="src"><a href="#input-{index}">{escape(_text(row.get("source")))}</a></td>'
            f'<td>{escape(kind)}</td>'
            + _number_cell(row.get("duration_s"), _seconds(row.get("duration_s")))
            + _number_cell(row.get("frames_analysed"), _count(row.get("frames_analysed")))
            + _number_cell(row.get("faces"), _count(row.get("faces")))
            + _number_cell(row.get("tracks"), _count(row.get("tracks")))
            + f"<td>{_chip(dominant)}</td></tr>"
        )
    kinds = sorted({_text(k) for k in summary.get("kind", [])})
    kind_options = "".join(f'<option value="{escape(k)}">{escape(k)}</option>' for k in kinds)
    expr_options = "".join(f'<option value="{escape(e)}">{escape(e)}</option>' for e in (*LABELS, "no face"))
    controls = (
        '<div class="controls"><input type="search" id="filter-text" placeholder="Filter by name…" '
        'aria-label="Filter by name">'
        f'<select id="filter-kind" aria-label="Kind"><option value="">all kinds</option>{kind_options}</select>'
        f'<select id="filter-expr" aria-label="Dominant expression"><option value="">all expressions</option>'
        f'{expr_options}</select><span id="filter-count"></span></div>'
    )
    return (f'{controls}<div class="table-wrap"><table id="files-table"><thead><tr>{head}</tr></thead>'
            f'<tbody>{_inert("files-rows", "".join(body))}</tbody></table></div>')


def _problem_table(df: pd.DataFrame, columns: tuple[str, ...], headers: tuple[str, ...]) -> str:
    if df is None or df.empty:
        return '<p class="empty">None.</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    rows = "".join("<tr>" + "".join(f"<td>{escape(_text(r.get(c), ''))}</td>" for c in columns) + "</tr>"
                   for _, r in df.iterrows())
    return f'<div class="table-wrap"><table class="plain"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>'


# what an unset (None) setting means, in the settings section
UNSET_SETTING = {"fps": "every frame", "max_frames": "all", "end_s": "the video's end", "annotate_dir": "none written",
                 "model_sha256": "file not readable"}


def _setting_text(key: str, value: object) -> str:
    if value is None:
        return UNSET_SETTING.get(key, "not set")
    if isinstance(value, Mapping):
        return ", ".join(f"{name} {version}" for name, version in value.items())
    return str(value)


def _settings_section(settings: Mapping[str, object] | None) -> str:
    """The version, model and options that made these results (provenance.run_settings), as in run.json."""
    if not settings:
        return ""
    rows = "".join(f"<tr><th scope=\"row\">{escape(str(key))}</th>"
                   f"<td>{escape(_setting_text(key, value))}</td></tr>"
                   for key, value in settings.items())
    return ('<section id="settings"><h2>How these results were made</h2>'
            f'<div class="table-wrap"><table class="plain"><tbody>{rows}</tbody></table></div>'
            '<p class="empty">The same settings are in run.json beside the CSVs.</p></section>')


def _duration_note(settings: Mapping[str, object] | None) -> str:
    """What the summed video durations (whole videos) do not tell: the options that analysed less of each."""
    if not settings:
        return ""
    limits = []
    if settings.get("start_s") or settings.get("end_s") is not None:
        limits.append("--start/--end chose a stretch of each")
    if settings.get("max_frames") is not None:
        limits.append(f"--max-frames analysed at most {settings['max_frames']} frames of each")
    return f" (whole videos; {'; '.join(limits)})" if limits else ""


def _counted(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def _headline(summary: pd.DataFrame, errors: pd.DataFrame, skipped: pd.DataFrame, smooth_s: float,
              settings: Mapping[str, object] | None = None) -> str:
    kinds = summary["kind"].value_counts() if "kind" in summary else pd.Series(dtype=int)
    total_faces = pd.to_numeric(summary.get("faces", pd.Series(dtype=float)), errors="coerce").sum()
    duration = pd.to_numeric(summary.get("duration_s", pd.Series(dtype=float)), errors="coerce").sum()
    facts = [f"{_counted(len(summary), 'input')} analysed ({_counted(int(kinds.get('video', 0)), 'video')}, "
             f"{_counted(int(kinds.get('image', 0)), 'photo')})",
             f"{duration:,.1f} s of video" + _duration_note(settings),
             _counted(int(total_faces), "face"),
             f'<a href="#problems">{len(errors):,} failed, {len(skipped):,} skipped</a>']
    if smooth_s > 0:
        facts.append(f"timelines smoothed over {smooth_s:g} s (display only)")
    return '<p class="headline">' + " · ".join(facts) + "</p>"


# -- the page -----------------------------------------------------------------------------------
CSS = """
:root{--fg:#1d2330;--muted:#5d6675;--line:#e3e6eb;--bg:#f6f7f9;--accent:#2f62d8}
*{box-sizing:border-box}
body{margin:0;font-family:%(font)s;color:var(--fg);background:var(--bg);font-size:14px;line-height:1.45}
main{max-width:1180px;margin:0 auto;padding:20px 24px 60px}
h1{font-size:24px;margin:8px 0 4px}h2{font-size:18px;margin:28px 0 10px}h4{margin:18px 0 6px;font-size:14px}
a{color:var(--accent)}
.headline{color:var(--muted);margin:0 0 16px}
.panel{background:#fff;border:1px solid var(--line);border-radius:8px;padding:12px 14px;margin-bottom:14px}
.grid{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,2fr);gap:14px}
@media(max-width:900px){.grid{grid-template-columns:1fr}}
.scroll{max-height:520px;overflow-y:auto}
.controls{display:flex;gap:8px;flex-wrap:wrap;align-items:center;margin-bottom:8px}
.controls input,.controls select{font:inherit;padding:5px 8px;border:1px solid #c9ced6;border-radius:6px;background:#fff}
.controls input{flex:1 1 260px}
#filter-count{color:var(--muted)}
.table-wrap{max-height:560px;overflow:auto;border:1px solid var(--line);border-radius:8px;background:#fff}
table{border-collapse:collapse;width:100%%}
th,td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
thead th{position:sticky;top:0;background:#f0f2f5;z-index:1}
th button{all:unset;cursor:pointer;font-weight:600}
th[aria-sort=ascending] button::after{content:" ▲"}th[aria-sort=descending] button::after{content:" ▼"}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.src{word-break:break-all;white-space:pre-wrap}
.chip{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px;white-space:nowrap;text-shadow:0 0 2px rgba(0,0,0,.35)}
.chip.none{background:#e4e6ea;color:#4a5260;text-shadow:none}
details.input{background:#fff;border:1px solid var(--line);border-radius:8px;margin-bottom:6px}
details.input>summary{cursor:pointer;padding:8px 12px;display:flex;gap:10px;align-items:center}
details.input[open]>summary{border-bottom:1px solid var(--line)}
summary .num{color:var(--muted);min-width:2.5em;text-align:right}
summary .kind{color:var(--muted);font-size:12px;min-width:3.5em}
summary .name{flex:1;word-break:break-all;white-space:pre-wrap;font-weight:600}
.body{padding:4px 14px 12px}
.stats{color:var(--muted)}
.cards{display:flex;flex-wrap:wrap;gap:8px}
.card{display:flex;gap:8px;align-items:center;border:1px solid var(--line);border-radius:8px;padding:6px;background:#fff;font:inherit;text-align:left;color:inherit}
button.card{cursor:pointer}button.card.active{border-color:var(--accent);box-shadow:0 0 0 2px rgba(47,98,216,.2)}
.card img,.no-thumb{width:64px;height:64px;object-fit:cover;border-radius:6px;background:#eef0f3}
.no-thumb{display:flex;align-items:center;justify-content:center;color:var(--muted);font-size:11px}
.card-text{display:flex;flex-direction:column;gap:2px;align-items:flex-start}
.card small{color:var(--muted)}
.picker{display:inline-block;margin:0 0 4px;color:var(--muted)}
.picker select{font:inherit;padding:2px 6px}
.fig{min-height:60px}
.empty{color:var(--muted)}
.problems{color:#a12a2a}
.back{margin:8px 0 0;font-size:12px}
""" % {"font": FONT}

SCRIPT = """
(function () {
  "use strict";
  var CONFIG = %(config)s;
  var SHARE_PAGE_SIZE = %(page)d, SHARE_ROW_PX = %(row)d, SHARE_BASE_PX = %(base)d, SHARE_MIN_PX = %(min)d;
  function timed(name, work) {
    var start = performance.now();
    work();
    performance.measure("fer-batch:" + name, {start: start});
  }
  function draw(div, figure) {
    if (!figure) { return Promise.resolve(); }
    div.dataset.state = "drawing";
    return Plotly.react(div, figure.data, figure.layout, CONFIG).then(function () {
      div.dataset.state = "rendered";
    });
  }

  function figuresOf(section) {
    if (!section._figures) {
      var holder = document.getElementById("figs-" + section.dataset.index);
      section._figures = holder ? JSON.parse(holder.textContent) : {};
    }
    return section._figures;
  }
  function unpack(holder) {
    if (holder) { holder.replaceWith(holder.content); }
  }
  function renderSection(section) {
    if (section.dataset.rendered) { return; }
    section.dataset.rendered = "1";
    unpack(section.querySelector(":scope > template"));
    var figures = figuresOf(section);
    section.querySelectorAll(".fig[data-fig]").forEach(function (div) { draw(div, figures[div.dataset.fig]); });
    markActive(section, (section.querySelector("[data-picker]") || {}).value);
  }
  function markActive(section, key) {
    section.querySelectorAll("button.card[data-show]").forEach(function (card) {
      card.classList.toggle("active", card.dataset.show === key);
    });
  }
  function showTrack(section, key) {
    var div = section.querySelector(".fig[data-fig^='track-']");
    var picker = section.querySelector("[data-picker]");
    if (!div) { return; }
    div.dataset.fig = key;
    if (picker) { picker.value = key; }
    markActive(section, key);
    draw(div, figuresOf(section)[key]);
  }
  function wireSections() {  // one listener each on the container, however many inputs there are
    var details = document.getElementById("details");
    details.addEventListener("toggle", function (event) {
      var section = event.target;
      if (section.matches("details.input") && section.open) { renderSection(section); }
    }, true);  // toggle does not bubble, so it is caught on the way down
    details.addEventListener("change", function (event) {
      if (event.target.matches("[data-picker]")) {
        showTrack(event.target.closest("details.input"), event.target.value);
      }
    });
    details.addEventListener("click", function (event) {
      var card = event.target.closest("button.card[data-show]");
      if (card) { showTrack(card.closest("details.input"), card.dataset.show); }
    });
  }
  function openFromHash() {
    var match = /^#input-(\\d+)$/.exec(location.hash);
    var section = match && document.getElementById("input-" + match[1]);
    if (section) { section.open = true; section.scrollIntoView(); }
  }
  function goTo(hash) {  // a hash already in the address bar fires no hashchange: open its section here
    if (location.hash === hash) { openFromHash(); } else { location.hash = hash; }
  }
  function wireLinks() {
    document.addEventListener("click", function (event) {
      var link = event.target.closest && event.target.closest("a[href^='#input-']");
      if (link && link.getAttribute("href") === location.hash) { event.preventDefault(); openFromHash(); }
    });
  }

  function sharesPage(figure, page) {
    var start = page * SHARE_PAGE_SIZE, end = start + SHARE_PAGE_SIZE;
    var data = figure.data.map(function (trace) {
      return Object.assign({}, trace, {x: trace.x.slice(start, end), y: trace.y.slice(start, end),
                                       customdata: trace.customdata.slice(start, end)});
    });
    var rows = data.length ? data[0].y.length : 0;
    var height = Math.max(SHARE_MIN_PX, SHARE_BASE_PX + SHARE_ROW_PX * rows);
    return {data: data, layout: Object.assign({}, figure.layout, {height: height})};
  }
  function drawOverview() {
    var overview = JSON.parse(document.getElementById("figs-overview").textContent);
    var pager = document.getElementById("shares-page");
    var page = function () { return sharesPage(overview.shares, pager ? Number(pager.value) : 0); };
    var waiting = Array.prototype.slice.call(document.querySelectorAll("#overview .fig[data-fig]"));
    function drawNext() {  // one chart per task, so the page paints and answers input in between
      var div = waiting.shift();
      if (!div) { return; }
      var shares = div.dataset.fig === "shares";
      draw(div, shares ? page() : overview[div.dataset.fig]).then(function () {
        if (shares) {
          div.on("plotly_click", function (event) {
            var point = event.points && event.points[0];
            if (point && point.customdata) { goTo("#input-" + point.customdata[0]); }
          });
          if (pager) { pager.addEventListener("change", function () { draw(div, page()); }); }
        }
        setTimeout(drawNext, 0);
      });
    }
    setTimeout(drawNext, 0);
  }

  function wireTable() {
    var table = document.getElementById("files-table");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var text = document.getElementById("filter-text");
    var kind = document.getElementById("filter-kind");
    var expr = document.getElementById("filter-expr");
    var count = document.getElementById("filter-count");
    var collator = new Intl.Collator();
    function nameOf(row) {
      if (row._name === undefined) { row._name = row.cells[1].textContent.toLowerCase(); }
      return row._name;
    }
    function applyFilter() {
      var needle = text.value.trim().toLowerCase(), shown = 0;
      rows.forEach(function (row) {
        var ok = (!needle || nameOf(row).indexOf(needle) >= 0) &&
          (!kind.value || row.dataset.kind === kind.value) && (!expr.value || row.dataset.expr === expr.value);
        if (row.hidden === ok) { row.hidden = !ok; }
        if (ok) { shown += 1; }
      });
      count.textContent = shown + " of " + rows.length + " shown";
    }
    function sortKey(row, column, numeric) {
      var cell = row.cells[column];
      if (!numeric) { return cell.textContent.toLowerCase(); }
      return cell.dataset.v === "" ? null : parseFloat(cell.dataset.v);
    }
    function sortBy(th, column) {
      var ascending = th.getAttribute("aria-sort") !== "ascending";
      table.tHead.querySelectorAll("th").forEach(function (other) { other.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var numeric = th.dataset.type === "num";
      var keyed = rows.map(function (row) { return {row: row, key: sortKey(row, column, numeric)}; });
      keyed.sort(function (a, b) {
        var x = a.key, y = b.key;
        if (x === y) { return 0; }
        if (x === null) { return 1; }
        if (y === null) { return -1; }
        var order = numeric ? x - y : collator.compare(x, y);
        return ascending ? order : -order;
      });
      rows = keyed.map(function (item) { return item.row; });
      var moved = document.createDocumentFragment();
      rows.forEach(function (row) { moved.appendChild(row); });
      body.appendChild(moved);  // one insertion, one layout
    }
    [text, kind, expr].forEach(function (el) { el.addEventListener("input", applyFilter); });
    table.tHead.querySelectorAll("th").forEach(function (th, column) {
      th.querySelector("button").addEventListener("click", function () { sortBy(th, column); });
    });
    applyFilter();  // the browser may have restored the filters' values
  }

  timed("unpack", function () {
    unpack(document.getElementById("files-rows"));
    unpack(document.getElementById("details-list"));
  });
  timed("sections", wireSections);
  window.addEventListener("hashchange", openFromHash);
  timed("links", wireLinks);
  timed("overview", drawOverview);
  timed("table", wireTable);
  openFromHash();
})();
""" % {"config": json.dumps(PLOT_CONFIG), "page": SHARE_PAGE_SIZE, "row": SHARE_ROW_PX, "base": SHARE_BASE_PX,
       "min": SHARE_MIN_PX}


def _inline_script(code: str, hashes: list[str]) -> str:
    hashes.append("'sha256-" + base64.b64encode(hashlib.sha256(code.encode("utf-8")).digest()).decode() + "'")
    return f"<script>{code}</script>"


def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    code = get_plotlyjs()
    if "</script" in code.lower():  # cannot happen with the bundles plotly ships, but would end the element
        code = code.replace("</script", "<\\/script").replace("</SCRIPT", "<\\/SCRIPT")
    return code


def _display_frames(frames: pd.DataFrame, smooth_s: float) -> pd.DataFrame:
    """The rows the timelines draw: a smoothed copy when asked; the caller's DataFrame is never changed."""
    return smooth_probabilities(frames, smooth_s) if smooth_s > 0 else frames


def render_report(frames: pd.DataFrame, summary: pd.DataFrame, errors: pd.DataFrame, skipped: pd.DataFrame,
                  thumbnails: Mapping[tuple[str, int], np.ndarray], *, smooth_s: float = 0.0,
                  title: str = "fer-batch report", settings: Mapping[str, object] | None = None,
                  by_second: pd.DataFrame | None = None) -> str:
    """The whole report as one HTML page (UTF-8 text) that needs no network; with `settings`, a last section
    saying what made it; with `by_second` (aggregate.videos_by_second) covering two videos or more at some
    second, an overview chart of all videos together."""
    summary = summary.reset_index(drop=True)
    frames = frames.reset_index(drop=True)  # a new frame with unique labels; the caller's is untouched
    errors = errors if errors is not None else pd.DataFrame(columns=["input", "stage", "reason"])
    skipped = skipped if skipped is not None else pd.DataFrame(columns=["path", "reason"])
    display = _display_frames(frames, smooth_s)
    rows_by_source = {str(source): part for source, part in frames.groupby("source", sort=False)}
    display_by_source = {str(source): part for source, part in display.groupby("source", sort=False)}
    empty = frames.iloc[0:0]
    problems = _problem_items_by_input(errors)

    sections = [
        _section_html(i, row, rows_by_source.get(str(row["source"]), empty),
                      display_by_source.get(str(row["source"]), empty), problems, thumbnails)
        for i, (_, row) in enumerate(summary.iterrows())
    ]
    overview = {"dominant": overview_dominant_figure(summary), "shares": overview_share_figure(summary)}
    together = ""
    if by_second is not None and len(by_second) and int(by_second["videos_with_face"].max()) >= 2:
        overview["by_second"] = overview_by_second_figure(by_second)
        together = ('<div class="panel"><h4>All videos together, second by second of each video\'s time '
                    '(mean probability, each video counted once; for recordings of one stimulus)</h4>'
                    '<div class="fig" data-fig="by_second"></div></div>')
    script_hashes: list[str] = []
    plotly_tag = _inline_script(_plotly_js(), script_hashes)
    app_tag = _inline_script(SCRIPT, script_hashes)
    policy = ("default-src 'none'; script-src " + " ".join(script_hashes)
              + "; style-src 'unsafe-inline'; img-src data: blob:; font-src data:")

    no_inputs = '<p class="empty">No input was analysed.</p>' if summary.empty else ""
    return "".join([
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{escape(policy)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{CSS}</style>{plotly_tag}</head><body><main>",
        f"<h1>{escape(title)}</h1>{NO_SCRIPT}{_headline(summary, errors, skipped, smooth_s, settings)}",
        '<section id="overview"><div class="grid">',
        '<div class="panel"><h4>Inputs by dominant expression</h4><div class="fig" data-fig="dominant"></div></div>',
        f'<div class="panel"><h4>Share of each expression per input</h4>{_share_pager(len(summary))}',
        '<div class="scroll"><div class="fig" data-fig="shares"></div></div></div></div>', together,
        f'<script type="application/json" id="figs-overview">{script_json(overview)}</script></section>',
        f'<section id="files"><h2>Inputs</h2>{no_inputs}{_files_table(summary)}</section>',
        f'<section id="details"><h2>Per input</h2>{_inert("details-list", "".join(sections))}</section>',
        f'<section id="problems"><h2>Failed inputs ({len(errors):,})</h2>',
        _problem_table(errors, ("input", "stage", "reason"), ("Input", "Stage", "Reason")),
        f"<h2>Skipped files ({len(skipped):,})</h2>",
        _problem_table(skipped, ("path", "reason"), ("Path", "Reason")),
        f"</section>{_settings_section(settings)}</main>{app_tag}</body></html>",
    ])


def write_report(path: str | os.PathLike, frames: pd.DataFrame, summary: pd.DataFrame, errors: pd.DataFrame,
                 skipped: pd.DataFrame, thumbnails: Mapping[tuple[str, int], np.ndarray], *,
                 smooth_s: float = 0.0, title: str = "fer-batch report",
                 settings: Mapping[str, object] | None = None, by_second: pd.DataFrame | None = None) -> Path:
    """Render the report and write it atomically (export.atomic_write_bytes: a temporary file, then a rename)."""
    page = render_report(frames, summary, errors, skipped, thumbnails, smooth_s=smooth_s, title=title,
                         settings=settings, by_second=by_second)
    target = Path(path)
    atomic_write_bytes(target, utf8(page))
    return target
