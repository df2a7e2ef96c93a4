"""`Producer`: a worker thread feeding a bounded queue, stopped on demand, errors handed over.

Two places run a stage ahead of its consumer this way: the decode prefetch of
`faces.video.FrameReader` and the face stage of `inference.Engine.run` (`_ThreadedRun`). Both
need the same mechanics, which are easy to get subtly wrong: a `put` that gives up when the
consumer has stopped (never blocking forever on a full queue), an `END` marker after the last
item, an exception in the worker kept for the consumer to raise, and a `get` that returns `END`
once the worker is gone and the queue is empty (never blocking forever on a dead worker).

`realtime_lib.LiveSource` does not use it: a live source keeps only the NEWEST frame in a
one-item slot and drops the older one (or, for a file without pacing, waits for the slot to
empty), which a FIFO queue does not express.
"""

from __future__ import annotations

import queue
import threading
from typing import Iterable, Optional

END = object()  # What `get` returns after the last item.
_POLL_S = 0.1  # How often a blocked put / get looks at the stop event and the worker.


class Producer:
    """A daemon thread putting the items of `items` into a queue of at most `maxsize`.

    Args:
      items: iterated in the worker thread (a generator, a reader ...). It should not hold the
        consumer object itself, so that a consumer dropped without `stop()` can still be
        garbage-collected (and stop the worker from its `__del__`).
      maxsize: the queue's bound (how far the worker may run ahead).
      name: the thread's name.
    """

    def __init__(self, items: Iterable, maxsize: int, name: str):
        self.queue: queue.Queue = queue.Queue(maxsize=int(maxsize))
        self.stopped = threading.Event()
        self.error: Optional[BaseException] = None
        self.thread = threading.Thread(target=self._work, args=(items,), daemon=True,
                                       name=name)

    def start(self) -> "Producer":
        self.thread.start()
        return self

    def put(self, item) -> bool:
        """Waits for room in the queue; False (item dropped) once `stop()` was called."""
        while not self.stopped.is_set():
            try:
                self.queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _work(self, items: Iterable) -> None:
        try:
            for item in items:
                if self.stopped.is_set() or not self.put(item):
                    return
        except BaseException as e:  # noqa: BLE001 - handed to the consumer thread.
            self.error = e
        finally:
            self.put(END)

    def get(self, block: bool = True):
        """The next item; `END` when the worker has ended (or was stopped) and the queue is
        empty; with `block=False`, None when nothing is ready yet."""
        while True:
            try:
                return self.queue.get(timeout=_POLL_S) if block else self.queue.get_nowait()
            except queue.Empty:
                if not block:
                    return None
                if self.stopped.is_set() or not self.thread.is_alive():
                    try:
                        return self.queue.get_nowait()
                    except queue.Empty:
                        return END

    def stop(self, timeout: float) -> None:
        """Asks the worker to stop and waits up to `timeout` seconds for it."""
        self.stopped.set()
        if self.thread.is_alive():
            self.thread.join(timeout=timeout)
