"""A widget's pixels as a numpy array, for tests that compare what is painted."""

from __future__ import annotations

import numpy as np
from PyQt6 import QtGui, QtWidgets


def pixels(view: QtWidgets.QWidget) -> np.ndarray:
    """The widget as painted now, RGB rows (height, width, 3), a copy."""
    img = view.grab().toImage().convertToFormat(QtGui.QImage.Format.Format_RGB888)
    ptr = img.constBits()
    ptr.setsize(img.sizeInBytes())
    rows = np.frombuffer(ptr, np.uint8).reshape(img.height(), img.bytesPerLine())
    return rows[:, : 3 * img.width()].reshape(img.height(), img.width(), 3).copy()
