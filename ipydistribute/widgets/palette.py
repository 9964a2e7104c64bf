"""One palette for every view: task states, run states and task groups."""

from __future__ import annotations

#: Colour of each task state, the same in the group bars, the graph and the static picture.
STATE_COLOURS = {
    "released": "#e5e7eb",  # not yet submitted, or cancelled
    "waiting": "#cbd5e1",
    "queued": "#fbbf24",
    "processing": "#3b82f6",
    "memory": "#16a34a",
    "erred": "#dc2626",
}

#: Words shown for the states.
STATE_WORDS = {"released": "not started", "waiting": "waiting", "queued": "queued",
               "processing": "on a worker", "memory": "done", "erred": "failed"}
# ("processing" is Dask's state of a task sent to a worker: running, or queued there behind
# others; "4 running" on 2 one-thread workers read as a bug.)

RUN_COLOURS = {
    "pending": "#9ca3af",
    "running": "#2563eb",
    "finished": "#16a34a",
    "error": "#dc2626",
    "stopping": "#d97706",
    "cancelled": "#d97706",
}

#: Colours of the task groups (map first, then each reduction level): the swatch of a group's
#: progress bar, the outline of its graph nodes and its bars in the task stream. None of them is
#: a state colour (blue was both "processing" and "map").
GROUP_PALETTE = ("#7c3aed", "#0d9488", "#db2777", "#a16207", "#4338ca", "#be185d", "#0e7490",
                 "#57534e")
GROUP_EDGE = "#374151"
TEXT_COLOUR = "#111827"


def group_colour(position: int) -> str:
    return GROUP_PALETTE[position % len(GROUP_PALETTE)]
