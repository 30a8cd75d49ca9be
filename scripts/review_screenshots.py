"""Screenshots of the review features: the Sessions tab's progress view and a session report
that carries a review (a corrected rep, a note), rendered to PNG.

Run under a real X server (``xvfb-run -a -s "-screen 0 1600x1000x24" python
scripts/review_screenshots.py``): the progress view is grabbed from the screen. A history
of one athlete is made in a temporary folder from the shipped demo recordings (copied, with
their sidecars given an athlete and dates); nothing in the checkout but the two PNGs is
written.

The report is rendered with headless Chromium when it is installed (what a coach's browser
shows), else with Qt's rich-text engine (QTextDocument: the same content and plots, simpler
CSS: the summary cards stack instead of sitting in a row).
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
GOOD = ROOT / "recordings" / "demo_glute_first.bdf"
BAD = ROOT / "recordings" / "demo_lumbar_first.bdf"

log = logging.getLogger("review_screenshots")

# (source, name, date, exercise): Ana learns to lead with the glutes over five weeks
HISTORY = [
    (BAD, "ana_w1", "2026-03-02T10:00:00+00:00", "hinge"),
    (BAD, "ana_w2", "2026-03-09T10:00:00+00:00", "hinge"),
    (GOOD, "ana_w3", "2026-03-16T10:00:00+00:00", "hinge"),
    (GOOD, "ana_w4", "2026-03-23T10:00:00+00:00", "hinge"),
    (GOOD, "ana_w5", "2026-03-30T10:00:00+00:00", "hinge"),
    (BAD, "ana_thrust1", "2026-03-04T10:00:00+00:00", "hip_thrust"),
    (GOOD, "ana_thrust2", "2026-03-25T10:00:00+00:00", "hip_thrust"),
]


def make_history(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for src, name, when, exercise in HISTORY:
        bdf = folder / f"{name}.bdf"
        shutil.copy(src, bdf)
        doc = json.loads(src.with_name(src.name + ".json").read_text())
        doc["meta"].update(athlete="Ana", session=name, exercise=exercise)
        doc["created"] = when
        bdf.with_name(bdf.name + ".json").write_text(json.dumps(doc))
        made.append(bdf)
    return made


def review(bdf: Path) -> None:
    """A correction and two notes through the real session controller (as in review)."""
    from devices.drivers.file_replay import FileSource
    from devices.session.controller import SessionController
    from dsp.contract import Role
    from dsp.reps import GLUTE_FIRST

    ctl = SessionController(FileSource(str(bdf), speed=None))
    ctl.open()
    ctl.start(threaded=False)
    ctl.pump(40.0)
    reps = [r for r in ctl.tally.reps if r.order == GLUTE_FIRST and r.lag_ms is not None]
    rep = reps[3]
    first = min(i for r, i in rep.onsets.items() if r.is_glute and i is not None)
    ctl.correct(rep, Role.LUMBAR_L, first - 120)
    ctl.note("hips shot up: lumbar led", index=first + 200)
    ctl.note("cue: squeeze before the lift", index=reps[7].start + 400)
    ctl.close()


class _Doc:
    """QTextDocument that shows the report's inline (data:) images."""

    @staticmethod
    def make(html: str, width: int):  # type: ignore[no-untyped-def]
        from PyQt6 import QtCore, QtGui

        class Doc(QtGui.QTextDocument):
            def loadResource(self, kind: int, url: QtCore.QUrl) -> object:  # noqa: N802
                text = url.toString()
                if text.startswith("data:image/png;base64,"):
                    img = QtGui.QImage()
                    img.loadFromData(base64.b64decode(text.split(",", 1)[1]), "PNG")
                    if img.width() > width - 40:  # max-width:100%, as the CSS asks
                        img = img.scaledToWidth(
                            width - 40, QtCore.Qt.TransformationMode.SmoothTransformation
                        )
                    return img
                return super().loadResource(kind, url)

        doc = Doc()
        doc.setDocumentMargin(20)
        doc.setTextWidth(width)
        doc.setHtml(html)
        return doc


def render_report(html_path: Path, out: Path, width: int, height: int) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium:
        subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--hide-scrollbars",
                f"--screenshot={out}",
                f"--window-size={width},{height}",
                html_path.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        return
    from PyQt6 import QtCore, QtGui

    doc = _Doc.make(html_path.read_text(encoding="utf-8"), width)
    full = int(doc.size().height())
    img = QtGui.QImage(width, min(full, height), QtGui.QImage.Format.Format_RGB32)
    img.fill(QtGui.QColor("white"))
    painter = QtGui.QPainter(img)
    painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
    doc.drawContents(painter, QtCore.QRectF(0, 0, width, min(full, height)))
    painter.end()
    img.save(str(out))
    log.info("report rendered with QTextDocument: %d of %d px shown", min(full, height), full)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--progress", default="docs/progress.png")
    ap.add_argument("--report", default="docs/report.png")
    ap.add_argument("--report-html", default="", help="also keep the report's HTML here")
    ap.add_argument("--width", type=int, default=1100)
    ap.add_argument("--height", type=int, default=3900, help="report: the page's top, px")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    work = Path(tempfile.mkdtemp(prefix="fireorder-shots-"))
    os.environ["FIREORDER_DATA_DIR"] = str(work / "data")  # reviews and caches stay here

    from PyQt6 import QtCore, QtWidgets

    app = QtWidgets.QApplication(sys.argv[:1])
    folder = work / "recordings"
    made = make_history(folder)
    reviewed = made[2]
    review(reviewed)

    from app.cli import main as cli

    html = work / "report.html"
    if (
        cli(
            [
                "report",
                str(reviewed),
                "--athlete",
                "Ana",
                "--session",
                "week 3",
                "--date",
                "2026-03-16",
                "--out",
                str(html),
            ]
        )
        != 0
    ):
        return 1
    render_report(html, Path(args.report), args.width, args.height)
    if args.report_html:
        shutil.copy(html, args.report_html)

    from app.session_browser import SessionBrowser

    browser = SessionBrowser(folder, examples=None)
    browser.setWindowTitle("fireorder — Sessions: progress")
    browser.resize(1200, 720)
    browser.show()
    browser.tabs.setCurrentIndex(1)
    view = browser.progress
    view.athlete.setCurrentText("Ana")
    deadline = QtCore.QDeadlineTimer(120000)
    while view.busy and not deadline.hasExpired():
        app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
    view.exercise.setCurrentText("hinge")
    for _ in range(30):  # let the plots lay out and paint
        app.processEvents()
        QtCore.QThread.msleep(20)
    screen = browser.screen()
    shot = (
        screen.grabWindow(int(browser.winId()))
        if screen is not None and os.environ.get("DISPLAY")
        else browser.grab()
    )
    if shot.isNull() or shot.width() < 100:
        shot = browser.grab()  # the offscreen platform has no screen to grab from
    shot.save(args.progress)
    log.info("wrote %s (%dx%d) and %s", args.progress, shot.width(), shot.height(), args.report)
    browser.close()
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
