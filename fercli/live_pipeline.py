"""The pipelined engine of ``fercli live``: decode, detect/track, CNN and GRU each in
a thread of its own, so a frame's CNN runs while the next frame is tracked and
the one after is decoded (thesis 4.2.7 / Figure 4.3 asks for a real-time system;
on a 2-core CPU one thread leaves the second core idle).

Threads, not processes: OpenCV (decoding, optical flow, warps) and onnxruntime
(the CNN and GRU halves) release the GIL while they compute, eager PyTorch does
within its kernels; dlib's landmark predictor and HOG detector hold it (measured:
a sleeping thread wakes up late by a whole predictor call, not by an onnxruntime
run).  So the tracker, the one stage that holds the GIL, overlaps with the
others, and no frame or model is copied between processes.

Each stage is one thread running the one-thread engine's own step
(:meth:`fercli.live.LiveSession.track`, ``infer``, ``label``) on frames in
order, joined by bounded FIFO queues: the same steps on the same frames in the
same order give exactly the one-thread engine's labels, JSON lines and CSV rows.
The queues hold at most ``queue_size`` frames each, so at most a handful of
frames are in flight and the latency stays a few frames' work.

A file or a folder waits when the pipeline is full (nothing is dropped); a live
source (a camera, ``Source.live``) never does: when the first queue is full
the oldest waiting frame is dropped for the newest, counted in
:attr:`fercli.live.Timings.dropped` and in each window's ``dropped``.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator, Optional

import numpy as np

#: Frames each queue between two stages holds.  One is enough to keep every stage
#: busy; two doubled the latency on a file (every queue full) and gained no
#: throughput (measured on the 2-core development machine, docs/live.md).
QUEUE_SIZE = 1
#: How often a thread blocked on a queue looks whether the run was stopped (seconds).
_POLL = 0.05


@dataclass
class _Frame:
    """One frame on its way through the stages."""

    frame: np.ndarray                 # BGR, as the source gave it
    time: float                       # stream time (index / fps, or wall clock for a live source)
    read_at: float                    # perf_counter when the source returned it
    decode: float                     # seconds the source took to give it
    dropped: int = 0                  # frames dropped at capture just before this one
    rgb: Optional[np.ndarray] = None
    states: list = field(default_factory=list)
    found: list = field(default_factory=list)
    seconds: dict = field(default_factory=dict)
    result: object = None             # the FrameResult, from the last stage on


class _End:
    """The end of the stream, passed down the stages after the last frame."""


class _Run:
    """The queues, the stop flag and the first error of one pipelined run."""

    def __init__(self, queue_size: int):
        self.queues = [queue.Queue(maxsize=queue_size) for _ in range(4)]
        self.stop = threading.Event()
        self.error: Optional[BaseException] = None
        self.dropped = 0

    def fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        self.stop.set()

    def put(self, q: queue.Queue, item) -> bool:
        """Wait for room (False when the run was stopped meanwhile)."""
        while not self.stop.is_set():
            try:
                q.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def get(self, q: queue.Queue):
        """The next item, or None when the run was stopped."""
        while not self.stop.is_set():
            try:
                return q.get(timeout=_POLL)
            except queue.Empty:
                continue
        return None

    def put_newest(self, q: queue.Queue, item) -> None:
        """A live source's frame: never waits; when the queue is full the oldest
        waiting frame makes room (dropped, counted)."""
        while True:
            try:
                q.put_nowait(item)
                return
            except queue.Full:
                try:
                    old = q.get_nowait()
                except queue.Empty:
                    continue  # the next stage took it meanwhile: there is room now
                # ``old`` never reaches the label stage: its count travels on with ``item``.
                self.dropped += 1
                item.dropped += 1 + old.dropped


def _thread(run: _Run, target, *args) -> threading.Thread:
    def body():
        try:
            target(run, *args)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            run.fail(exc)

    t = threading.Thread(target=body, name=f"fercli-live-{target.__name__.strip('_')}", daemon=True)
    t.start()
    return t


def _capture(run: _Run, source, max_frames: Optional[int], realtime_clock: bool, start: float) -> None:
    out = run.queues[0]
    live = bool(getattr(source, "live", False))
    accepted = 0
    try:
        while (max_frames is None or accepted < max_frames) and not run.stop.is_set():
            source.wait()
            t0 = time.perf_counter()
            frame = source.read()
            t1 = time.perf_counter()
            if frame is None:
                break
            item = _Frame(frame, (t1 - start) if realtime_clock else accepted / source.fps, t1, t1 - t0)
            if live:
                run.put_newest(out, item)
            elif not run.put(out, item):
                return
            accepted += 1
    finally:
        source.close()
    run.put(out, _End())


def _stage(run: _Run, step, inbox: queue.Queue, outbox: queue.Queue) -> None:
    """Apply ``step`` to each frame in order, passing the end on."""
    while True:
        item = run.get(inbox)
        if item is None:
            return
        if not isinstance(item, _End):
            step(item)
        if not run.put(outbox, item) or isinstance(item, _End):
            return


def run_pipelined(session, source, timings, max_frames: Optional[int] = None, realtime_clock: bool = False,
                  queue_size: int = QUEUE_SIZE) -> Iterator:
    """What :func:`fercli.live.run` yields, from the four-stage pipeline (module notes)."""
    from fercli.live import FrameResult

    clock = time.perf_counter
    run = _Run(queue_size)
    last = {"time": 0.0}
    live = bool(getattr(source, "live", False))
    pending_drops = [0]

    def detect(item: _Frame) -> None:
        t0 = clock()
        item.rgb, item.states = session.track(item.frame)
        item.seconds["detect"] = clock() - t0

    def cnn(item: _Frame) -> None:
        t0 = clock()
        item.found = session.infer(item.rgb, item.states)
        item.rgb = None
        item.seconds["cnn"] = clock() - t0

    def gru(item: _Frame) -> None:
        item.result = session.label(item.found, item.time, item.seconds)
        last["time"] = item.time
        if live:
            pending_drops[0] += item.dropped
            for window in item.result.windows:
                window.dropped = pending_drops[0]
            if item.result.windows:
                pending_drops[0] = 0

    start = clock()
    q = run.queues
    threads = [_thread(run, _capture, source, max_frames, realtime_clock, start),
               _thread(run, _stage, detect, q[0], q[1]), _thread(run, _stage, cnn, q[1], q[2]), _thread(run, _stage, gru, q[2], q[3])]
    try:
        while True:
            item = run.get(q[3])
            if item is None:
                if run.error is not None:
                    raise run.error
                return
            if isinstance(item, _End):
                break
            result = item.result
            result.frame = item.frame
            timings.add(item.decode, result, latency=item.decode + clock() - item.read_at)
            timings.windows += len(result.windows)
            yield result
        windows = session.flush(last["time"])
        if windows:
            if live:
                for window in windows:
                    window.dropped = pending_drops[0]
            timings.windows += len(windows)
            yield FrameResult(windows[0].end, last["time"], False, None, None, windows[0], windows=windows)
    finally:
        run.stop.set()
        # The stages look at the stop flag at least every _POLL seconds; only a camera's
        # read may hang (a device gone): that thread is a daemon and is left behind.
        for t in threads:
            t.join(timeout=2.0 if live and t is threads[0] else None)
        timings.dropped += run.dropped
        timings.wall = clock() - start
