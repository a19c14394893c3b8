"""``train``: one experiment = build, initialise, train and checkpoint a model on
one or every run (fold) of the data (thesis 3.3.1, 4.2.6, 4.3.1, 5.3.1).

What trains and what is held out, the model's classes and how clips become
samples are the experiment protocol's (:mod:`fercli.protocol`): :class:`Experiment`
asks it once, before the first epoch, and writes its partition record into every
checkpoint.  :func:`train` is then a loop over the runs, :class:`FoldRun` one
run's epochs.

The CLI loads artifacts and passes them in; nothing here parses argv or prints:
it reports through callbacks (``progress``, ``on_epoch``, ``on_init``,
``on_fold``) and writes checkpoints through ``save(record, arrays)`` (the CLI's
atomic writer with lineage), called after every epoch on rank 0.
"""

from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from fercli.artifacts import Clips, ModelRecord
from fercli.errors import FercliError, Interrupted, clear_interrupted
from fercli.models import registry
from fercli.models.base import DataLayout
from fercli.protocol import partition as P
from fercli.protocol.join import class_key
from fercli.train.checkpoint import progress_record
from fercli.models.checks import check_finite
from fercli.protocol.modelfile import ModelFile, check_transfer, fold_state
from fercli.protocol.samples import SampleReader, SampleSpec, check_layout, choose_classes, clip_labels, sample_labels
from fercli.train.engine import (Engine, FitOptions, Stopped, dist_from_env, epoch_seed, init_distributed, load_optimizer,
                                 optimizer_arrays, parse_schedule, resolve_device)
from fercli.train.init import InitReport, find_stream_prefix, freeze, load_matching
from fercli.train.stream import Placement, place_data

@dataclass
class RunOptions:
    arch: str
    config: dict = field(default_factory=dict)  # explicit model options only
    task: str = "expression"
    frame: str = "last"
    frames: Optional[int] = None
    size: Optional[tuple[int, int]] = None
    fold: Optional[int] = None
    all_folds: bool = False
    n_folds: int = 10
    val: float = 0.0
    classes: Optional[list[str]] = None  # --classes (None: the protocol's default)
    device: str = "auto"
    freeze: bool = False
    fit: FitOptions = field(default_factory=FitOptions)
    device_memory: Optional[int] = None  # --device-memory: bytes the samples may take on the device (None: half its free memory)

    def fingerprint(self) -> dict:
        """What must not change between a checkpoint and its --resume (not where the
        data lives: a streamed run resumes resident and vice versa, with the same result)."""
        d = asdict(self)
        d.pop("device")
        d.pop("device_memory")
        d["fit"].pop("epochs")
        d["fit"].pop("eval_batch_size")
        return json.loads(json.dumps(d, default=lambda o: list(o) if isinstance(o, tuple) else str(o)))


@dataclass
class Callbacks:
    save: Optional[Callable[[ModelRecord, dict], None]] = None
    progress: Optional[Callable[[int, int], None]] = None
    on_epoch: Optional[Callable[[str, dict], None]] = None
    on_init: Optional[Callable[[InitReport], None]] = None
    on_fold: Optional[Callable[[str, dict], None]] = None
    on_plan: Optional[Callable[[P.PartitionRecord], None]] = None  # the partition, before anything trains
    on_data: Optional[Callable[[Placement], None]] = None  # resident or streamed data, before anything trains


# --------------------------------------------------------------------------- config


def resolve_options(opts: RunOptions) -> RunOptions:
    """``opts`` with every training option left ``None`` taken from the architecture's
    recipe (its registry entry, :class:`fercli.models.recipe.TrainingRecipe`).

    :func:`train` does this itself; a caller that records the options first (the CLI's
    lineage) calls it too.  Resolving twice changes nothing.
    """
    return replace(opts, fit=opts.fit.with_recipe(registry.get_spec(opts.arch).recipe))


