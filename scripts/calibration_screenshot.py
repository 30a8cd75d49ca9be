"""Run a whole calibration in the real window on the simulator and screenshot its summary page.

Run under a real X server at the smallest screen we support, e.g.::

    Xvfb :81 -screen 0 1366x768x24 & DISPLAY=:81 openbox &
    DISPLAY=:81 python scripts/calibration_screenshot.py --out docs/calibration.png

The wizard is driven through its buttons as a user would (Calibrate..., Next, Start, a
sub-maximal reference, the athlete's name), on the threaded real-time simulator; the image is
the X screen as the user sees it. Settings go to a throw-away organisation name.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("calibration_screenshot")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="docs/calibration.png")
    ap.add_argument("--athlete", default="Lena K")
    ap.add_argument("--steps", default="", help="also save every step's screen in this folder")
    ap.add_argument("--after", default="", help="then press Finish and save the window here")
    ap.add_argument("--timeout", type=float, default=90.0, help="give up after this many s")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)

    from PyQt6 import QtCore, QtWidgets
    from PyQt6.QtTest import QTest

    app = QtWidgets.QApplication(sys.argv[:1])
    app.setOrganizationName("fireorder-screenshot")  # keep the user's settings untouched
    app.setApplicationName("fireorder-screenshot")
    from app.calibration import CalibrationWizard, Phase
    from app.main_window import MainWindow
    from app.settings_store import SettingsStore

    store = SettingsStore()
    store.restore_defaults()
    win = MainWindow(store)
    win.source_panel.athlete.setText("")  # a new user: no name entered yet
    win.showMaximized()
    left = QtCore.Qt.MouseButton.LeftButton
    status = {"code": 1}

    def wizard() -> CalibrationWizard:
        wiz = win.findChild(CalibrationWizard)
        assert wiz is not None
        return wiz

    def press(which: QtWidgets.QWizard.WizardButton) -> None:
        button = wizard().button(which)
        assert button is not None
        QTest.mouseClick(button, left)

    nxt = QtWidgets.QWizard.WizardButton.NextButton

    def open_wizard() -> None:
        win.act_calibrate.trigger()
        wiz = wizard()
        wiz.countdown_s = 1
        press(nxt)

    def start(prefix: str) -> Callable[[], None]:
        def go() -> None:
            button = wizard().findChild(QtWidgets.QPushButton, f"{prefix}_start")
            assert button is not None
            QTest.mouseClick(button, left)

        return go

    def done(page: str) -> Callable[[], bool]:
        def check() -> bool:
            wiz = wizard()
            p = wiz.rest_page if page == "rest" else wiz.ref_pages[page]
            if p.phase in (Phase.REJECTED, Phase.FAILED):
                raise RuntimeError(f"{page}: {p.result_label.text()}")
            return p.phase == Phase.DONE

        return check

    def submax() -> None:
        button = wizard().findChild(QtWidgets.QRadioButton, "reference_submax")
        assert button is not None
        button.setChecked(True)
        press(nxt)

    def name() -> None:
        edit = wizard().findChild(QtWidgets.QLineEdit, "athlete_name")
        assert edit is not None
        QTest.keyClicks(edit, args.athlete)

    def shoot() -> None:
        screen = app.primaryScreen()
        assert screen is not None
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        pix = screen.grabWindow(0)  # the whole X screen, as the user sees it
        pix.save(str(out))
        wiz = wizard()
        log.info(
            "saved %s (%dx%d); wizard %dx%d",
            out,
            pix.width(),
            pix.height(),
            wiz.width(),
            wiz.height(),
        )
        log.info("summary:\n%s", wiz.summary_text())
        status["code"] = 0

    # (wait until, then do): each step waits for its condition, polled every 100 ms
    steps: list[tuple[Callable[[], bool], Callable[[], None]]] = [
        (lambda: win.session is not None and win.session.stats.samples > 6000, open_wizard),
        (lambda: True, lambda: None),
        (lambda: True, start("rest")),
        (done("rest"), lambda: press(nxt)),
        (lambda: True, submax),
        (lambda: True, start("ref_glute")),
        (done("glute"), lambda: press(nxt)),
        (lambda: True, start("ref_lumbar")),
        (done("lumbar"), lambda: press(nxt)),
        (lambda: True, name),
        (lambda: True, shoot),
    ]
    if args.after:

        def after() -> None:
            screen = app.primaryScreen()
            assert screen is not None
            screen.grabWindow(0).save(args.after)
            log.info("saved %s; badge: %s", args.after, win.calibration_badge.label.text())

        steps += [(lambda: True, lambda: press(QtWidgets.QWizard.WizardButton.FinishButton))]
        steps += [(lambda: True, after)]
    timer = QtCore.QTimer()
    timer.setInterval(100)
    ticks = {"n": 0, "settle": 0, "shot": 0}

    def step() -> None:
        ticks["n"] += 1
        if ticks["n"] * 0.1 > args.timeout:
            log.error("timed out at step %d", len(steps))
            app.quit()
            return
        if ticks["settle"] > 0:  # let the page draw (and the source relax) between steps
            ticks["settle"] -= 1
            if ticks["settle"] == 0 and args.steps:
                folder = Path(args.steps)
                folder.mkdir(parents=True, exist_ok=True)
                screen = app.primaryScreen()
                assert screen is not None
                screen.grabWindow(0).save(str(folder / f"step{ticks['shot']:02d}.png"))
                ticks["shot"] += 1
            return
        if not steps:
            app.quit()
            return
        try:
            ready, action = steps[0]
            if ready():
                steps.pop(0)
                action()
                ticks["settle"] = 10
        except Exception:
            log.exception("calibration screenshot failed")
            app.quit()

    timer.timeout.connect(step)
    timer.start()
    app.exec()
    win.close()
    return status["code"]


if __name__ == "__main__":
    raise SystemExit(main())
