"""The one exception type a user should ever see.

Raise :class:`FercliError` with one sentence that says what is wrong with the
input and, where it helps, what to do.  The CLI prints it on one line and exits
with code 2; anything else is a bug and exits 1.
"""


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


def check_interrupted() -> None:
    """Raise :class:`Interrupted` if a termination signal arrived (even if swallowed)."""
    if pending_signals:
        signum = pending_signals[0]
        clear_interrupted()  # delivered now, from code that does not swallow it
        raise Interrupted(signum)


def clear_interrupted() -> None:
    """Forget received signals: called where an :class:`Interrupted` is handled."""
    pending_signals.clear()
