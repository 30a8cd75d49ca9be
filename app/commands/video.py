"""``fireorder video REC``: the video kept with a recording -- show it, attach a clip (a phone
recording) with its offset, change the offset, or detach it. The window's Replay ▸ Attach
video… / Sync here / Detach do the same; both keep the entry where the review keeps its notes
(the recording's sidecar, or the data folder for shipped and read-only recordings)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from app.cli import CliError


def _offset(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or abs(value) > 86_400:
        raise argparse.ArgumentTypeError(f"offset {text} s is out of range: give -86400 to 86400")
    return value


def register(sub: Any) -> None:
    p = sub.add_parser(
        "video",
        help="show, attach or detach the video of a recording",
        description="The video kept with a recording. Without options: what is attached. "
        "--attach CLIP keeps CLIP with the recording (video time = EMG time + --offset); "
        "--offset alone moves the offset of the attached video; --detach forgets it (the "
        "video file itself is never touched).",
    )
    p.add_argument("recording", help="a recording (BDF+/EDF+ or any file fireorder reads)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--attach", metavar="CLIP", help="the video file to attach")
    what.add_argument("--detach", action="store_true", help="forget the attached video")
    p.add_argument(
        "--offset",
        type=_offset,
        metavar="S",
        help="seconds: video time = EMG time + S (a clip started 2.5 s before the EMG: 2.5)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def _describe(entry: Any, recording: str) -> dict[str, Any]:
    from devices.video.reader import VideoError, VideoReader

    path = entry.resolve(recording)
    out: dict[str, Any] = {
        "video": str(path),
        "kind": entry.kind,
        "offset_s": entry.offset_s,
        "readable": False,
    }
    if not path.is_file():
        out["problem"] = "file not found"
        return out
    try:
        reader = VideoReader(path)
    except VideoError as exc:
        out["problem"] = str(exc)
        return out
    try:
        out.update(readable=True, frames=reader.n_frames, duration_s=round(reader.duration_s, 3))
    finally:
        reader.close()
    return out


def run(args: argparse.Namespace) -> int:
    from devices.files.sidecar import ReviewStore, VideoEntry
    from devices.video.reader import VideoError, VideoReader

    rec = str(args.recording)
    if not Path(rec).is_file():
        raise CliError(f"{rec}: no such recording")
    store = ReviewStore(rec)
    entry = store.video()
    if args.attach is not None:
        clip = Path(args.attach)
        if not clip.is_file():
            raise CliError(f"{clip}: no such video file")
        try:  # refuse what the review could not play, before it is kept
            VideoReader(clip).close()
        except VideoError as exc:
            raise CliError(f"not a readable video: {exc}") from None
        entry = VideoEntry(VideoEntry.relative(clip, rec), "attached", args.offset or 0.0)
        where = store.set_video(entry)
    elif args.detach:
        if entry is None:
            raise CliError(f"{rec} has no video attached")
        where = store.set_video(None)
        entry = None
    elif args.offset is not None:
        if entry is None:
            raise CliError(f"{rec} has no video attached: give --attach CLIP")
        from dataclasses import replace

        entry = replace(entry, offset_s=args.offset, when="")
        where = store.set_video(entry)
    else:
        where = None
    info = None if entry is None else _describe(entry, rec)
    if args.json:
        print(json.dumps({"recording": rec, **(info or {"video": None}), "kept_in": str(where)}))
        return 0
    if info is None:
        print(f"{rec}: no video" + (" (detached)" if args.detach else ""))
        return 0
    line = f"{rec}: video {info['video']} ({info['kind']}), offset {info['offset_s']:+.3f} s"
    if info["readable"]:
        line += f", {info['frames']} frames, {info['duration_s']:.1f} s"
    else:
        line += f" -- {info['problem']}"
    print(line)
    if where is not None:
        print(f"kept in {where}")
    return 0
