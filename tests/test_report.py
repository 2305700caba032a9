"""The HTML report: self-contained, escaped, lazily drawn; checked in Python and in headless Chromium."""
from __future__ import annotations

import base64
import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from fer_batch.aggregate import normalise_frame_types, summarise, summary_dataframe
from fer_batch.labels import LABELS
from fer_batch.report import (SHARE_PAGE_SIZE, faces_figure, render_report, share_chart_height,
                              thumbnail_data_uri, write_report)

HOSTILE_PHOTO = "photos/<img src=x onerror=alert(1)>.jpg"
HOSTILE_VIDEO = 'clips/"><script>alert(1)</script>.mp4'
HOSTILE_ERROR = "clips/</script><script>alert(2)</script>broken.mp4"
HOSTILE_SKIPPED = "notes/<svg onload=alert(3)>.txt"
HOSTILE_NAMES = (HOSTILE_PHOTO, HOSTILE_VIDEO, HOSTILE_ERROR, HOSTILE_SKIPPED)
GAP_TRACK = 1  # the track of interview.mp4 that is lost for a while


def _probabilities(rng: np.random.Generator, favourite: int, n: int) -> np.ndarray:
    """Noisy probability rows that lean towards one expression."""
    logits = rng.normal(0.0, 1.0, size=(n, len(LABELS)))
    logits[:, favourite] += 2.0
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def _face_row(source: str, frame: int, time_s: float | None, face: int, track_id: int | None,
              probs: np.ndarray) -> dict:
    best = int(np.argmax(probs))
    row = {"source": source, "frame": frame, "time_s": time_s, "face": face, "track_id": track_id,
           "x": 40 + 100 * face, "y": 30, "w": 80, "h": 80, "det_score": 0.98,
           "expression": LABELS[best], "confidence": float(probs[best])}
    row.update({label: float(p) for label, p in zip(LABELS, probs)})
    return row


def _video_rows(rng: np.random.Generator, source: str, seconds: float, fps: float,
                tracks: dict[int, tuple[int, list[tuple[float, float]]]], no_face_at: set[int]) -> list[dict]:
    """tracks: track_id -> (favourite expression, [(start_s, end_s), ...] where it is visible)."""
    rows = []
    for frame in range(int(seconds * fps)):
        time_s = round(frame / fps, 3)
        faces = [] if frame in no_face_at else [
            (track_id, favourite) for track_id, (favourite, spans) in tracks.items()
            if any(start <= time_s <= end for start, end in spans)]
        if not faces:
            rows.append({"source": source, "frame": frame, "time_s": time_s})
        for face, (track_id, favourite) in enumerate(faces):
            rows.append(_face_row(source, frame, time_s, face, track_id, _probabilities(rng, favourite, 1)[0]))
    return rows


def synthetic_batch(face_image: np.ndarray, extra_videos: int = 0) -> dict:
    """Two videos and a folder of photos, with a track gap, a frame with no face, hostile names,
    one failed input and one skipped file: everything render_report takes."""
    rng = np.random.default_rng(7)
    inputs: list[tuple[str, str, float | None, list[dict]]] = []
    interview = "clips/interview.mp4"
    inputs.append((interview, "video", 12.0, _video_rows(
        rng, interview, 12.0, 5.0,
        {GAP_TRACK: (3, [(0.0, 4.0), (7.0, 12.0)]), 2: (6, [(2.0, 10.0)])}, no_face_at={25, 26})))
    inputs.append((HOSTILE_VIDEO, "video", 6.0, _video_rows(
        rng, HOSTILE_VIDEO, 6.0, 4.0, {1: (4, [(0.0, 6.0)])}, no_face_at={0})))
    for n in range(extra_videos):
        source = f"clips/batch/session_{n:03d}.mp4"
        spans = {1: (int(rng.integers(0, 7)), [(0.0, 8.0)]), 2: (int(rng.integers(0, 7)), [(3.0, 8.0)])}
        inputs.append((source, "video", 8.0, _video_rows(rng, source, 8.0, 2.0, spans, no_face_at=set())))
    group = "photos/group.jpg"
    inputs.append((group, "image", None,
                   [_face_row(group, 0, None, face, None, p) for face, p in enumerate(_probabilities(rng, 3, 3))]))
    inputs.append((HOSTILE_PHOTO, "image", None,
                   [_face_row(HOSTILE_PHOTO, 0, None, 0, None, _probabilities(rng, 0, 1)[0])]))
    inputs.append(("photos/landscape.png", "image", None, [{"source": "photos/landscape.png", "frame": 0}]))

    frames = normalise_frame_types(pd.DataFrame([row for *_, rows in inputs for row in rows]))
    summary = summary_dataframe([
        summarise(source, kind, frames[frames["source"] == source], duration)
        for source, kind, duration, _ in inputs])
    errors = pd.DataFrame([{"input": HOSTILE_ERROR, "stage": "decode",
                            "reason": "OpenCV could not read <frame 3> & gave up."}])
    skipped = pd.DataFrame([{"path": HOSTILE_SKIPPED, "reason": "not a video or photo"}])
    small = face_image[::4, ::4].copy()
    thumbnails = {(interview, GAP_TRACK): small, (HOSTILE_VIDEO, 1): small[:, ::-1].copy(),
                  (group, 0): small, (group, 1): small[::-1].copy(), (HOSTILE_PHOTO, 0): small}
    thumbnails.update({(f"clips/batch/session_{n:03d}.mp4", 1): small for n in range(extra_videos)})
    return {"frames": frames, "summary": summary, "errors": errors, "skipped": skipped, "thumbnails": thumbnails}


