"""Colours and words for verdicts, shared by every view."""

from __future__ import annotations

from dsp.reps import GLUTE_FIRST, LUMBAR_FIRST, SIMULTANEOUS, UNDETERMINED

VERDICT_COLOR = {
    GLUTE_FIRST: "#1b9e4b",  # green: the goal
    SIMULTANEOUS: "#e0a000",  # amber: neutral zone
    LUMBAR_FIRST: "#d7263d",  # red: the back led
    UNDETERMINED: "#7f8c8d",  # grey: the data cannot decide
}
VERDICT_TEXT = {
    GLUTE_FIRST: "GLUTE FIRST",
    SIMULTANEOUS: "SIMULTANEOUS",
    LUMBAR_FIRST: "LUMBAR FIRST",
    UNDETERMINED: "UNDETERMINED",
}
VERDICT_CUE = {
    GLUTE_FIRST: "Great — glutes led",
    SIMULTANEOUS: "Almost — squeeze the glutes first",
    LUMBAR_FIRST: "Lead with the glutes",
    UNDETERMINED: "No clear reading",
}
CHANNEL_COLORS = [
    "#e6194b",
    "#3cb44b",
    "#4363d8",
    "#f58231",
    "#911eb4",
    "#42d4f4",
    "#f032e6",
    "#9a6324",
    "#469990",
    "#808000",
    "#000075",
    "#a9a9a9",
    "#bfef45",
    "#fabed4",
    "#ffd8b1",
    "#dcbeff",
]
