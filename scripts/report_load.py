"""How long the HTML report takes to become usable in headless Chromium, for batches of N synthetic inputs
(no model is run: frames, summary and thumbnails are made up, shaped like the real ones) -> reports/report-load.md.

    python scripts/report_load.py                          # 450 and 4,500 inputs -> reports/report-load.md
    python scripts/report_load.py --inputs 450 --keep /tmp/reports   # one size; keep the HTML files
    python scripts/report_load.py --inputs 4500 --out /tmp/load.md --trace   # with a Chromium trace breakdown

Measured per report: the HTML's size, Chromium's DOMContentLoaded and load events, when each overview chart
reached data-state="rendered", the page's own phases (performance.measure entries named "fer-batch:*"), the
long tasks (over 50 ms) on the page's main thread and when the last one ended ("usable": the page answers input
from then on). With --trace, the main thread's time by trace event (self time: parsing, script, style, layout).
Times are from navigation start, in milliseconds. One Chromium at a time; on 2 shared cores expect noise of ~10%.
"""
from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from fer_batch.aggregate import normalise_frame_types, summarise, summary_dataframe, videos_by_second  # noqa: E402
from fer_batch.browser import HeadlessChromium  # noqa: E402
from fer_batch.labels import LABELS  # noqa: E402
from fer_batch.report import write_report  # noqa: E402

VIDEO_EVERY = 3            # one input in three is a video, the others photos
VIDEO_SECONDS = 20.0
VIDEO_FPS = 2.0
QUIET_MS = 1500            # the page is taken as settled after this long without a long task
TRACE_CATEGORIES = "devtools.timeline,disabled-by-default-devtools.timeline,v8.execute,blink.user_timing"

# Runs before the page's own scripts (CDP's scripts are not subject to the page's Content-Security-Policy).
PROBE = """
(function () {
  var probe = window.__loadProbe = {rendered: {}, longTasks: []};
  new PerformanceObserver(function (list) {
    list.getEntries().forEach(function (e) { probe.longTasks.push([e.startTime, e.duration]); });
  }).observe({type: "longtask", buffered: true});
  new MutationObserver(function (records) {
    records.forEach(function (r) {
      var el = r.target;
      if (el.dataset && el.dataset.state === "rendered" && el.closest("#overview") && !(el.dataset.fig in probe.rendered)) {
        probe.rendered[el.dataset.fig] = performance.now();
      }
    });
  }).observe(document, {subtree: true, attributes: true, attributeFilter: ["data-state"]});
})();
"""

SETTLED = """
new Promise(function (resolve) {
  var probe = window.__loadProbe;
  (function poll() {
    var figs = Array.prototype.slice.call(document.querySelectorAll("#overview .fig"));
    var drawn = figs.every(function (f) { return f.dataset.state === "rendered"; });
    var last = probe.longTasks.reduce(function (m, t) { return Math.max(m, t[0] + t[1]); }, 0);
    if (drawn && performance.now() - last > %d) {
      var nav = performance.getEntriesByType("navigation")[0];
      resolve({dcl: nav.domContentLoadedEventEnd, load: nav.loadEventEnd, rendered: probe.rendered,
               longTasks: probe.longTasks, lastLongTaskEnd: last,
               measures: performance.getEntriesByType("measure").filter(function (m) {
                 return m.name.indexOf("fer-batch:") === 0; }).map(function (m) { return [m.name, m.duration]; }),
               rows: document.querySelectorAll("#files-table tbody tr").length,
               elements: document.getElementsByTagName("*").length,
               images: document.images.length});
    } else { setTimeout(poll, 100); }
  })();
})
""" % QUIET_MS


# -- synthetic batch --------------------------------------------------------------------------------
def _probabilities(rng: np.random.Generator, favourite: int, n: int) -> np.ndarray:
    logits = rng.normal(0.0, 1.0, size=(n, len(LABELS)))
    logits[:, favourite] += 2.0
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def _face_rows(source: str, frame: int, time_s: float | None, track_ids: list[int | None],
               probs: np.ndarray) -> list[dict]:
    rows = []
    for face, (track_id, p) in enumerate(zip(track_ids, probs)):
        best = int(np.argmax(p))
        row = {"source": source, "frame": frame, "time_s": time_s, "face": face, "track_id": track_id,
               "x": 40 + 90 * face, "y": 30, "w": 80, "h": 80, "det_score": 0.97,
               "expression": LABELS[best], "confidence": float(p[best])}
        row.update(zip(LABELS, p.tolist()))
        rows.append(row)
    return rows or [{"source": source, "frame": frame, "time_s": time_s}]