@pytest.fixture(scope="module")
def batch(astronaut_bgr: np.ndarray) -> dict:
    return synthetic_batch(astronaut_bgr[20:220, 140:320])


@pytest.fixture(scope="module")
def page(batch: dict) -> str:
    return render_report(**batch, title="Batch <b>report</b>")


def _json_blocks(page: str) -> dict[str, object]:
    blocks = re.findall(r'<script type="application/json" id="([^"]+)">(.*?)</script>', page, flags=re.S)
    return {block_id: json.loads(text) for block_id, text in blocks}


def _section_index(page: str, source: str) -> int:
    for chunk in page.split('<details class="input" id="input-')[1:]:
        index, rest = chunk.split('"', 1)
        if f'<span class="name">{html.escape(source)}</span>' in rest.split("</summary>")[0]:
            return int(index)
    raise AssertionError(f"no section for {source}")


class _TagCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


# -- page structure --------------------------------------------------------------------------------
def test_plotly_js_is_embedded_exactly_once_and_nothing_is_fetched(page: str) -> None:
    from plotly.offline import get_plotlyjs

    banner = re.search(r"plotly\.js v\d+\.\d+\.\d+", get_plotlyjs()).group(0)
    assert page.count(banner) == 1
    assert page.count("<script>") == 2  # plotly.js and the page's own code; the rest is inert JSON
    parser = _TagCollector()
    parser.feed(page)
    loaded = [attrs.get("src") or attrs.get("href") or "" for tag, attrs in parser.tags
              if tag in ("script", "img", "link", "iframe", "source", "video")]
    assert [url for url in loaded if url and not url.startswith("data:image/jpeg;base64,")] == []
    policy = next(attrs["content"] for tag, attrs in parser.tags
                  if tag == "meta" and attrs.get("http-equiv") == "Content-Security-Policy")
    script_policy = policy.split("script-src")[1].split(";")[0].split()
    assert "default-src 'none'" in policy and len(script_policy) == 2  # only the hashes of our two scripts
    assert all(source.startswith("'sha256-") for source in script_policy)


def test_hostile_names_are_escaped_everywhere_and_never_raw(page: str) -> None:
    for name in HOSTILE_NAMES:
        assert name not in page
        assert html.escape(name) in page
    assert "<b>report</b>" not in page and "Batch &lt;b&gt;report&lt;/b&gt;" in page
    assert "OpenCV could not read &lt;frame 3&gt; &amp; gave up." in page
    parser = _TagCollector()
    parser.feed(page)
    assert [tag for tag, _ in parser.tags if tag == "script"] == ["script"] * (2 + len(_json_blocks(page)))
    assert not [(tag, name) for tag, attrs in parser.tags for name in attrs if name.startswith("on")]
    assert not [tag for tag, _ in parser.tags if tag in ("svg", "iframe", "object", "embed")]


def test_embedded_json_escapes_markup_and_keeps_the_names(page: str, batch: dict) -> None:
    for block in re.findall(r'<script type="application/json"[^>]*>(.*?)</script>', page, flags=re.S):
        assert "<" not in block and ">" not in block and "&" not in block
    shares = _json_blocks(page)["figs-overview"]["shares"]
    names = [html.unescape(name) for _, name in shares["data"][0]["customdata"]]
    assert names == list(batch["summary"]["source"])


