"""``train``: one experiment = build, initialise, train and checkpoint a model on
one or every partition of the data (thesis 3.3.1, 4.2.6, 4.3.1, 5.3.1).

The CLI loads artifacts and passes them in; this function never parses argv or
prints: it reports through callbacks (``progress``, ``on_epoch``, ``on_init``) and
writes checkpoints through ``save(record, arrays)`` (the CLI's atomic writer with
lineage), called after every epoch on rank 0.
"""

from __future__ import annotations

import copy
import platform
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from fercli.artifacts import Clips, ModelRecord
from fercli.errors import FercliError, Interrupted
from fercli.models import registry
from fercli.train import data as D
from fercli.train.augment import AugmentConfig
from fercli.train.checkpoint import ModelFile, fold_state
from fercli.train.engine import (DeviceData, Dist, Engine, FitOptions, Stopped, dist_from_env, epoch_seed, init_distributed,
                                 load_optimizer, optimizer_arrays, parse_schedule, resolve_device)
from fercli.train.init import InitReport, find_stream_prefix, freeze, load_matching

# Per-architecture defaults for options the user did not give.  Chapter 5 (5.3.1):
# SGD lr 0.1, x0.1 at 40/70/90 % of the epochs (= 80, 140, 180 of 200), 4-px
# shifts + flips, no rotation.  Chapters 3-4: Adam 1e-3, +-10 deg rotation + flips
# (3.2.2; the thesis does not name its optimiser there).
RECIPES = {
    "lb-mbnet": {"optimizer": "sgd", "lr": 0.1, "schedule": "step@0.4,0.7,0.9", "rotation": 0.0, "flip": True, "shift": 4, "epochs": 200, "batch_size": 128},
    "*": {"optimizer": "adam", "lr": 1e-3, "schedule": "constant", "rotation": 10.0, "flip": True, "shift": 0, "epochs": 30, "batch_size": 32},
}


def recipe_for(arch: str, epochs: int) -> dict:
    r = dict(RECIPES.get(arch, RECIPES["*"]))
    if r["schedule"].startswith("step@"):
        fractions = [float(x) for x in r["schedule"][5:].split(",")]
        r["schedule"] = "step:" + ",".join(str(max(1, int(round(f * epochs)))) for f in fractions)
    return r


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
    device: str = "auto"
    freeze: bool = False
    fit: FitOptions = field(default_factory=FitOptions)

    def fingerprint(self) -> dict:
        """What must not change between a checkpoint and its --resume."""
        d = asdict(self)
        d.pop("device")
        d["fit"].pop("epochs")
        d["fit"].pop("eval_batch_size")
        return _jsonable(d)


def _jsonable(value):
    import json

    return json.loads(json.dumps(value, default=lambda o: list(o) if isinstance(o, tuple) else str(o)))


@dataclass
class Callbacks:
    save: Optional[Callable[[ModelRecord, dict], None]] = None
    progress: Optional[Callable[[int, int], None]] = None
    on_epoch: Optional[Callable[[str, dict], None]] = None
    on_init: Optional[Callable[[InitReport], None]] = None
    on_fold: Optional[Callable[[str, dict], None]] = None


# --------------------------------------------------------------------------- config


def _side(clips: Clips, size) -> int:
    return int(size[1]) if size else int(clips.frame_shape[0])


