"""A cap on how many long jobs ("train live") may wait in Gradio's queue, counted by the app."""

from __future__ import annotations

import threading
import time

# Long jobs (a live training runs for seconds to minutes) get their own concurrency group and a cap on how many
# may wait: Gradio's queue limit is app-wide, so without it 64 queued trainings would lock every visitor out.
TRAIN_GROUP = "train-live"
TRAIN_CONCURRENCY = 1  # trainings run at once
TRAIN_QUEUE = 8  # trainings that may wait
BUSY = "busy: {n} live trainings are already waiting; try again in a minute (the other tabs answer meanwhile)"


class Waiting:
    """Long jobs admitted to Gradio's queue and not started yet, counted here: Gradio 6's only queue limit
    (``queue(max_size=...)``) is app-wide, with no public per-event one, so the surplus is refused before it is
    queued, by the event's validator (which Gradio runs when a request arrives, before queueing it).

    A ticket is taken when a request is admitted and given back when a job starts (the oldest: one concurrency
    group runs its events in order), when the visitor's session ends (the page's unload, for an event Gradio
    drops from its queue when the tab closes), or ``abandon_after_s`` after admission (an API client that
    went away: its event left Gradio's queue without telling anyone)."""

    def __init__(self, limit: int, abandon_after_s: float = 600) -> None:
        self.limit, self.abandon_after_s = limit, abandon_after_s
        self._tickets: list[tuple[float, str | None]] = []  # (admitted at, session), oldest first
        self._lock = threading.Lock()

    def admit(self, session: str | None = None) -> int | None:
        """Take a ticket: None when admitted, else how many already wait."""
        with self._lock:
            cutoff = time.monotonic() - self.abandon_after_s
            self._tickets = [t for t in self._tickets if t[0] >= cutoff]
            if len(self._tickets) >= self.limit:
                return len(self._tickets)
            self._tickets.append((time.monotonic(), session))
            return None

    def started(self) -> None:
        with self._lock:
            if self._tickets:
                self._tickets.pop(0)

    def forget(self, session: str | None) -> None:
        if session is not None:
            with self._lock:
                self._tickets = [t for t in self._tickets if t[1] != session]

    def __len__(self) -> int:
        return len(self._tickets)