def data_layout(clips: Clips, opts: RunOptions) -> DataLayout:
    """What the first data artifact looks like, as the samples will: channels, frame size
    (``--size``), clip length (``--frames``, else the one every clip has), LBP-TOP maps."""
    planes = {}
    if clips.plane_offsets is not None and len(clips):
        per_clip = int(clips.plane_offsets[1] - clips.plane_offsets[0])
        planes = {name: (per_clip, int(maps.shape[1])) for name, maps in clips.planes.items()}
    return DataLayout(channels=3 if clips.is_color else 1, frame_size=int(opts.size[1]) if opts.size else int(clips.frame_shape[0]),
                      clip_length=opts.frames or (int(clips.lengths[0]) if clips.is_fixed_length() else None), planes=planes)


def resolve_config(opts: RunOptions, clips: Clips, init: Optional[ModelFile], streams: Sequence[ModelFile]) -> dict:
    """The model config: the user's keys, then what the architecture derives from the
    sources and the data (:meth:`fercli.models.registry.ModelSpec.config_for_training`)."""
    return registry.get_spec(opts.arch).config_for_training(
        opts.config, data_layout(clips, opts), (init.record.arch, init.record.config) if init is not None else None,
        [(s.record.arch, s.record.config) for s in streams])


# --------------------------------------------------------------------------- the experiment


class Experiment:
    """Everything fixed before the first epoch: data, classes, config, sample spec,
    the partition record (leak-checked), the transferred weights' sources, the run record."""

    def __init__(self, opts: RunOptions, datasets: Sequence[tuple[Clips, dict]], init: Optional[ModelFile],
                 streams: Sequence[ModelFile], device: torch.device, dist):
        self.opts, self.init, self.streams, self.device, self.dist = opts, init, list(streams), device, dist
        if not datasets:
            raise FercliError("train needs at least one data artifact")
        clips0 = datasets[0][0]
        SampleSpec.check_options(opts.frame, opts.task)
        self.choice = choose_classes([c for c, _ in datasets], opts.task, opts.frame, opts.classes)
        self.class_names = self.choice.names
        self.data = [P.DataSet(c, ident, clip_labels(c, self.class_names, opts.task)) for c, ident in datasets]
        if not any(np.any(d.labels >= 0) for d in self.data):
            raise FercliError("the data has no labelled clips to train on")
        self.config = resolve_config(opts, clips0, init, streams)
        with torch.device("meta"):  # the input layout only: no memory, no random draws
            probe_model, _ = registry.build(opts.arch, len(self.class_names), self.config)
        self.spec = SampleSpec.for_model(probe_model, opts.frame, opts.frames, opts.size, opts.task)
        for d in self.data:
            self.spec.check(d.clips, d.name)
        shapes = {d.clips.frame_shape[:2] for d in self.data if len(d.clips)}
        if len(shapes) > 1 and not opts.size and {"image", "clip"} & set(self.spec.input_names):
            raise FercliError(f"the data artifacts have different frame sizes ({', '.join('x'.join(map(str, s[::-1])) for s in sorted(shapes))}): "
                              "give --size to resize them all")
        for s in self.streams:
            if [class_key(c) for c in s.record.class_names] != [class_key(c) for c in self.class_names]:
                raise FercliError(f"stream {s.path} was trained for classes {s.record.class_names}, the data has {self.class_names}")
        self.partition = P.plan(self.data, self.class_names, opts.fold, opts.all_folds, opts.n_folds, opts.fit.seed, opts.val,
                                self.choice.as_json())
        for a, d in zip(self.partition.data, self.data):  # every data error before anything trains
            check_layout(d.clips, a.rows, self.spec)
        P.sample_counts(self.partition, self.data, lambda i, rows: sample_labels(self.data[i].clips, rows, self.data[i].labels,
                                                                                 self.class_names, self.spec))
        for r, run in enumerate(self.partition.runs):  # refuse leaking sources before anything trains
            if init is not None:
                check_finite(fold_state(init, run.fold, "--init-from"), init.path or "--init-from")
                check_transfer(init, run.fold, self.partition, r, "--init-from")
            for si, s in enumerate(self.streams):
                check_finite(fold_state(s, run.fold, f"stream {si + 1}"), s.path or f"stream {si + 1}")
                check_transfer(s, run.fold, self.partition, r, f"stream {si + 1}")
        # Resident or streamed: the largest run's samples against the device's budget.
        probe = SampleReader([(d.clips, a.rows[:1], d.labels) for a, d in zip(self.partition.data, self.data)], self.class_names, self.spec)
        needed = max((sum(part["samples"] for part in run.values()) for run in self.partition.counts), default=0) * probe.sample_bytes
        self.placement = place_data(needed, probe.sample_bytes, opts.fit.batch_size, device, opts.device_memory, dist)
        self.run_info = {
            "options": opts.fingerprint(), "epochs": opts.fit.epochs, "device": str(device), "world_size": dist.world,
            "data": [ident for _, ident in datasets], "init_from": init.identity if init else None,
            "streams": [s.identity for s in self.streams], "seed": opts.fit.seed, "torch": torch.__version__,
            "numpy": np.__version__, "python": platform.python_version(), "host": platform.node(),
            "cuda_device": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "data_mode": self.placement.as_json(),
        }

    def samples(self, run: int, part: int) -> Optional[SampleReader]:
        """The samples of one part of one run, over every data artifact, not read yet (None: empty)."""
        sets = [(d.clips, a.rows_in(run, part), d.labels) for a, d in zip(self.partition.data, self.data)]
        if not any(len(rows) for _, rows, _ in sets):
            return None
        return SampleReader(sets, self.class_names, self.spec)