def resolve_config(opts: RunOptions, clips: Clips, init: Optional[ModelFile], streams: Sequence[ModelFile]) -> dict:
    """The model config: user keys, then keys derived from the data/sources when not given."""
    spec = registry.get_spec(opts.arch)
    cfg = copy.deepcopy(opts.config)
    defaults = spec.defaults
    channels = 3 if clips.is_color else 1
    side = _side(clips, opts.size)
    if init is not None and "backbone" in defaults and "backbone" not in cfg and init.record.arch != opts.arch:
        src_spec = registry.get_spec(init.record.arch)
        if tuple(src_spec.inputs) == ("image",):
            # ch4: the CNN given to --init-from becomes the GRU's frame model.
            cfg["backbone"] = init.record.arch
            cfg.setdefault("backbone_config", copy.deepcopy(init.record.config))
    if init is not None and init.record.arch == opts.arch:
        # Same architecture (a rebuilt LB-MBNet, a model trained further): its shape
        # options -- depth, per-block expansion, widths, LBC seeds -- carry over unless
        # given, so every weight fits without repeating them on the command line.
        for key, value in init.record.config.items():
            if key not in cfg and key != "input_size" and key in defaults:
                cfg[key] = copy.deepcopy(value)
    if streams:
        if "streams" not in defaults:
            raise FercliError(f"--streams is for the fusion architecture; '{opts.arch}' takes no streams")
        cfg.setdefault("streams", [{"arch": s.record.arch, "config": copy.deepcopy(s.record.config)} for s in streams])
    if "in_channels" in defaults and "in_channels" not in cfg:
        cfg["in_channels"] = channels
    if "input_size" in defaults and "input_size" not in cfg and not set(spec.input_names(cfg) if hasattr(spec, "input_names") else spec.inputs) & set(D.PLANE_INPUTS):
        cfg["input_size"] = side
    if "backbone_config" in defaults:
        bspec = registry.get_spec(cfg.get("backbone", defaults.get("backbone")))
        bc = dict(cfg.get("backbone_config") or {})
        if "in_channels" in bspec.defaults and "in_channels" not in bc:
            bc["in_channels"] = channels
        if "input_size" in bspec.defaults and "input_size" not in bc:
            bc["input_size"] = side
        cfg["backbone_config"] = bc
    if "frames" in defaults and "frames" not in cfg:
        if opts.frames:
            cfg["frames"] = opts.frames
        elif clips.is_fixed_length():
            cfg["frames"] = int(clips.lengths[0])
    names = _input_names(spec, cfg)
    plane_names = [n for n in names if n in D.PLANE_INPUTS]
    if plane_names and plane_names[0] in clips.planes and clips.plane_offsets is not None and len(clips):
        maps = clips.planes[plane_names[0]]
        if "maps" in defaults and "maps" not in cfg:
            cfg["maps"] = int(clips.plane_offsets[1] - clips.plane_offsets[0])
        if "input_size" in defaults and "input_size" not in cfg:
            cfg["input_size"] = int(maps.shape[1])
    return spec.resolve(cfg)


def _input_names(spec, cfg: dict) -> tuple[str, ...]:
    if hasattr(spec, "input_names"):
        return tuple(spec.input_names(cfg))
    return tuple(spec.inputs)


def model_channels(model: torch.nn.Module, names: Sequence[str], fallback: int) -> int:
    """Channels the built model expects for frames (from its dummy inputs)."""
    dummy = getattr(model, "dummy_inputs", None)
    if dummy is None:
        return fallback
    try:
        xs = dummy(1)
    except Exception:  # a model without a usable dummy: trust the data
        return fallback
    for name, x in zip(names, xs):
        if name == "image":
            return int(x.shape[1])
        if name == "clip":
            return int(x.shape[2])
    return fallback


# --------------------------------------------------------------------------- helpers


def _subset(samples: D.Samples, clip_idx: np.ndarray) -> D.Samples:
    rows = np.flatnonzero(np.isin(samples.clip_index, clip_idx))
    return D.Samples({k: v[rows] for k, v in samples.inputs.items()}, samples.labels[rows], samples.clip_index[rows])


