"""The one exception type a user should ever see.

Raise :class:`FercliError` with one sentence that says what is wrong with the
input and, where it helps, what to do.  The CLI prints it on one line and exits
with code 2; anything else is a bug and exits 1.
"""

import contextlib
import signal
import threading
from typing import Iterator


class FercliError(Exception):
    """A user error: bad input, bad option, wrong artifact.  Exit code 2."""


class Interrupted(Exception):
    """SIGTERM/SIGINT arrived; raised so cleanup (temp files, checkpoints) runs."""

    def __init__(self, signum: int):
        super().__init__(f"interrupted by signal {signum}")
        self.signum = signum


#: Signals the CLI's handler received and that no handler has dealt with yet.
#: Raising from a signal handler can land inside a destructor or weakref callback,
#: where Python prints "Exception ignored" and carries on; atomic writers check
#: this list before committing.  An :class:`Interrupted` that reaches a handler
#: (a writer cleaning up, the training loop saving its checkpoint) clears it, so a
#: library caller that goes on after one signal can still write files.
pending_signals: list[int] = []

#: Set by the first SIGINT/SIGTERM: an orderly stop (checkpoint, cleanup, one sentence)
#: is under way.  Clusters often deliver SIGTERM more than once (to the job step, and
#: again through torchrun to every rank); in a CLI process, which exits after the stop,
#: a later signal must not interrupt that stop half-way (a second message, a checkpoint
#: write abandoned), so it is ignored.  Library callers (no :func:`reset_signals` with
#: ``ignore_repeats``) keep every signal, as before.
_stop_started = False
_ignore_repeats = False


def note_signal(signum: int) -> bool:
    """Remember a received SIGINT/SIGTERM; False if it repeats a stop already under way
    in a CLI process (the caller then ignores it).  Survives :func:`clear_interrupted`."""
    global _stop_started
    if _stop_started and _ignore_repeats:
        return False
    _stop_started = True
    pending_signals.append(signum)
    return True


def stop_started() -> bool:
    """Whether a SIGINT/SIGTERM has started a stop since :func:`reset_signals`."""
    return _stop_started


def reset_signals(ignore_repeats: bool = False) -> None:
    """Forget every received signal, including a stop under way (a new command starts);
    ``ignore_repeats``: this process exits after a stop, so later signals are ignored."""
    global _stop_started, _ignore_repeats
    _stop_started, _ignore_repeats = False, ignore_repeats
    pending_signals.clear()


def check_interrupted() -> None:
    """Raise :class:`Interrupted` if a termination signal arrived (even if swallowed)."""
    if pending_signals:
        signum = pending_signals[0]
        clear_interrupted()  # delivered now, from code that does not swallow it
        raise Interrupted(signum)


def clear_interrupted() -> None:
    """Forget received signals: called where an :class:`Interrupted` is handled."""
    pending_signals.clear()


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """SIGINT/SIGTERM inside are only remembered in :data:`pending_signals`, not raised.

    For code that calls back into Python from C (HDF5 writing through a Python
    file object): an exception raised there by a signal handler leaves the C
    library in an error state and h5py printing tracebacks.  The caller acts on
    the remembered signal afterwards (:func:`check_interrupted`), at a safe point.
    Only the main thread can set handlers; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    watched = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.getsignal(signum) for signum in watched}

    def remember(signum: int, frame: object) -> None:
        note_signal(signum)

    for signum in watched:
        signal.signal(signum, remember)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
