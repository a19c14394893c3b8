"""Imported once by the fork server of ``fercli align --workers N`` (see
:mod:`fercli.align`): every worker forked from it starts with the aligner's
imports, the default face detector and the default 68-point landmark model
already loaded (about 3 s of loading that would otherwise repeat in each
worker).

The fork server is a helper of the fercli process that started it: Ctrl-C
(SIGINT to the whole process group) and SIGTERM are that process's to handle,
so the server ignores them from its first line (it exits when its parent does),
and no traceback of an interrupted import reaches the terminal."""

import signal

signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)

import contextlib  # noqa: E402

from fercli.align import AlignOptions  # noqa: E402
from fercli.errors import FercliError  # noqa: E402
from fercli.tracking import make_tracker  # noqa: E402

with contextlib.suppress(FercliError, OSError, RuntimeError):
    make_tracker(AlignOptions())  # fills the detector and predictor caches of fercli.faces
