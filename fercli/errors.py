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