def _video(rng: np.random.Generator, source: str) -> list[dict]:
    """1 to 3 tracks, each visible over one stretch of the video."""
    tracks = {t: (int(rng.integers(0, 7)), *sorted(rng.uniform(0, VIDEO_SECONDS, 2)))
              for t in range(1, int(rng.integers(1, 4)) + 1)}
    rows = []
    for frame in range(int(VIDEO_SECONDS * VIDEO_FPS)):
        time_s = round(frame / VIDEO_FPS, 3)
        seen = [(t, fav) for t, (fav, start, end) in tracks.items() if start <= time_s <= end]
        probs = np.array([_probabilities(rng, fav, 1)[0] for _, fav in seen]).reshape(len(seen), len(LABELS))
        rows += _face_rows(source, frame, time_s, [t for t, _ in seen], probs)
    return rows


def synthetic_batch(n: int, seed: int = 0) -> dict[str, Any]:
    """N inputs (one in VIDEO_EVERY a video), a 64 px thumbnail per track or face, a few failed and skipped."""
    from skimage import data

    face = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)[20:220, 140:320]
    rng = np.random.default_rng(seed)
    rows, kinds, thumbnails = [], {}, {}
    for i in range(n):
        folder = f"set_{i // 500:02d}"
        if i % VIDEO_EVERY == 0:
            source, kind = f"{folder}/clip_{i:05d}.mp4", "video"
            part = _video(rng, source)
        else:
            source, kind = f"{folder}/photo_{i:05d}.jpg", "image"
            faces = int(rng.choice([0, 1, 1, 1, 2, 3]))
            part = _face_rows(source, 0, None, [None] * faces, _probabilities(rng, int(rng.integers(0, 7)), faces))
        kinds[source] = kind
        rows += part
        keys = {r["track_id"] if kind == "video" else r["face"] for r in part if "face" in r}
        for key in keys:
            shade = rng.uniform(0.7, 1.3)
            thumbnails[(source, int(key))] = cv2.resize(np.clip(face * shade, 0, 255).astype(np.uint8), (64, 64),
                                                        interpolation=cv2.INTER_AREA)
    frames = normalise_frame_types(pd.DataFrame(rows))
    parts = dict(tuple(frames.groupby("source", sort=False)))
    summary = summary_dataframe([summarise(s, k, parts[s], VIDEO_SECONDS if k == "video" else None)
                                 for s, k in kinds.items()])
    errors = pd.DataFrame([{"input": f"broken/clip_{i}.mp4", "stage": "decode", "reason": "unreadable"}
                           for i in range(max(1, n // 300))])
    skipped = pd.DataFrame([{"path": f"notes/readme_{i}.txt", "reason": "not an image or video"}
                            for i in range(max(1, n // 300))])
    by_second = videos_by_second(frames, [s for s, k in kinds.items() if k == "video"])
    return {"frames": frames, "summary": summary, "errors": errors, "skipped": skipped,
            "thumbnails": thumbnails, "by_second": by_second}


# -- measuring in Chromium ---------------------------------------------------------------------------
class TracingChromium(HeadlessChromium):
    """HeadlessChromium that also keeps the trace events Chromium sends."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.trace: list[dict[str, Any]] = []
        self.trace_complete = False

    def _record(self, message: dict[str, Any]) -> None:
        if message.get("method") == "Tracing.dataCollected":
            self.trace.extend(message["params"]["value"])
        elif message.get("method") == "Tracing.tracingComplete":
            self.trace_complete = True
        super()._record(message)

    def stop_tracing(self) -> None:
        self.call("Tracing.end", session=False)
        deadline = time.monotonic() + self.timeout_s
        while not self.trace_complete:
            self._pump(deadline)


def main_thread_self_times(trace: list[dict[str, Any]]) -> dict[str, float]:
    """Milliseconds of self time per event name on the renderer's main thread (complete events only)."""
    main = {(e["pid"], e["tid"]) for e in trace if e.get("name") == "thread_name"
            and e.get("args", {}).get("name") == "CrRendererMain"}
    events = sorted((e for e in trace if e.get("ph") == "X" and (e["pid"], e["tid"]) in main and "dur" in e),
                    key=lambda e: (e["ts"], -e["dur"]))
    totals: dict[str, float] = defaultdict(float)
    stack: list[list[Any]] = []  # [end, name, child time]
    for event in events:
        while stack and stack[-1][0] <= event["ts"]:
            _, name, children = stack.pop()
            totals[name] -= children
        if stack:
            stack[-1][2] += event["dur"]
        totals[event["name"]] += event["dur"]
        stack.append([event["ts"] + event["dur"], event["name"], 0.0])
    for _, name, children in stack:
        totals[name] -= children
    return {name: us / 1000 for name, us in sorted(totals.items(), key=lambda kv: -kv[1])}


def measure(path: Path, trace: bool) -> dict[str, Any]:
    with TracingChromium(timeout_s=600) as browser:
        browser.call("Page.addScriptToEvaluateOnNewDocument", {"source": PROBE})
        if trace:
            browser.call("Tracing.start", {"categories": TRACE_CATEGORIES, "transferMode": "ReportEvents"},
                         session=False)
        browser.open(path)
        result = browser.evaluate(SETTLED)
        if trace:
            browser.stop_tracing()
            result["trace"] = main_thread_self_times(browser.trace)
        browser.settle()
        result["errors"] = list(browser.console_errors)
    return result


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def markdown(results: list[dict[str, Any]]) -> str:
    lines = ["# Report load time in headless Chromium", "",
             f"`python scripts/report_load.py {' '.join(sys.argv[1:])}`".replace(" `", "`"),
             f"on {platform.node() or 'this machine'} ({platform.machine()}, Python {platform.python_version()}); "
             "milliseconds from navigation start; 'usable' is the end of the last long task (> 50 ms).", "",
             "| inputs | HTML MB | render s (Python) | DOMContentLoaded | load | overview drawn | usable "
             "| long tasks (sum) | DOM elements | images |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        drawn = max(r["rendered"].values()) if r["rendered"] else None
        long_sum = sum(d for _, d in r["longTasks"])
        lines.append(f"| {r['inputs']:,} | {r['mb']:.1f} | {r['render_s']:.1f} | {_ms(r['dcl'])} | {_ms(r['load'])} "
                     f"| {_ms(drawn)} | {_ms(r['lastLongTaskEnd'])} | {len(r['longTasks'])} ({_ms(long_sum)}) "
                     f"| {r['elements']:,} | {r['images']:,} |")
    lines += ["", "Overview charts (when each reached data-state=\"rendered\") and the page's own phases:", ""]
    for r in results:
        charts = ", ".join(f"{name} {_ms(at)}" for name, at in sorted(r["rendered"].items(), key=lambda kv: kv[1]))
        phases = ", ".join(f"{name.split(':', 1)[1]} {_ms(ms)}" for name, ms in r["measures"]) or "none marked"
        lines.append(f"- {r['inputs']:,} inputs: charts {charts}; phases {phases}")
        if r["errors"]:
            lines.append(f"  - console errors: {r['errors'][:3]}")
    traced = [r for r in results if "trace" in r]
    if traced:
        lines += ["", "Main-thread self time by trace event (ms, top 12):", ""]
        for r in traced:
            top = list(r["trace"].items())[:12]
            lines.append(f"- {r['inputs']:,} inputs: " + ", ".join(f"{name} {_ms(ms)}" for name, ms in top))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, nargs="+", default=[450, 4500])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "reports" / "report-load.md")
    parser.add_argument("--keep", type=Path, help="write the HTML reports into this folder and keep them")
    parser.add_argument("--trace", action="store_true", help="also record a Chromium trace and break down its time")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="fer-batch-report-load-") as scratch:
        folder = args.keep or Path(scratch)
        for n in args.inputs:
            batch = synthetic_batch(n)
            started = time.perf_counter()
            path = write_report(folder / f"report-{n}.html", **batch)
            render_s = time.perf_counter() - started
            result = measure(path, args.trace)
            result.update(inputs=n, mb=path.stat().st_size / 1e6, render_s=render_s)
            print(f"{n} inputs: {result['mb']:.1f} MB, DOMContentLoaded {_ms(result['dcl'])} ms, "
                  f"usable {_ms(result['lastLongTaskEnd'])} ms", flush=True)
            results.append(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(markdown(results), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
