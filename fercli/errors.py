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


#: Signals the CLI's handler received.  Raising from a signal handler can land
#: inside a destructor or weakref callback, where Python prints "Exception
#: ignored" and carries on; atomic writers check this list before committing.
pending_signals: list[int] = []


def check_interrupted() -> None:
    """Raise :class:`Interrupted` if a termination signal arrived (even if swallowed)."""
    if pending_signals:
        raise Interrupted(pending_signals[0])