def prepare(clips: Clips, opts: RunOptions, config: dict, model: torch.nn.Module, labels: np.ndarray, class_names: list[str],
            index: Optional[np.ndarray] = None) -> tuple[D.Samples, tuple[str, ...], dict]:
    """Model-ready uint8 samples for the labelled clips (or ``index``)."""
    spec = registry.get_spec(opts.arch)
    names = tuple(getattr(model, "inputs", None) or _input_names(spec, config))
    channels = model_channels(model, names, 3 if clips.is_color else 1)
    if index is None:
        index = np.flatnonzero(labels >= 0)
    samples = D.build_samples(clips, index, labels, class_names, names, channels, opts.frame, opts.frames, opts.size)
    prep = {"input_names": list(names), "channels": channels, "frame": opts.frame, "frames": opts.frames,
            "size": list(opts.size) if opts.size else None, "task": opts.task}
    return samples, names, prep


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
    dist = dist_from_env()
    device = resolve_device(opts.device, dist)
    init_distributed(dist, device)
    if opts.fit.epochs < 0:
        raise FercliError("--epochs must be 0 or more")
    if opts.fit.batch_size < dist.world:
        raise FercliError(f"--batch-size {opts.fit.batch_size} is the global batch and must be at least the {dist.world} processes")
    parse_schedule(opts.fit.schedule)

    parts_in = [c for c, _ in datasets]
    if len(parts_in) > 1 and opts.size and len({p.frame_shape[:2] for p in parts_in}) > 1:
        # cross-database data of different sizes: bring them to --size before joining
        import dataclasses

        parts_in = [dataclasses.replace(p, frames=D.resize_frames(p.frames, opts.size)) for p in parts_in]
    clips = D.concat_clips(parts_in, [str(i) for i in range(len(datasets))])
    labels, class_names = D.task_labels(clips, opts.task)
    clips.labels = labels
    if not np.any(labels >= 0):
        raise FercliError("the data has no labelled clips to train on")
    config = resolve_config(opts, clips, init, streams)
    parts, part_info = D.partitions(clips, opts.fold, opts.all_folds, opts.n_folds, opts.fit.seed, opts.val)
    for s in streams:
        if [c.lower() for c in s.record.class_names] != [c.lower() for c in class_names]:
            raise FercliError(f"stream {s.path} was trained for classes {s.record.class_names}, the data has {class_names}")

    run_info = {
        "options": opts.fingerprint(), "epochs": opts.fit.epochs, "device": str(device), "world_size": dist.world,
        "data": [ident for _, ident in datasets], "init_from": init.identity if init else None,
        "streams": [s.identity for s in streams], "seed": opts.fit.seed, "torch": torch.__version__,
        "numpy": np.__version__, "python": platform.python_version(), "host": platform.node(),
        "cuda_device": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
    }
    # ---- resume bookkeeping
    done_folds: list[dict] = []
    fold_arrays: dict[str, dict] = {}
    start_part, start_epoch = 0, 0
    if resume is not None:
        start_part, start_epoch, done_folds, fold_arrays = _check_resume(resume, opts, run_info, config)

    total_steps = sum(len(p.train) for p in parts) * max(opts.fit.epochs, 1)  # rough; refined per fold
    steps_done = [0]

    record: Optional[ModelRecord] = None
    try:
        for pi, part in enumerate(parts):
            if pi < start_part:
                continue
            fold_id = part.fold if part.fold is not None else 0
            torch.manual_seed(epoch_seed(opts.fit.seed, fold_id, -1))
            model, _ = registry.build(opts.arch, len(class_names), config)
            init_report = None
            extra_init: dict = {}
            if init is not None:
                init_report = load_matching(model, fold_state(init, part.fold, "--init-from"), init.path)
                if opts.freeze:
                    freeze(model, init_report.loaded)
                extra_init = init_report.as_json() | {"frozen": opts.freeze}
                if cb.on_init and pi == start_part:
                    cb.on_init(init_report)
            for si, s in enumerate(streams):
                state = fold_state(s, part.fold, f"stream {si + 1}")
                prefix = find_stream_prefix(model, si, state)
                rep = load_matching(model, state, s.path, prefix=prefix)
                if config.get("freeze_streams", True):
                    freeze(model, rep.loaded)  # 3.2.5: the fusion is trained on top of the trained streams
            history: list[dict] = []
            resuming_here = resume is not None and pi == start_part and start_epoch > 0
            if resuming_here:
                history = list(resume.record.history)[:start_epoch]
                registry.load_weights(model, opts.arch, resume.record.state)  # a damaged checkpoint: one sentence
            samples, names, prep = prepare(clips, opts, config, model, labels, class_names)
            train_s = _subset(samples, part.train)
            test_s = _subset(samples, part.test) if len(part.test) else None
            val_s = _subset(samples, part.val) if len(part.val) else None
            engine = Engine(model, names, opts.fit, device, dist, fold_id)
            if resuming_here and "optimizer" in resume.arrays:
                load_optimizer(engine.optimizer, resume.arrays["optimizer"], resume.record.extra.get("optimizer_groups", []), device)
            train_d = DeviceData.put(train_s, device)
            test_d = DeviceData.put(test_s, device) if test_s is not None else None
            val_d = DeviceData.put(val_s, device) if val_s is not None else None
            steps_per_epoch = -(-len(train_s) // opts.fit.batch_size)
            total = steps_per_epoch * opts.fit.epochs * (len(parts) - start_part)

            def step_cb() -> None:
                steps_done[0] += 1
                if cb.progress:
                    cb.progress(steps_done[0], total)

            if cb.progress and resuming_here:
                steps_done[0] = steps_per_epoch * start_epoch

            def snapshot(epochs_done: int, complete_fold: bool) -> tuple[ModelRecord, dict]:
                from fercli.models.registry import state_to_numpy

                state = state_to_numpy(engine.model)
                opt_arrays, groups = optimizer_arrays(engine.optimizer)
                arrays = {"optimizer": opt_arrays, **fold_arrays}
                folds_list = list(done_folds)
                all_complete = complete_fold and pi == len(parts) - 1
                if complete_fold and not all_complete:  # --folds all: the next fold starts at epoch 0
                    progress = {"partition": pi + 1, "epoch": 0, "complete": False}
                else:
                    progress = {"partition": pi, "epoch": epochs_done, "complete": all_complete}
                if opts.all_folds and complete_fold:
                    arrays[f"folds/{part.fold}"] = state
                extra = {
                    "run": run_info, "partition": part_info, "data_prep": prep,
                    "fold": part.fold if not opts.all_folds else None,
                    "folds": folds_list + ([_fold_entry(part, history)] if complete_fold and opts.all_folds else []),
                    "progress": progress,
                    "optimizer_groups": groups, "init": extra_init,
                    "n_train": len(train_s), "n_test": len(test_s) if test_s is not None else 0,
                    "class_counts_train": np.bincount(train_s.labels, minlength=len(class_names)).tolist(),
                }
                if complete_fold and opts.all_folds and not all_complete:
                    # The next fold starts fresh: the optimizer state belongs to this one.
                    arrays["optimizer"] = {}
                rec = ModelRecord(opts.arch, config, state, list(class_names), list(history), extra)
                return rec, arrays

            saved_epoch = start_epoch if resuming_here else -1
            epoch = start_epoch if resuming_here else 0
            try:
                for epoch in range(start_epoch if resuming_here else 0, opts.fit.epochs):
                    entry = engine.train_epoch(train_d, epoch, step_cb)
                    for label, dd in (("test", test_d), ("val", val_d)):
                        if dd is not None:
                            r = engine.evaluate(dd)
                            entry[f"{label}_loss"], entry[f"{label}_acc"] = r["loss"], r["acc"]
                    history.append(_rounded(entry))
                    if cb.on_epoch:
                        cb.on_epoch(part.name, history[-1])
                    last = epoch + 1 == opts.fit.epochs
                    if dist.is_main and cb.save:  # a checkpoint every epoch (atomic replace)
                        cb.save(*snapshot(epoch + 1, last))
                        saved_epoch = epoch + 1
                if opts.fit.epochs == 0 and dist.is_main and cb.save:
                    cb.save(*snapshot(0, True))
            except Interrupted as exc:
                done = len(history)
                if dist.is_main and cb.save and saved_epoch != done:
                    # The interrupted step is abandoned; the model of the last completed
                    # epoch is what a resume must continue from.
                    if done == epoch + 1:  # interrupted while saving a finished epoch
                        cb.save(*snapshot(done, done == opts.fit.epochs))
                raise Stopped(done, exc.signum) from exc
            record, _ = snapshot(len(history), True)
            entry = _fold_entry(part, history)
            done_folds.append(entry)
            if opts.all_folds:
                fold_arrays[f"folds/{part.fold}"] = registry.state_to_numpy(engine.model)
            if cb.on_fold:
                cb.on_fold(part.name, entry)
    except Interrupted as exc:
        # between epochs (building the next fold's model, moving data): the
        # checkpoint on disk is already the last completed epoch
        raise Stopped(0, exc.signum) from exc
    assert record is not None or resume is not None
    if record is None:  # resumed an already complete run
        record = resume.record
    return record


def _rounded(entry: dict) -> dict:
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in entry.items()}


