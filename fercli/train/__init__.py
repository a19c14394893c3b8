"""The one training engine (thesis 3.3.1, 4.2.6, 4.3.1, 5.3.1): on-device
augmentation (:mod:`.augment`), the loop with DDP and checkpoints
(:mod:`.engine`), resident or streamed data (:mod:`.stream`), weight transfer
(:mod:`.init`), and the experiment driver
:func:`train` (:mod:`.run`), which first fills every option left ``None`` from the
architecture's training recipe (:func:`resolve_options`; the recipes ride on the
registry entries, :mod:`fercli.models.recipe`).  Which clips train and how they become tensors is the
experiment protocol's (:mod:`fercli.protocol`)."""

from fercli.protocol.modelfile import ModelFile, load_model_file  # re-exported: the library API before the protocol layer
from fercli.train.augment import AugmentConfig
from fercli.train.engine import Diverged, FitOptions, Stopped
from fercli.train.run import Callbacks, RunOptions, resolve_options, train

__all__ = ["AugmentConfig", "Callbacks", "Diverged", "FitOptions", "ModelFile", "RunOptions", "Stopped", "load_model_file", "resolve_options", "train"]
