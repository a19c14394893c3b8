"""The one training engine (thesis 3.3.1, 4.2.6, 4.3.1, 5.3.1): data -> tensors
(:mod:`.data`), on-device augmentation (:mod:`.augment`), the loop with DDP and
checkpoints (:mod:`.engine`, :mod:`.checkpoint`), weight transfer (:mod:`.init`),
and the experiment driver :func:`train` (:mod:`.run`)."""

from fercli.train.augment import AugmentConfig
from fercli.train.checkpoint import ModelFile, load_model_file
from fercli.train.engine import Diverged, FitOptions, Stopped
from fercli.train.run import RECIPES, Callbacks, RunOptions, recipe_for, train

__all__ = ["AugmentConfig", "Callbacks", "Diverged", "FitOptions", "ModelFile", "RECIPES", "RunOptions", "Stopped", "load_model_file", "recipe_for", "train"]