def test_every_input_has_a_section_linked_from_the_table(page: str, batch: dict) -> None:
    for index, source in enumerate(batch["summary"]["source"]):
        assert _section_index(page, source) == index
        assert f'<a href="#input-{index}">{html.escape(source)}</a>' in page
    assert len(re.findall(r'<details class="input"', page)) == len(batch["summary"])


def test_figures_are_valid_plotly_figures(page: str) -> None:
    import plotly.graph_objects as go

    figures = [fig for block in _json_blocks(page).values() for fig in block.values()]
    assert len(figures) >= 8
    for figure in figures:
        go.Figure(figure)  # raises on any property plotly does not know


def test_per_input_charts_match_the_kind_of_input(page: str, batch: dict) -> None:
    blocks = _json_blocks(page)
    interview = blocks[f"figs-{_section_index(page, 'clips/interview.mp4')}"]
    assert set(interview) == {f"track-{GAP_TRACK}", "track-2", "share"}
    group = blocks[f"figs-{_section_index(page, 'photos/group.jpg')}"]
    assert set(group) == {"faces"} and len(group["faces"]["data"]) == 3
    assert blocks[f"figs-{_section_index(page, 'photos/landscape.png')}"] == {}


def test_a_lost_track_breaks_its_timeline(page: str) -> None:
    figures = _json_blocks(page)[f"figs-{_section_index(page, 'clips/interview.mp4')}"]
    for key, (last_seen, seen_again) in {f"track-{GAP_TRACK}": (4.0, 7.0), "track-2": (4.8, 5.4)}.items():
        line = figures[key]["data"][0]  # track 2 misses only the two frames where no face was found
        assert line["y"].count(None) == 1
        gap_at = line["y"].index(None)
        assert line["x"][gap_at - 1] == last_seen and line["x"][gap_at + 1] == seen_again
        assert last_seen < line["x"][gap_at] < seen_again


def test_smoothing_changes_the_drawn_values_but_not_the_input(batch: dict) -> None:
    before = batch["frames"].copy(deep=True)
    raw = _json_blocks(render_report(**batch))
    smoothed_page = render_report(**batch, smooth_s=2.0)
    smoothed = _json_blocks(smoothed_page)
    pd.testing.assert_frame_equal(batch["frames"], before)
    key = f"figs-{_section_index(smoothed_page, 'clips/interview.mp4')}"
    raw_y = np.array(raw[key]["track-2"]["data"][3]["y"], dtype=float)
    smooth_y = np.array(smoothed[key]["track-2"]["data"][3]["y"], dtype=float)
    assert raw_y.shape == smooth_y.shape
    assert np.nanmax(np.abs(raw_y - smooth_y)) > 0.05
    assert np.nanstd(smooth_y) < np.nanstd(raw_y)  # a rolling mean flattens the noise
    assert "smoothed over 2 s" in smoothed_page


def test_thumbnails_are_inline_images_and_missing_ones_have_a_placeholder(page: str) -> None:
    section = page.split(f'id="input-{_section_index(page, "clips/interview.mp4")}"')[1].split("</details>")[0]
    assert section.count('src="data:image/jpeg;base64,') == 1
    assert section.count('class="no-thumb"') == 1


