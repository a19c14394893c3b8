"""Command-line entry point: ``fercli STAGE ...``.

The CLI is thin: it parses options, opens and saves artifacts, shows progress,
and turns :class:`~fercli.errors.FercliError` into one line on stderr and exit
code 2.  ``--debug`` anywhere on the line (or FERCLI_DEBUG=1) shows tracebacks.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import signal
import sys
import traceback
from typing import Optional

import typer

from fercli.cli.app import app
from fercli.artifacts import committed_outputs
from fercli.errors import FercliError, Interrupted, note_signal, reset_signals, stop_started
from fercli.untrusted import one_line

# typer >= 0.26 vendors its own click (and no longer installs click); older
# typers use the click package.  Accept the exceptions of whichever is present.
_CLICKS = []
for _module in ("typer._click.exceptions", "click.exceptions"):
    try:
        _CLICKS.append(importlib.import_module(_module))
    except ImportError:
        pass
_USAGE_ERRORS = tuple(m.ClickException for m in _CLICKS)
_EXITS = tuple(getattr(m, "Exit") for m in _CLICKS if hasattr(m, "Exit")) + (typer.Exit,)
_ABORTS = tuple(getattr(m, "Abort") for m in _CLICKS if hasattr(m, "Abort")) + (typer.Abort, KeyboardInterrupt)

#: One module per stage, in the order `fercli --help` lists them.
COMMAND_MODULES = [
    "ingest", "synth", "align", "resample", "lbptop", "split", "merge",
    "train", "evaluate", "prune", "rebuild", "live", "export", "table", "show", "info",
]

for _name in COMMAND_MODULES:
    importlib.import_module(f"fercli.cli.{_name}")


def _on_signal(signum: int, frame: object) -> None:
    if not note_signal(signum):  # a stop is already under way: let it finish
        return
    raise Interrupted(signum)  # also remembered (note_signal), in case this raise is swallowed


#: Exit status for a closed reader downstream (`fercli synth -o - | head -c 100`):
#: 128 + SIGPIPE, what a shell reports for a program killed by SIGPIPE.
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE


def _quiet_unraisable(unraisable) -> None:
    """A signal's exception raised inside a destructor or callback is "ignored"
    by Python with a traceback; ``pending_signals`` already remembers the signal,
    and fercli's stderr is one sentence, so these stay silent (``--debug`` shows them)."""


def silence_libraries() -> None:
    """Keep OpenCV/FFmpeg's own log lines off stderr (our one sentence says what failed)."""
    os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    os.environ.setdefault("OPENCV_VIDEOIO_DEBUG", "0")
    cv2 = sys.modules.get("cv2")
    if cv2 is not None:  # already imported (and its log level read): set it directly
        try:
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        except Exception:  # pragma: no cover - an OpenCV without the logging module
            pass


def say_error(message: str) -> None:
    """The one line of a failed command: control characters escaped, never markup."""
    print(f"fercli: {one_line(message)}", file=sys.stderr)


def _interrupted_message(signum: int) -> str:
    name = "interrupted (Ctrl-C)" if signum == signal.SIGINT else f"stopped by signal {signum} ({signal.Signals(signum).name})"
    written = committed_outputs()
    if written:
        return f"{name} after writing {', '.join(written)}; nothing else was written"
    return f"{name}; nothing was written"


@functools.lru_cache(maxsize=1)
def _command():
    """The click command tree, built once per process (library callers run main() many times)."""
    return typer.main.get_command(app)


def main(argv: Optional[list[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("FERCLI_DEBUG", "") not in ("", "0")
    args = [a for a in args if a != "--debug"]
    silence_libraries()
    # Text from artifacts may hold lone surrogates (undecodable bytes of an attribute): printed as
    # escapes, like Python's own stderr does, never a UnicodeEncodeError (found by the fuzzer, issue 20).
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")
    # SIGTERM (cluster pre-emption, `kill`) and SIGINT (Ctrl-C) unwind like an
    # exception so temporary files are removed and training can checkpoint.
    reset_signals(ignore_repeats=True)  # the process exits after a stop
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    if not debug:
        sys.unraisablehook = _quiet_unraisable
    command = _command()
    try:
        # make_context + invoke rather than command.main(): click's main turns a
        # broken pipe into a silent exit 1 and Ctrl-C into a silent exit 130.
        # Shell completion (`fercli --install-completion` sets it up): click's main()
        # answers it from the environment before parsing; so must we.
        command._main_shell_completion({}, "fercli")
        with command.make_context("fercli", args) as ctx:
            result = command.invoke(ctx)
        return int(result) if isinstance(result, int) else 0
    except FercliError as exc:
        if debug:
            traceback.print_exc()
        say_error(str(exc))
        return 2
    except _EXITS as exc:
        return int(getattr(exc, "exit_code", 0) or 0)
    except _USAGE_ERRORS as exc:
        if debug:
            traceback.print_exc()
        message = " ".join(exc.format_message().split())
        say_error(f"{message} (see 'fercli --help')")
        return 2
    except Interrupted as exc:
        if debug:
            traceback.print_exc()
        say_error(_interrupted_message(exc.signum))
        return 128 + exc.signum
    except _ABORTS:
        say_error(_interrupted_message(signal.SIGINT))
        return 128 + signal.SIGINT
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): not our error, and nothing to say.
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception as exc:  # a bug, not bad input
        if debug:
            traceback.print_exc()
        say_error(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)")
        return 1
    finally:
        if stop_started():
            # Stopped by a signal and about to exit with its status: a repeated one must not
            # kill the interpreter's shutdown (Python restores the default action for its
            # own handlers then, and the status would become -15 instead of 143).
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
