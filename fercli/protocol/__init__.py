"""The experiment protocol: one answer to "what did a model train on, what is it
tested on, and how did clips become its samples" (thesis 3.3.1, 4.2.7, 4.3.1-4.3.2,
5.3.1-5.3.2), written into every model at training time and replayed by
``evaluate``, ``prune``, ``export`` and ``live`` -- none of which imports the
training runner.

- :mod:`.join` -- how data artifacts are joined: class names, subject and clip ids
  (shared by ``merge`` and ``train A B``);
- :mod:`.samples` -- the model's classes, frame picks, labels, uint8 arrays and the
  one uint8 -> float conversion;
- :mod:`.partition` -- planning the runs (folds, official splits, cross-database
  roles), the partition record, leak checks and replay;
- :mod:`.modelfile` -- reading model artifacts (weights, per-fold weights,
  optimizer state, partition record).
"""

from fercli.protocol.join import data_origins, join_class_names
from fercli.protocol.modelfile import ModelFile, check_transfer, fold_state, load_model_file, save_model_file
from fercli.protocol.partition import DataSet, PartitionRecord, plan, replay
from fercli.protocol.samples import Samples, SampleSpec, build_samples, choose_classes, clip_labels, to_float

__all__ = ["DataSet", "ModelFile", "PartitionRecord", "SampleSpec", "Samples", "build_samples", "check_transfer", "choose_classes",
           "clip_labels", "data_origins", "fold_state", "join_class_names", "load_model_file", "plan", "replay", "save_model_file",
           "to_float"]
