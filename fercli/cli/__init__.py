"""Command-line entry point: ``fercli STAGE ...``.

The CLI is thin: it parses options, opens and saves artifacts, shows progress,
and turns :class:`~fercli.errors.FercliError` into one line on stderr and exit
code 2.  ``--debug`` anywhere on the line (or FERCLI_DEBUG=1) shows tracebacks.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import traceback
from typing import Optional

import typer

from fercli.cli.app import app
from fercli.errors import FercliError, Interrupted, pending_signals

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
    pending_signals.append(signum)  # remembered in case the raise below is swallowed
    raise Interrupted(signum)


def main(argv: Optional[list[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("FERCLI_DEBUG", "") not in ("", "0")
    args = [a for a in args if a != "--debug"]
    # SIGTERM (cluster pre-emption, `kill`) unwinds like an exception so temporary
    # files are removed and training can checkpoint.
    signal.signal(signal.SIGTERM, _on_signal)
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name="fercli", standalone_mode=False)
        return int(result) if isinstance(result, int) else 0
    except FercliError as exc:
        if debug:
            traceback.print_exc()
        print(f"fercli: {exc}", file=sys.stderr)
        return 2
    except _EXITS as exc:
        return int(getattr(exc, "exit_code", 0) or 0)
    except _USAGE_ERRORS as exc:
        if debug:
            traceback.print_exc()
        message = " ".join(exc.format_message().split())
        print(f"fercli: {message} (see 'fercli --help')", file=sys.stderr)
        return 2
    except _ABORTS:
        print("fercli: interrupted", file=sys.stderr)
        return 130
    except Interrupted as exc:
        print(f"fercli: stopped by signal {exc.signum}; nothing was written", file=sys.stderr)
        return 128 + exc.signum
    except BrokenPipeError:
        # The reader went away (e.g. `| head`); not our error.
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), sys.stdout.fileno())
        return 141
    except Exception as exc:  # a bug, not bad input
        if debug:
            traceback.print_exc()
        print(f"fercli: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)", file=sys.stderr)
        return 1