@dataclass
class Progress:
    """Where a (resumed) job stands: the run and epoch to continue, finished folds."""

    run: int = 0
    epoch: int = 0
    folds: list[dict] = field(default_factory=list)
    fold_arrays: dict[str, dict] = field(default_factory=dict)
    resume: Optional[ModelFile] = None
    steps: int = 0

    @classmethod
    def of(cls, resume: Optional[ModelFile], opts: RunOptions, exp: Experiment) -> "Progress":
        if resume is None:
            return cls()
        rec, name = resume.record, resume.path
        old = rec.extra.get("run") or {}
        prog = progress_record(rec.extra, name)  # checked before any of it is used
        if rec.arch != opts.arch or not prog:
            raise FercliError(f"{name} is not a checkpoint of a '{opts.arch}' training run, so --resume cannot continue it")
        if [d.get("id") for d in old.get("data", [])] != [d.get("id") for d in exp.run_info["data"]]:
            raise FercliError(f"{name} was trained on other data artifacts: resume with the same DATA")
        diff = sorted(k for k in set(old.get("options", {})) | set(exp.run_info["options"])
                      if old.get("options", {}).get(k) != exp.run_info["options"].get(k))
        if diff:
            raise FercliError(f"{name} was trained with other options ({', '.join(diff)}): resume with the same command line")
        fold_arrays = {g: a for g, a in resume.arrays.items() if g.startswith("folds/")}
        run, epoch = int(prog.get("partition", 0)), int(prog.get("epoch", 0))
        folds = list(rec.extra.get("folds", []))
        if prog.get("complete"):
            if epoch >= opts.fit.epochs:
                return cls(10**9, 0, folds, fold_arrays, resume)  # nothing left to do
            if opts.all_folds:
                raise FercliError(f"{name} is a finished --folds all run; train a new one to change --epochs")
        return cls(run, epoch, folds, fold_arrays, resume)


