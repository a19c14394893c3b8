"""Training recipes: how the thesis trained each architecture (3.2.2, 5.3.1).

A recipe rides on the architecture's registry entry (as timm's ``default_cfg`` or
torchvision's weights metadata do), so a new architecture states its training
defaults where it is registered: ``register("lb-mbnet", LBMBNet, recipe=...)``.
:func:`fercli.train.resolve_options` fills every training option a caller left
``None`` from the recipe of the architecture it trains -- the one place defaults are
resolved, for ``fercli train`` and library callers alike -- and ``fercli train
--help`` prints them (:func:`defaults_help`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Mapping


@dataclass(frozen=True)
class TrainingRecipe:
    """Defaults of the training options; these field defaults are chapters 3-4's.

    Chapters 3-4 (3.2.2): +-10 degree rotations and flips; the thesis does not name
    its optimiser there, Adam 1e-3 is this project's choice.
    """

    optimizer: str = "adam"  # sgd (with momentum) | adam
    lr: float = 1e-3
    momentum: float = 0.9  # SGD's
    weight_decay: float = 0.0
    schedule: str = "constant"  # constant | cosine | step:E1,E2,... | step@F1,F2,...: milestones as fractions of the epochs
    epochs: int = 30
    batch_size: int = 32
    rotation: float = 10.0  # degrees
    flip: bool = True
    shift: int = 0  # pixels
    source: str = "3.2.2"  # the thesis section the recipe follows

    def schedule_for(self, epochs: int) -> str:
        """The schedule for a run of ``epochs``: relative milestones become epochs (``step@0.4`` of 200 = ``step:80``)."""
        if not self.schedule.startswith("step@"):
            return self.schedule
        fractions = [float(x) for x in self.schedule[5:].split(",")]
        return "step:" + ",".join(str(max(1, int(round(f * epochs)))) for f in fractions)

    def shown(self, name: str) -> str:
        """One field's value as ``--help`` prints it."""
        value = getattr(self, name)
        if name == "schedule" and value.startswith("step@"):
            return "x0.1 at " + "/".join(f"{float(f) * 100:g}" for f in value[5:].split(",")) + " % of the epochs"
        if isinstance(value, bool):
            return "on" if value else "off"
        return f"{value:g}" if isinstance(value, float) else str(value)


#: Training options a recipe gives a default for (the CLI options of the same names).
OPTIONS = tuple(f.name for f in fields(TrainingRecipe) if f.name != "source")


def defaults_help(name: str, recipes: Mapping[str, TrainingRecipe]) -> str:
    """'Default: 30; lb-mbnet 200 (5.3.1).' -- option ``name``'s default over every architecture's recipe."""
    common = TrainingRecipe()
    others = [f"{arch} {r.shown(name)} ({r.source})" for arch, r in sorted(recipes.items()) if getattr(r, name) != getattr(common, name)]
    return f"Default: {common.shown(name)}" + "".join(f"; {o}" for o in others) + "."
