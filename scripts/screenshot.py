"""Open the real window on the simulator, stream for N seconds, save a screenshot.

Run under a real X server (``make screenshot`` uses Xvfb): the image is what a user sees,
grabbed from the screen, not rendered offscreen.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger("screenshot")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=14.0)
    ap.add_argument("--out", default="docs/screenshot.png")
    ap.add_argument("--athlete", default="", help="also save the athlete view to this file")
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
    win = MainWindow(store)
    win.resize(1600, 980)
    win.show()

    def shoot() -> None:
        screen = app.primaryScreen()
        assert screen is not None
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        pix = screen.grabWindow(0)  # the whole X screen, as the user sees it
        pix.save(str(out))
        log.info(
            "saved %s (%dx%d), %d reps shown", out, pix.width(), pix.height(), len(win.tally.reps)
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

    QtCore.QTimer.singleShot(int(args.seconds * 1000), shoot)
    code = app.exec()
    win.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
