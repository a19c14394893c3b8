"""Runs `fercli` commands as forked children of one warm interpreter.

The fault suite runs dozens of commands; starting Python and importing
fercli, torch and OpenCV for each would cost seconds apiece on a small
machine.  This server imports them once, then forks one child per request:
each child is a real process with its own stdin/stdout/stderr file
descriptors (so C-level messages, e.g. from a video decoder, are caught
too), runs ``fercli.cli.main`` exactly as the console script does, and exits
with its return code -- or is SIGKILLed at a chosen moment.

Protocol: one JSON request per line on stdin, one JSON reply per line on stdout.
    {"args": [...], "cwd": DIR, "stdin": PATH|null, "stdin_closed": BOOL, "stdout": PATH, "stderr": PATH,
     "timeout": SECONDS, "kill_after": SECONDS|null,
     "env": {NAME: VALUE}|null, "fsize": BYTES|null, "signal": [SIGNUM, SECONDS]|null}
    -> {"rc": INT, "killed": BOOL, "timed_out": BOOL, "seconds": FLOAT,
        "maxrss_kb": INT, "base_rss_kb": INT}

``fsize`` sets RLIMIT_FSIZE in the child (with SIGXFSZ ignored, a write past it
fails with EFBIG: a full disk without root); ``signal`` sends SIGNUM to the
child after SECONDS -- or, as ``[SIGNUM, SECONDS, SIGN]``, SECONDS after SIGN
shows the work is under way: ``{"descendants": N, "cpu": S}``, the child has at
least N live descendant processes (e.g. a worker pool) and it and they have
used S seconds of CPU between them.  CPU time, unlike wall time, does not
stretch on a loaded machine: a signal test that makes its work need more CPU
than S lands mid-work by construction (issue 20).  ``maxrss_kb`` is the child's peak resident memory (from
wait4); it starts at what the child shares with this warm server,
``base_rss_kb``, so the command's own peak is the difference.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time


def _child(req: dict) -> None:
    rc = 1
    try:
        fd_in = None if req.get("stdin_closed") else os.open(req.get("stdin") or os.devnull, os.O_RDONLY)
        fd_out = os.open(req["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        fd_err = os.open(req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        for src, dst in ((fd_in, 0), (fd_out, 1), (fd_err, 2)):
            if src is not None:
                os.dup2(src, dst)
                os.close(src)
        if fd_in is None:  # as cron and daemons start a job: no file descriptor 0, and Python's sys.stdin is None
            os.close(0)
            sys.stdin = sys.__stdin__ = None
        else:
            sys.stdin = open(0, "r", closefd=False)
        sys.stdout = open(1, "w", closefd=False)
        sys.stderr = open(2, "w", closefd=False, errors="backslashreplace")  # as Python opens its stderr
        os.chdir(req["cwd"])
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.environ.update(req.get("env") or {})
        if req.get("fsize") is not None:
            import resource

            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (int(req["fsize"]), int(req["fsize"])))
        sys.argv = ["fercli", *req["args"]]
        from fercli.cli import main

        rc = main(list(req["args"]))
    except BaseException:  # a crash of the harness itself shows as a traceback
        import traceback

        traceback.print_exc()
        rc = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(rc if isinstance(rc, int) else 1)


def _rss_kb() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children") as fh:
                    kids = [int(k) for k in fh.read().split()]
            except OSError:
                continue
            found.extend(kids)
            todo.extend(kids)
    return found


def _cpu_seconds(pids: list[int]) -> float:
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return ticks / os.sysconf("SC_CLK_TCK")


def _sign_shown(pid: int, sign: dict) -> bool:
    """Whether the work of ``pid`` is under way as ``sign`` asks (see the module docstring)."""
    kids = _descendants(pid)
    return len(kids) >= int(sign.get("descendants", 0)) and _cpu_seconds([pid, *kids]) >= float(sign.get("cpu", 0))


def serve() -> None:
    reply = os.fdopen(os.dup(1), "w")
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        base = _rss_kb()
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:
            _child(req)
        deadline = start + float(req.get("timeout", 300))
        kill_at = start + float(req["kill_after"]) if req.get("kill_after") is not None else None
        sign = req["signal"][2] if req.get("signal") and len(req["signal"]) > 2 else None
        signal_at = start + float(req["signal"][1]) if req.get("signal") and sign is None else None
        next_look = start
        killed = timed_out = False
        status, usage = None, None
        while True:
            done, status, usage = os.wait4(pid, os.WNOHANG)
            if done:
                break
            now = time.monotonic()
            if sign is not None and now >= next_look:
                next_look = now + 0.02
                if _sign_shown(pid, sign):
                    signal_at, sign = now + float(req["signal"][1]), None
            if signal_at is not None and now >= signal_at:
                os.kill(pid, int(req["signal"][0]))
                signal_at = None
            if kill_at is not None and now >= kill_at:
                os.kill(pid, signal.SIGKILL)
                killed = True
                _, status, usage = os.wait4(pid, 0)
                break
            if now >= deadline:
                os.kill(pid, signal.SIGKILL)
                timed_out = True
                _, status, usage = os.wait4(pid, 0)
                break
            time.sleep(0.002)
        rc = os.waitstatus_to_exitcode(status)
        reply.write(json.dumps({"rc": rc, "killed": killed, "timed_out": timed_out, "seconds": time.monotonic() - start,
                                "maxrss_kb": usage.ru_maxrss if usage else 0, "base_rss_kb": base}) + "\n")
        reply.flush()


def _warm_up() -> None:
    """Parse one command line (refused at its options) so what typer and click
    import lazily on first use (about 0.4 s) is loaded before the forks."""
    import contextlib
    import io

    from fercli.cli import main

    try:  # what a training run and a face tracker load on first use (seconds each)
        import torch

        net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.Flatten(), torch.nn.LazyLinear(2))
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        torch.nn.functional.cross_entropy(net(torch.zeros(2, 1, 8, 8)), torch.zeros(2, dtype=torch.long)).backward()
        opt.step()
        torch.optim.Adam(net.parameters())
        from fercli.align import AlignOptions
        from fercli.tracking import make_tracker

        make_tracker(AlignOptions())
    except ImportError:
        pass
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    hook = sys.unraisablehook
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        main(["split", "warm-up.h5", "--folds", "0", "-o", "warm-up-out.h5"])
    for signum, handler in handlers.items():
        signal.signal(signum, handler)
    sys.unraisablehook = hook


if __name__ == "__main__":
    # Everything a command may import, loaded once before forking.
    import fercli.cli  # noqa: F401  (all command modules)
    import fercli.lbptop, fercli.merge, fercli.split, fercli.temporal, fercli.ingest, fercli.align  # noqa: E401,F401
    try:
        import cv2  # noqa: F401
        import torch  # noqa: F401

        torch.set_num_threads(1)
        import fercli.train, fercli.evaluate, fercli.prune, fercli.rebuild, fercli.export, fercli.live, fercli.models  # noqa: E401,F401
    except ImportError:
        pass
    _warm_up()
    serve()
