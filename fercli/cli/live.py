"""`fercli live`: the real-time system of thesis Figure 4.3 (camera, video file or image folder)."""

from __future__ import annotations

import json
import sys
from typing import Optional

import typer

from fercli import artifacts
from fercli.cli.app import app
from fercli.cli.common import FILE, err, examples, input_option, number_opt, output_option
from fercli.cli.tracker_options import with_tracker_options
from fercli.errors import FercliError


@app.command(help="Recognise expressions live: face per frame, CNN probabilities per frame, a GRU label every WINDOW frames.",
             epilog=examples("fercli live model.h5 --source talk.mp4 --headless > labels.jsonl"))
@with_tracker_options
def live(
    model: str = typer.Argument(..., help="A 'model' artifact: cnn-gru (CNN per frame + GRU per window) or a frame model."),
    source: str = input_option("0", "--source", help="Camera index, video file, or folder of images."),
    headless: bool = typer.Option(False, "--headless", help="No window: one JSON line per window on standard output."),
    record: Optional[str] = output_option(None, "--record", writes=FILE, help="Write the overlay video to this .mp4 (written atomically at the end)."),
    window: int = number_opt(5, "--window", help="Frames per GRU label (thesis Fig 4.3: 5).", min=1, max=10_000),
    aligned: bool = typer.Option(False, "--aligned/--unaligned", help="Register faces with landmarks (like training data) or crop the detector box (default, as 4.3.4 tests)."),
    max_frames: Optional[int] = number_opt(None, "--max-frames", help="Stop after this many frames.", min=1),
    threads: int = number_opt(1, "--threads", help="Inference threads (a batch of one frame is fastest on 1).", min=1, max=256),
    faces: str = typer.Option("best", "--faces", help="best: the most confident face; all: every face, a label per face per window (JSON lines and --csv carry face_id)."),
    csv_path: Optional[str] = output_option(None, "--csv", writes=FILE, help="Write one row per frame and face (OpenFace-style columns, box, 68 landmarks; window label and probabilities on the frame that completes a window) to this CSV file."),
    focal: Optional[float] = number_opt(None, "--focal", help="Head pose (--csv pose_* columns): the camera's focal length in pixels (default OpenFace's: 500 x width / 640).", min=1.0, max=1e6),
    engine: str = typer.Option("auto", "--engine", help="torch, onnx (onnxruntime), or auto: onnx when onnx + onnxruntime are installed."),
    pipeline: Optional[bool] = typer.Option(None, "--pipeline/--no-pipeline", show_default=False, help="Decode, detect/track, CNN and GRU in threads of their own, frames in order, or one after another in one thread; the same output. Default: the pipeline when two CPUs or more are there. A camera's frames are dropped, and counted, when the pipeline is full."),
    *,
    tracker: dict,
) -> None:
    from fercli import live as stage

    if record is not None and record == "-":
        raise FercliError("--record needs a file name, not '-'")
    if csv_path is not None and csv_path == "-":
        raise FercliError("--csv needs a file name, not '-' (standard output carries the JSON lines)")
    options = stage.LiveOptions(window=window, aligned=aligned, faces=faces, threads=threads, engine=engine, focal=focal,
                                pipeline=pipeline, pose=csv_path is not None, **tracker)  # only --csv shows the pose
    options.check()
    show = not headless
    if show:
        _check_display()
    # Cheap checks first: a bad source fails before the model is built.
    src = stage.open_source(source)
    try:
        rec, _, _ = artifacts.load_model(model, "live")
        session = stage.LiveSession(rec, options)
    except BaseException:
        src.close()
        raise
    timings = stage.Timings()
    with _CsvLog(csv_path, session.class_names, faces == "all") as log, _recorder(record, src.fps) as writer:
        last_windows: dict = {}
        for result in stage.run(session, src, timings, max_frames, realtime_clock=source.isdigit()):
            for window in result.windows:
                last_windows[window.face_id] = window
                if headless:
                    sys.stdout.write(json.dumps(window.as_json()) + "\n")
            if headless and result.windows:
                sys.stdout.flush()
            if log is not None:
                log(result)
            if result.frame is None or (writer is None and not show):
                continue
            overlay = stage.draw_overlay(result.frame, result, last_windows, session.class_names)
            if writer is not None:
                writer(overlay)
            if show:
                import cv2

                cv2.imshow("fercli live", overlay)
                if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                    break
    if show:
        import cv2

        cv2.destroyAllWindows()
    s = timings.summary()
    if s["frames"] == 0:
        raise FercliError(f"source {source} gave no frames")
    parts = ", ".join(f"{k} {v:.2f}" for k, v in s["ms_per_frame"].items())
    how = "pipelined" if stage.use_pipeline(pipeline) else "one thread"
    dropped = f" ({s['dropped']} dropped at capture: the camera was faster than the pipeline)" if src.live else ""
    err.print(f"live: {session.engine} engine, {how}, {s['frames']} frames{dropped}, {s['windows']} windows, {s['fps']} frames/s end to end; "
              f"latency capture to label p50 {s['latency_ms_p50']:.2f} ms, p95 {s['latency_ms_p95']:.2f} ms; ms per frame: {parts}", soft_wrap=True)


