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
               "processing": "processing", "memory": "done", "erred": "failed"}

RUN_COLOURS = {
    "pending": "#9ca3af",
    "running": "#2563eb",
    "finished": "#16a34a",
    "error": "#dc2626",
    "stopping": "#d97706",
    "cancelled": "#d97706",
}

#: Task-stream colours of the groups: map first, then each reduction level.
GROUP_PALETTE = ("#2563eb", "#9333ea", "#db2777", "#ea580c", "#0d9488", "#65a30d", "#4f46e5",
                 "#b45309")


def group_colour(position: int) -> str:
    return GROUP_PALETTE[position % len(GROUP_PALETTE)]