def _fold_entry(part: D.Partition, history: list[dict]) -> dict:
    last = history[-1] if history else {}
    return {"fold": part.fold, "name": part.name, "history": list(history), "test_acc": last.get("test_acc"),
            "test_loss": last.get("test_loss"), "n_train": int(len(part.train)), "n_test": int(len(part.test))}


def _check_resume(resume: ModelFile, opts: RunOptions, run_info: dict, config: dict):
    rec = resume.record
    name = resume.path
    old = rec.extra.get("run") or {}
    prog = rec.extra.get("progress")
    if rec.arch != opts.arch or not prog:
        raise FercliError(f"{name} is not a checkpoint of a '{opts.arch}' training run, so --resume cannot continue it")
    if [d.get("id") for d in old.get("data", [])] != [d.get("id") for d in run_info["data"]]:
        raise FercliError(f"{name} was trained on other data artifacts: resume with the same DATA")
    diff = sorted(k for k in set(old.get("options", {})) | set(run_info["options"])
                  if old.get("options", {}).get(k) != run_info["options"].get(k))
    if diff:
        raise FercliError(f"{name} was trained with other options ({', '.join(diff)}): resume with the same command line")
    done = [int(f["fold"]) for f in rec.extra.get("folds", []) if f.get("fold") is not None]
    fold_arrays = {g: a for g, a in resume.arrays.items() if g.startswith("folds/")}
    part, epoch = int(prog.get("partition", 0)), int(prog.get("epoch", 0))
    if prog.get("complete"):
        if epoch >= opts.fit.epochs:
            return 10**9, 0, list(rec.extra.get("folds", [])), fold_arrays  # nothing left to do
        if opts.all_folds:
            raise FercliError(f"{name} is a finished --folds all run; train a new one to change --epochs")
    return part, epoch, list(rec.extra.get("folds", [])), fold_arrays