class FoldRun:
    """One run (fold) of an experiment: its model, engine, data on the device, history."""

    def __init__(self, exp: Experiment, index: int, progress: Progress, cb: Callbacks):
        self.exp, self.index, self.progress, self.cb = exp, index, progress, cb
        opts = exp.opts
        self.run = exp.partition.runs[index]
        self.fold_id = self.run.fold if self.run.fold is not None else 0
        torch.manual_seed(epoch_seed(opts.fit.seed, self.fold_id, -1))
        model, _ = registry.build(opts.arch, len(exp.class_names), exp.config)
        self.extra_init: dict = {}
        if exp.init is not None:
            report = load_matching(model, fold_state(exp.init, self.run.fold, "--init-from"), exp.init.path)
            if opts.freeze:
                freeze(model, report.loaded)
            self.extra_init = report.as_json() | {"frozen": opts.freeze}
            if cb.on_init and index == progress.run:
                cb.on_init(report)
        for si, s in enumerate(exp.streams):
            state = fold_state(s, self.run.fold, f"stream {si + 1}")
            rep = load_matching(model, state, s.path, prefix=find_stream_prefix(model, si, state))
            if exp.config.get("freeze_streams", True):
                freeze(model, rep.loaded)  # 3.2.5: the fusion is trained on top of the trained streams
        self.resuming = progress.resume is not None and index == progress.run and progress.epoch > 0
        self.history: list[dict] = list(progress.resume.record.history)[:progress.epoch] if self.resuming else []
        if self.resuming:
            registry.load_state(model, progress.resume.record.state, opts.arch)
        self.train_s = exp.samples(index, P.TRAIN)
        self.test_s = exp.samples(index, P.TEST)
        self.val_s = exp.samples(index, P.VAL)
        self.engine = Engine(model, exp.spec.input_names, opts.fit, exp.device, exp.dist, self.fold_id)
        if self.resuming and "optimizer" in progress.resume.arrays and self.engine.optimizer is not None:
            load_optimizer(self.engine.optimizer, progress.resume.arrays["optimizer"],
                           progress.resume.record.extra.get("optimizer_groups", []), exp.device)
        self.data = {name: exp.placement.put(s, exp.device) for name, s in (("train", self.train_s), ("test", self.test_s), ("val", self.val_s))
                     if s is not None}
        self.steps_per_epoch = -(-len(self.train_s) // opts.fit.batch_size)
        if self.resuming:
            progress.steps = self.steps_per_epoch * progress.epoch

    def _step(self) -> None:
        self.progress.steps += 1
        if self.cb.progress:
            total = self.steps_per_epoch * self.exp.opts.fit.epochs * (len(self.exp.partition.runs) - self.progress.run)
            self.cb.progress(self.progress.steps, total)

    def snapshot(self, epochs_done: int, complete: bool) -> tuple[ModelRecord, dict]:
        """The checkpoint after ``epochs_done`` epochs of this run (``complete``: its last)."""
        exp, opts, progress = self.exp, self.exp.opts, self.progress
        state = registry.state_to_numpy(self.engine.model)
        opt_arrays, groups = optimizer_arrays(self.engine.optimizer)
        arrays = {"optimizer": opt_arrays, **progress.fold_arrays, **exp.partition.arrays()}
        last_run = self.index == len(exp.partition.runs) - 1
        if complete and not last_run:  # --folds all: the next fold starts at epoch 0 with a fresh optimizer
            where = {"partition": self.index + 1, "epoch": 0, "complete": False}
            arrays["optimizer"] = {}
        else:
            where = {"partition": self.index, "epoch": epochs_done, "complete": complete and last_run}
        folds = list(progress.folds)
        if opts.all_folds and complete:
            arrays[f"folds/{self.run.fold}"] = state
            folds.append(self.fold_entry())
        extra = {
            "run": exp.run_info, "partition": exp.partition.summary(), "data_prep": exp.spec.as_json(),
            "fold": self.run.fold if not opts.all_folds else None, "folds": folds, "progress": where,
            "optimizer_groups": groups, "init": self.extra_init,
            "n_train": len(self.train_s), "n_test": len(self.test_s) if self.test_s is not None else 0,
            "class_counts_train": np.bincount(self.train_s.labels, minlength=len(exp.class_names)).tolist(),
        }
        return ModelRecord(opts.arch, exp.config, state, list(exp.class_names), list(self.history), extra), arrays

    def fold_entry(self) -> dict:
        last = self.history[-1] if self.history else {}
        clips = {name: sum(len(a.rows_in(self.index, code)) for a in self.exp.partition.data) for name, code in (("train", P.TRAIN), ("test", P.TEST))}
        return {"fold": self.run.fold, "name": self.run.name, "history": list(self.history), "test_acc": last.get("test_acc"),
                "test_loss": last.get("test_loss"), "n_train": clips["train"], "n_test": clips["test"]}

    def fit(self) -> ModelRecord:
        """Train the remaining epochs, checkpointing each; returns the run's final record."""
        exp, cb, epochs = self.exp, self.cb, self.exp.opts.fit.epochs
        save = cb.save if exp.dist.is_main else None
        saved = len(self.history) if self.resuming else -1
        try:
            for epoch in range(len(self.history), epochs):
                entry = self.engine.train_epoch(self.data["train"], epoch, self._step)
                for label in ("test", "val"):
                    if label in self.data:
                        r = self.engine.evaluate(self.data[label])
                        entry[f"{label}_loss"], entry[f"{label}_acc"] = r["loss"], r["acc"]
                self.history.append({k: (round(v, 6) if isinstance(v, float) else v) for k, v in entry.items()})
                if cb.on_epoch:
                    cb.on_epoch(self.run.name, self.history[-1])
                if save:  # a checkpoint every epoch (atomic replace)
                    save(*self.snapshot(epoch + 1, epoch + 1 == epochs))
                    saved = epoch + 1
            if epochs == 0 and save:
                save(*self.snapshot(0, True))
        except Interrupted as exc:
            clear_interrupted()  # handled here: the checkpoint below must be able to commit
            done = len(self.history)
            if save and done > 0 and saved != done:
                # The interrupted step is abandoned; the model of the last completed epoch is
                # what a resume continues from (re-saved when the signal hit its write).
                save(*self.snapshot(done, done == epochs))
            raise Stopped(done, exc.signum) from exc
        return self.snapshot(len(self.history), True)[0]


# --------------------------------------------------------------------------- train


def train(
    opts: RunOptions,
    datasets: Sequence[tuple[Clips, dict]],
    init: Optional[ModelFile] = None,
    streams: Sequence[ModelFile] = (),
    resume: Optional[ModelFile] = None,
    callbacks: Optional[Callbacks] = None,
) -> ModelRecord:
    """Train ``opts.arch`` on ``datasets`` [(clips, identity)]; returns the final record.

    Raises :class:`~fercli.train.engine.Stopped` after saving the last completed
    epoch when SIGTERM arrives (``Interrupted``).
    """
    cb = callbacks or Callbacks()
    opts = resolve_options(opts)
    dist = dist_from_env()
    device = resolve_device(opts.device, dist)
    init_distributed(dist, device)
    if opts.fit.epochs < 0:
        raise FercliError("--epochs must be 0 or more")
    if opts.fit.batch_size < dist.world:
        raise FercliError(f"--batch-size {opts.fit.batch_size} is the global batch and must be at least the {dist.world} processes")
    parse_schedule(opts.fit.schedule)
    exp = Experiment(opts, datasets, init, streams, device, dist)
    progress = Progress.of(resume, opts, exp)
    if cb.on_plan:
        cb.on_plan(exp.partition)
    if cb.on_data:
        cb.on_data(exp.placement)
    record: Optional[ModelRecord] = None
    try:
        for index in range(progress.run, len(exp.partition.runs)):
            run = FoldRun(exp, index, progress, cb)
            record = run.fit()
            progress.folds.append(run.fold_entry())
            if opts.all_folds:
                progress.fold_arrays[f"folds/{run.run.fold}"] = registry.state_to_numpy(run.engine.model)
            if cb.on_fold:
                cb.on_fold(run.run.name, progress.folds[-1])
    except Interrupted as exc:
        # between epochs (building the next fold's model, moving data): the
        # checkpoint on disk is already the last completed epoch
        clear_interrupted()
        raise Stopped(0, exc.signum) from exc
    if record is None:  # resumed an already complete run
        assert resume is not None
        record = resume.record
    return record
