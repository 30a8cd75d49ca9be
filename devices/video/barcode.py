"""A clip whose frames carry their own number, as a binary bar code of big black and white
blocks (it survives H.264 compression and scaling, where drawn digits would blur).

Used by the tests and ``bench/video_bench.py`` to check which frame a view shows.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

GRID = (4, 4)  # rows x columns of blocks: 16 bits (a 60 s clip at 30 fps needs 11)


def frame_image(number: int, width: int = 320, height: int = 240) -> NDArray[np.uint8]:
    """RGB image of ``number`` as bits, most significant first, row by row."""
    rows, cols = GRID
    img = np.zeros((height, width, 3), np.uint8)
    bh, bw = height // rows, width // cols
    for bit in range(rows * cols):
        if (number >> (rows * cols - 1 - bit)) & 1:
            r, c = divmod(bit, cols)
            img[r * bh : (r + 1) * bh, c * bw : (c + 1) * bw] = 255
    return img


def read_number(img: NDArray[np.uint8]) -> int:
    """The number drawn by :func:`frame_image` in ``img`` (any size: block centres)."""
    rows, cols = GRID
    h, w = img.shape[:2]
    grey = img[..., :3].mean(axis=2) if img.ndim == 3 else img
    value = 0
    for bit in range(rows * cols):
        r, c = divmod(bit, cols)
        y, x = int((r + 0.5) * h / rows), int((c + 0.5) * w / cols)
        patch = grey[
            max(0, y - h // (4 * rows)) : y + h // (4 * rows) + 1,
            max(0, x - w // (4 * cols)) : x + w // (4 * cols) + 1,
        ]
        value = (value << 1) | int(patch.mean() > 127)
    return value


def write_clip(
    path: str | Path, seconds: float, fps: int = 30, width: int = 320, height: int = 240
) -> int:
    """Write an H.264 MP4 of ``seconds`` at ``fps`` (frame k at k/fps s); the frame count."""
    import av

    n = round(seconds * fps)
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, fps)
        stream.options = {"preset": "ultrafast", "g": str(2 * fps)}
        for k in range(n):
            frame = av.VideoFrame.from_ndarray(frame_image(k, width, height), format="rgb24")
            frame.pts = k
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return n
