"""Progress reporting: stages call ``progress(done, total)``; the CLI draws it.

Stages never print.  They accept an optional callback and call it as work
advances; ``None`` means nobody is watching.
"""

from __future__ import annotations

from typing import Callable, Optional

ProgressFn = Callable[[int, int], None]


def report(progress: Optional[ProgressFn], done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)