def test_thumbnails_accept_grey_and_bgra_and_refuse_other_shapes() -> None:
    face = np.full((300, 200, 3), 120, np.uint8)
    for image in (face, face[:, :, 0], np.dstack([face, np.full((300, 200), 255, np.uint8)])):
        uri = thumbnail_data_uri(image)
        decoded = cv2.imdecode(np.frombuffer(base64.b64decode(uri.split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
        assert decoded.shape == (112, 75, 3)  # shrunk to fit 112 px, aspect kept
    assert thumbnail_data_uri(np.zeros((4, 4, 2), np.uint8)) is None
    assert thumbnail_data_uri(np.zeros((0, 0, 3), np.uint8)) is None


def test_a_crowded_photo_becomes_a_heatmap() -> None:
    import plotly.graph_objects as go

    rng = np.random.default_rng(1)
    rows = pd.DataFrame([_face_row("crowd.jpg", 0, None, face, None, p)
                         for face, p in enumerate(_probabilities(rng, 3, 12))])
    figure = faces_figure(rows)
    assert [trace["type"] for trace in figure["data"]] == ["heatmap"]
    assert figure["data"][0]["y"] == [f"face {i}" for i in range(12)]
    go.Figure(figure)


def test_an_empty_batch_still_renders() -> None:
    frames = normalise_frame_types(pd.DataFrame(columns=["source", "frame"]))
    page = render_report(frames, summary_dataframe([]), pd.DataFrame(columns=["input", "stage", "reason"]),
                         pd.DataFrame(columns=["path", "reason"]), {})
    assert "No input was analysed." in page and page.endswith("</html>")


def test_write_report_replaces_the_file_atomically(tmp_path: Path, batch: dict) -> None:
    target = tmp_path / "out" / "report.html"
    write_report(target, **batch, smooth_s=1.0)
    assert target.read_text(encoding="utf-8") == render_report(**batch, smooth_s=1.0)
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.html"]

    broken = dict(batch, summary=batch["summary"].drop(columns=["source"]))
    with pytest.raises(KeyError):
        write_report(target, **broken)
    assert target.read_text(encoding="utf-8") == render_report(**batch, smooth_s=1.0)
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.html"]


@pytest.fixture(scope="module")
def many(astronaut_bgr: np.ndarray) -> dict:
    """More inputs than one page of the share chart holds."""
    return synthetic_batch(astronaut_bgr[20:220, 140:320], extra_videos=SHARE_PAGE_SIZE + 10)


def test_the_share_chart_keeps_every_input_and_pages_them(many: dict) -> None:
    count = len(many["summary"])
    page = render_report(**many)
    shares = _json_blocks(page)["figs-overview"]["shares"]
    assert [len(trace["y"]) for trace in shares["data"]] == [count] * len(LABELS)
    assert shares["layout"]["height"] == share_chart_height(SHARE_PAGE_SIZE)  # a page, not every input
    pager = re.search(r'<select id="shares-page"[^>]*>(.*?)</select>', page).group(1)
    assert re.findall(r'<option value="(\d+)">([^<]*)</option>', pager) == [
        ("0", f"1–{SHARE_PAGE_SIZE}"), ("1", f"{SHARE_PAGE_SIZE + 1}–{count}")]


def test_one_page_of_inputs_needs_no_pager(page: str) -> None:
    assert 'id="shares-page"' not in page


def test_rows_and_section_bodies_wait_inert_in_templates(page: str, batch: dict) -> None:
    count = len(batch["summary"])
    rows = re.search(r'<tbody><template id="files-rows">(.*?)</template></tbody>', page, flags=re.S).group(1)
    assert rows.count("<tr ") == count
    sections = page.split('<template id="details-list">')[1]
    assert sections.count('<details class="input"') == count
    bodies = re.findall(r'</summary><template><div class="body">', sections)
    assert len(bodies) == count
    assert not re.search(r'</summary><div class="body">', page)  # no body is live before its section opens
    noscript = re.search(r"<noscript>(.*?)</noscript>", page, flags=re.S).group(1)
    assert "JavaScript" in noscript and "CSV" in noscript   # without scripts the page says where the figures are


# -- in a real browser ----------------------------------------------------------------------------
WAIT_FOR_PLOTS = """
new Promise(function (resolve, reject) {
  var started = Date.now();
  (function poll() {
    var figs = Array.prototype.slice.call(document.querySelectorAll(%s));
    var waiting = figs.filter(function (f) { return f.dataset.state !== "rendered"; });
    if (!waiting.length) { resolve(figs.length); }
    else if (Date.now() - started > 30000) { reject(new Error(waiting.length + " plots never rendered")); }
    else { setTimeout(poll, 50); }
  })();
})
"""

WAIT_FOR_SECTIONS = """
new Promise(function (resolve) {
  (function poll() {  // each opened section takes its body out of its <template> on its toggle event
    if (document.querySelector('details.input[open]:not([data-rendered])')) { setTimeout(poll, 20); } else { resolve(0); }
  })();
})
"""


def test_report_works_in_headless_chromium(tmp_path: Path, batch: dict, browser) -> None:
    report = write_report(tmp_path / "report.html", **batch, smooth_s=1.0)
    browser.open(report)
    count = browser.evaluate(WAIT_FOR_PLOTS % json.dumps("#overview .fig"))
    assert count == 2
    assert browser.evaluate("document.querySelectorAll('.js-plotly-plot').length") == 2  # sections wait

    sources = list(batch["summary"]["source"])
    ticks = browser.evaluate("Array.from(document.querySelectorAll('#overview [data-fig=shares] .ytick text'), t => t.textContent)")
    assert sorted(ticks) == sorted(f"{i + 1}. {source}" for i, source in enumerate(sources))  # shown as text
    shown = browser.evaluate("Array.from(document.querySelectorAll('summary .name'), s => s.textContent)")
    assert shown == sources

    browser.evaluate("document.querySelectorAll('details.input').forEach(d => { d.open = true; }); 0")
    browser.evaluate(WAIT_FOR_SECTIONS)
    drawn = browser.evaluate(WAIT_FOR_PLOTS % json.dumps("details.input .fig"))
    assert drawn == 2 + 1 + 2 + 1  # interview: timeline+share; hostile video: same; group and hostile photos
    assert browser.evaluate("document.querySelectorAll('details.input .js-plotly-plot .main-svg').length") >= drawn
    lines = browser.evaluate("document.querySelectorAll('details.input .scatterlayer .trace').length")
    assert lines == 2 * len(LABELS)

    written = report.read_text(encoding="utf-8")
    interview = _section_index(written, "clips/interview.mp4")
    timeline = f"document.querySelector('#input-{interview} .fig[data-fig^=track-]')"
    figures = _json_blocks(written)[f"figs-{interview}"]
    assert browser.evaluate(f"{timeline}.data[0].y") == figures[f"track-{GAP_TRACK}"]["data"][0]["y"]  # longest
    browser.evaluate(f"document.querySelector('#input-{interview} button.card[data-show=track-2]').click(); 0")
    browser.evaluate(WAIT_FOR_PLOTS % json.dumps(f"#input-{interview} .fig"))
    assert browser.evaluate(f"{timeline}.data[0].y") == figures["track-2"]["data"][0]["y"]
    assert browser.evaluate(f"document.querySelector('#input-{interview} [data-picker]').value") == "track-2"

    visible = browser.evaluate("""(function () {
        var box = document.getElementById('filter-text');
        box.value = 'photos/'; box.dispatchEvent(new Event('input'));
        return Array.from(document.querySelectorAll('#files-table tbody tr'))
          .filter(r => !r.hidden).map(r => r.cells[1].textContent); })()""")
    assert visible == [s for s in sources if s.startswith("photos/")]
    order = browser.evaluate("""(function () {
        document.getElementById('filter-text').value = '';
        document.getElementById('filter-text').dispatchEvent(new Event('input'));
        document.querySelectorAll('#files-table th button')[5].click();
        document.querySelectorAll('#files-table th button')[5].click();
        return Array.from(document.querySelectorAll('#files-table tbody tr'), r => r.cells[1].textContent); })()""")
    faces = batch["summary"].set_index("source")["faces"]
    assert [int(faces[s]) for s in order] == sorted((int(f) for f in faces), reverse=True)

    assert browser.evaluate("document.querySelectorAll('img:not([src^=\"data:\"]), [onerror], [onload]').length") == 0
    browser.evaluate("window.scrollTo(0, 0); 0")
    shot = cv2.imread(str(browser.screenshot(tmp_path / "report.png")))
    assert shot.shape == (900, 1280, 3) and shot.std() > 20  # something was painted, not a blank page

    browser.settle()
    assert browser.dialogs == []
    assert browser.console_errors == []


def test_all_videos_together_and_the_settings_are_drawn_in_headless_chromium(tmp_path: Path, batch: dict, browser) -> None:
    """With two videos that show faces at the same seconds, the overview gains the all-videos chart; the settings
    table closes the page. In Chromium: three overview charts drawn, seven lines in the new one, no errors."""
    from fer_batch.aggregate import videos_by_second

    by_second = videos_by_second(batch["frames"], batch["summary"].loc[batch["summary"]["kind"] == "video", "source"])
    assert by_second["videos_with_face"].max() == 2
    settings = {"fer_batch": "0.1.0", "model": "<mine>.keras", "fps": None}
    report = write_report(tmp_path / "report.html", **batch, by_second=by_second, settings=settings)
    figures = _json_blocks(report.read_text(encoding="utf-8"))["figs-overview"]
    assert all(trace["x"] == by_second["second"].tolist() for trace in figures["by_second"]["data"])
    browser.open(report)
    assert browser.evaluate(WAIT_FOR_PLOTS % json.dumps("#overview .fig")) == 3
    assert browser.evaluate("document.querySelectorAll('#overview [data-fig=by_second] .scatterlayer .trace').length") == 7
    rows = browser.evaluate("Array.from(document.querySelectorAll('#settings tr'), r => r.textContent)")
    assert rows == ["fer_batch0.1.0", "model<mine>.keras", "fpsevery frame"]
    assert browser.console_errors == []
    alone = render_report(**batch, by_second=by_second.assign(videos_with_face=1))
    assert 'data-fig="by_second"' not in alone and '"by_second"' not in alone


def test_many_inputs_draw_one_page_and_load_no_thumbnail_until_opened(tmp_path: Path, many: dict, browser) -> None:
    count = len(many["summary"])
    report = write_report(tmp_path / "report.html", **many)
    browser.open(report)
    assert browser.evaluate(WAIT_FOR_PLOTS % json.dumps("#overview .fig")) == 2
    shares = "document.querySelector('#overview [data-fig=shares]')"
    assert browser.evaluate(f"{shares}.querySelectorAll('.ytick').length") == SHARE_PAGE_SIZE
    assert browser.evaluate("document.querySelectorAll('#files-table tbody tr').length") == count
    assert browser.evaluate("document.querySelectorAll('summary .name').length") == count
    assert browser.evaluate("document.querySelectorAll('template, details.input .body, img').length") == count

    browser.evaluate("var p = document.getElementById('shares-page'); p.value = '1';"
                     "p.dispatchEvent(new Event('change')); 0")
    browser.evaluate(WAIT_FOR_PLOTS % json.dumps("#overview [data-fig=shares]"))
    assert browser.evaluate(f"{shares}.data[0].customdata.map(c => c[0])") == list(range(SHARE_PAGE_SIZE, count))
    assert browser.evaluate(f"{shares}.layout.height") == share_chart_height(count - SHARE_PAGE_SIZE)

    browser.evaluate("location.hash = '#input-3'; 0")
    browser.evaluate(WAIT_FOR_SECTIONS)
    assert browser.evaluate("document.querySelectorAll('details.input[open] .body').length") == 1
    assert browser.evaluate(WAIT_FOR_PLOTS % json.dumps("#input-3 .fig")) == 2
    assert browser.evaluate("document.querySelectorAll('img').length") == 1  # the opened video's one thumbnail
    browser.settle()
    assert browser.console_errors == []


def test_headline_counts_read_as_english() -> None:
    from fer_batch.report import _headline

    empty = pd.DataFrame(columns=["input", "stage", "reason"])
    one = pd.DataFrame([{"source": "a.jpg", "kind": "image", "faces": 1, "duration_s": None}])
    assert "1 input analysed (0 videos, 1 photo)" in _headline(one, empty, empty, 0.0)
    assert "· 1 face ·" in _headline(one, empty, empty, 0.0)
    two = pd.concat([one, one.assign(kind="video", faces=2, duration_s=3.0)])
    assert "2 inputs analysed (1 video, 1 photo)" in _headline(two, empty, empty, 0.0)
    assert "· 3 faces ·" in _headline(two, empty, empty, 0.0)


def _small_report(tmp_path: Path, rows: list[dict], kinds: dict[str, tuple[str, float | None]]) -> Path:
    frames = normalise_frame_types(pd.DataFrame(rows))
    summary = summary_dataframe([summarise(source, kind, frames[frames["source"] == source], duration)
                                 for source, (kind, duration) in kinds.items()])
    return write_report(tmp_path / "report.html", frames=frames, summary=summary, thumbnails={},
                        errors=pd.DataFrame(columns=["input", "stage", "reason"]),
                        skipped=pd.DataFrame(columns=["path", "reason"]))


def test_links_reopen_a_closed_section_and_lone_points_and_double_spaces_show(tmp_path: Path, browser) -> None:
    """A second click on a link to the section in the address bar did nothing (no hashchange); a point seen once
    between two gaps was drawn nowhere (a line needs two); two names differing in a double space read the same."""
    rng = np.random.default_rng(3)
    blink, names = "clips/blink.mp4", ["photos/two  spaces.jpg", "photos/two spaces.jpg"]
    rows = _video_rows(rng, blink, 9.0, 1.0, {1: (5, [(0.0, 2.0), (4.0, 4.0), (6.0, 8.0)])}, no_face_at=set())
    rows += [_face_row(name, 0, None, 0, None, _probabilities(rng, 3, 1)[0]) for name in names]
    browser.open(_small_report(tmp_path, rows, {blink: ("video", 9.0), **{name: ("image", None) for name in names}}))
    assert browser.evaluate(WAIT_FOR_PLOTS % json.dumps("#overview .fig")) == 2
    section, link = "document.getElementById('input-0')", "document.querySelector('#files-table a[href=\"#input-0\"]')"
    shares = "document.querySelector('#overview [data-fig=shares]')"
    for click in (f"{link}.click()", f"{link}.click()", f"{shares}.emit('plotly_click', {{points: [{{customdata: [0]}}]}})"):
        browser.evaluate(f"{section}.open = false; {click}; 0")
        assert browser.evaluate(f"{section}.open") is True, click

    browser.evaluate(WAIT_FOR_SECTIONS)
    browser.evaluate(WAIT_FOR_PLOTS % json.dumps("#input-0 .fig"))
    timeline = "document.querySelector('#input-0 .fig[data-fig^=track-]')"
    assert browser.evaluate(f"{timeline}.data[0].x") == [0, 1, 2, 3, 4, 5, 6, 7, 8]   # gaps at 3 and 5
    radii = browser.evaluate(f"Array.from({timeline}.querySelectorAll('.scatterlayer .trace:first-child .points path'),"
                             " p => /^M([\\d.]+),/.exec(p.getAttribute('d'))[1])")
    assert [float(r) > 0 for r in radii] == [False, False, False, True, False, False, False]   # only t = 4 s

    widths = browser.evaluate("Array.from(document.querySelectorAll('td.src a'), a => [a.textContent, "
                              "a.getBoundingClientRect().width])")
    assert dict(widths)[names[0]] > dict(widths)[names[1]]
    assert browser.evaluate("Array.from(document.querySelectorAll('summary .name'), s => getComputedStyle(s)"
                            ".whiteSpace)") == ["pre-wrap"] * 3
    browser.settle()
    assert browser.console_errors == []


def test_a_crowd_s_heatmap_draws_high_probabilities_dark(tmp_path: Path, browser) -> None:
    """plotly.js's "Blues" runs from dark at 0 to light grey at 1: the top expression of each face looked empty."""
    rng = np.random.default_rng(3)
    crowd = "photos/crowd.jpg"
    rows = [_face_row(crowd, 0, None, face, None, p) for face, p in enumerate(_probabilities(rng, 3, 12))]
    browser.open(_small_report(tmp_path, rows, {crowd: ("image", None)}).resolve().as_uri() + "#input-0")
    browser.evaluate(WAIT_FOR_SECTIONS)
    browser.evaluate(WAIT_FOR_PLOTS % json.dumps("#input-0 .fig"))
    gradient = browser.evaluate("""(function () {
      var id = /url\\("?#([^")]+)"?\\)/.exec(document.querySelector('#input-0 .colorbar .cbfill').style.fill)[1];
      var g = document.getElementById(id);
      return {y1: g.getAttribute('y1'), y2: g.getAttribute('y2'),
              stops: Array.from(g.querySelectorAll('stop'), s => [parseFloat(s.getAttribute('offset')),
                                                                   s.getAttribute('stop-color')])};
    })()""")
    assert (gradient["y1"], gradient["y2"]) == ("1", "0")   # offset 0 at the colour bar's foot, where z = 0

    def brightness(colour: str) -> float:
        return sum(float(v) for v in re.findall(r"[\d.]+", colour)[:3])

    stops = sorted(gradient["stops"])
    assert brightness(stops[-1][1]) < brightness(stops[0][1]) - 200   # z = 1 darker than z = 0


def test_a_timeline_marks_only_points_no_line_shows() -> None:
    from fer_batch.report import timeline_figure

    probs = np.full((6, len(LABELS)), 1 / len(LABELS))
    steady = timeline_figure(np.arange(6.0), probs, 1.0)
    assert steady["data"][0]["mode"] == "lines" and "marker" not in steady["data"][0]   # no marker per point
    lone = timeline_figure(np.array([0.0, 1.0, 2.0, 4.0, 6.0, 7.0]), probs, 1.0)
    assert lone["data"][0]["marker"]["size"] == [0, 0, 0, 0, 6, 0, 0, 0]   # t = 4, between the two gaps
    assert timeline_figure(np.array([0.0, 1.0]), probs[:2], 1.0)["data"][0]["marker"]["size"] == [6, 6]