def _check_display() -> None:
    import os

    import cv2

    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        # GUI toolkits may abort the process without a screen: ask before they try.
        raise FercliError("no display is available (DISPLAY is not set): use --headless, with --record to keep the overlay video")
    try:
        cv2.namedWindow("fercli live")
    except cv2.error:
        raise FercliError("no display is available (OpenCV without GUI support or no screen): use --headless") from None


class _AtomicOutput:
    """A context manager for one output file that appears only when the run ends
    normally: ``__enter__`` gives what ``_open(temporary path)`` returns (None without
    a path); ``_nothing_written`` discards the file and raises one sentence."""

    suffix = ""

    def __init__(self, path: Optional[str]):
        self.path = path
        self._atomic = None

    def __enter__(self):
        if self.path is None:
            return None
        self._atomic = artifacts.atomic_path(self.path, suffix=self.suffix)
        tmp = self._atomic.__enter__()
        try:
            return self._open(tmp)
        except BaseException:
            self._atomic.__exit__(*sys.exc_info())
            raise

    def _open(self, tmp: str):  # pragma: no cover - interface
        raise TypeError("abstract")

    def _nothing_written(self, message: str):
        try:
            raise FercliError(message)
        except FercliError:
            self._atomic.__exit__(*sys.exc_info())
            raise


class _CsvLog(_AtomicOutput):
    """Yields ``add(result)``: the rows of each frame (:func:`fercli.live.csv_rows`),
    written when the next result comes, so the windows the end-of-stream flush
    completes join the last frame's rows."""

    suffix = ".csv"

    def __init__(self, path: Optional[str], class_names: list[str], all_faces: bool):
        super().__init__(path)
        self.class_names, self.all_faces = class_names, all_faces
        self._pending = None
        self._rows = False

    def _open(self, tmp: str):
        import csv

        from fercli import live as stage

        self._file = open(tmp, "w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file)
        self._writer.writerow(stage.csv_columns(self.class_names))
        return self._add

    def _add(self, result) -> None:
        if result.frame is None and self._pending is not None:
            self._pending[1].extend(result.windows)
            return
        self._write_pending()
        self._pending = (result, list(result.windows))
        self._rows = True

    def _write_pending(self) -> None:
        from fercli import live as stage

        if self._pending is not None:
            result, windows = self._pending
            self._writer.writerows(stage.csv_rows(result, windows, self.class_names, self.all_faces))
            self._pending = None

    def __exit__(self, exc_type, exc, tb):
        if self._atomic is None:
            return False
        try:
            if exc_type is None:
                self._write_pending()
        finally:
            self._file.close()
        if exc_type is None and not self._rows:
            self._nothing_written(f"no frames to write to {self.path}")  # no header-only file
        return self._atomic.__exit__(exc_type, exc, tb)


class _recorder(_AtomicOutput):
    """Yields ``write(frame)``: the overlay video."""

    suffix = ".mp4"

    def __init__(self, path: Optional[str], fps: float):
        super().__init__(path)
        self.fps = fps
        self._writer = None

    def _open(self, tmp: str):
        self._tmp = tmp
        return self._write

    def _write(self, frame) -> None:
        import cv2

        if self._writer is None:
            h, w = frame.shape[:2]
            self._writer = cv2.VideoWriter(self._tmp, cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self._writer.isOpened():
                raise FercliError(f"OpenCV cannot write an mp4v video to {self.path}")
        self._writer.write(frame)

    def __exit__(self, exc_type, exc, tb):
        if self._atomic is None:
            return False
        if self._writer is not None:
            self._writer.release()
        elif exc_type is None:
            self._nothing_written("no frames to record")  # no empty video
        return self._atomic.__exit__(exc_type, exc, tb)
