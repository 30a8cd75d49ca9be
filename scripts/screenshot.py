"""Open the real window on the simulator, stream for N seconds, save a screenshot.

Run under a real X server (``make screenshot`` uses Xvfb): the image is what a user sees,
grabbed from the screen, not rendered offscreen.

``--size WxH`` opens the window at that size (``max``: maximised; ``auto``: the size the app
opens at by itself, maximised on a small screen). ``--record``, ``--raw`` and ``--pause``
switch those states on through the window's own actions, so the state strip shows REC, RAW
and PAUSED. docs/state-1366.png was made under Xvfb at 1366x768 with openbox running:
``python scripts/screenshot.py --size auto --record --raw --pause --out docs/state-1366.png``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

log = logging.getLogger("screenshot")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=14.0)
    ap.add_argument("--out", default="docs/screenshot.png")
    ap.add_argument("--athlete", default="", help="also save the athlete view to this file")
    ap.add_argument("--size", default="1600x980", help="window size: WxH, max or auto")
    ap.add_argument("--record", action="store_true", help="record (to a temporary folder)")
    ap.add_argument("--raw", action="store_true", help="show the raw signal")
    ap.add_argument("--pause", action="store_true", help="pause scrolling just before the shot")
    ap.add_argument("--replay", default="", help="replay this recording instead (review)")
    ap.add_argument(
        "--select-rep",
        type=int,
        default=0,
        help="replay: pause, press → this many times (select a rep), ] (an onset handle)",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)

    from PyQt6 import QtCore, QtWidgets

    app = QtWidgets.QApplication(sys.argv[:1])
    app.setOrganizationName("fireorder-screenshot")  # keep the user's settings untouched
    app.setApplicationName("fireorder-screenshot")
    from app.main_window import MainWindow
    from app.settings_store import SettingsStore

    store = SettingsStore()
    store.restore_defaults()
    scratch = tempfile.TemporaryDirectory(prefix="fireorder-shot-")  # a recording goes here
    if args.replay:  # a copy: a review made for the picture never touches the original
        import shutil

        copy = Path(scratch.name) / Path(args.replay).name
        shutil.copy(args.replay, copy)
        side = Path(args.replay + ".json")
        if side.exists():
            shutil.copy(side, str(copy) + ".json")
        from app.source_panel import SourceChoice

        source = SourceChoice("file", {"path": str(copy), "speed": 1.0})
        win = MainWindow(store, source=source, recordings_dir=scratch.name)
    else:
        win = MainWindow(store, recordings_dir=scratch.name)
    if args.size == "max":
        win.showMaximized()
    elif args.size == "auto":
        win.show()
    else:
        w, h = (int(v) for v in args.size.lower().split("x"))
        win.resize(w, h)
        win.show()
    if args.record:
        QtCore.QTimer.singleShot(1000, win.act_record.trigger)
    if args.raw:
        win.act_raw.trigger()

    def before_shot() -> None:
        if args.pause or args.select_rep:  # the frozen picture of the last seconds
            win.act_pause.trigger()
        for _ in range(args.select_rep):
            win.review.act_next.trigger()
        if args.select_rep:
            win.review.act_onset_next.trigger()
        # a moment to paint what changed (a loaded machine may be slow to repaint)
        QtCore.QTimer.singleShot(500, shoot)

    def shoot() -> None:
        QtWidgets.QApplication.processEvents()
        screen = app.primaryScreen()
        assert screen is not None
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        pix = screen.grabWindow(0)  # the whole X screen, as the user sees it
        pix.save(str(out))
        log.info(
            "saved %s (%dx%d), %d reps shown, window %dx%d",
            out,
            pix.width(),
            pix.height(),
            len(win.tally.reps),
            win.width(),
            win.height(),
        )
        if args.athlete:
            win.toggle_athlete_view()
            QtCore.QTimer.singleShot(800, shoot_athlete)
        else:
            app.quit()

    def shoot_athlete() -> None:
        screen = app.primaryScreen()
        assert screen is not None
        screen.grabWindow(0).save(args.athlete)
        log.info("saved %s", args.athlete)
        app.quit()

    QtCore.QTimer.singleShot(max(0, int(args.seconds * 1000) - 500), before_shot)
    code = app.exec()
    win.close()
    scratch.cleanup()
    return code


if __name__ == "__main__":
    sys.exit(main())
