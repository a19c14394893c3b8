"""`fercli train`: train any registered model with the one engine (thesis 3.3.1, 4.2.6, 5.3.1)."""

from __future__ import annotations

import contextlib
import json
import os
import re
from typing import List, Optional

import typer
from typer.core import TyperCommand

from fercli import artifacts, untrusted
from fercli.cli.app import app
from fercli.cli.common import FILE, FOLDER, ThreadsOpt, err, examples, input_option, number_opt, output_option, parse_size
from fercli.errors import FercliError

def _parse_config(items: List[str]) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise FercliError(f"--config takes KEY=VALUE (got '{item}')")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def _model_config(arch: str, items: List[str], keys: dict, pool: Optional[str], frames: Optional[int]) -> dict:
    """The model config the command line gives: ``--config`` items, then the flags that set one
    key each (``keys``: key -> value or None); what each key accepts is the model's to check."""
    from fercli.models import registry

    spec = registry.get_spec(arch)
    cfg = _parse_config(items)
    cfg.update({key: value for key, value in keys.items() if value is not None})
    if pool is not None:
        if pool not in ("max", "gru"):
            raise FercliError(f"--pool must be max (or gru, the default recurrent layer), not '{pool}'")
        cfg["rnn"] = pool  # the temporal layer: max pooling or the GRU
    if frames is not None and "frames" in spec.defaults:  # a clip model's nominal length is the clip length it trains on
        cfg["frames"] = frames
    return cfg


class _TrainCommand(TyperCommand):
    """``train --help`` lists the registered architectures and, for every option a training
    recipe sets, the recipes' defaults (torch is imported for the help only)."""

    def format_help(self, ctx, formatter) -> None:
        from fercli.models import registry
        from fercli.models.recipe import OPTIONS, defaults_help

        recipes = registry.recipes()
        for param in self.params:
            if param.name == "arch":
                param.help = "Architecture: " + ", ".join(registry.available()) + "."
            elif param.name in OPTIONS:
                base = self.__dict__.setdefault("_base_help", {}).setdefault(param.name, param.help)
                param.help = f"{base} {defaults_help(param.name, recipes)}"
        return super().format_help(ctx, formatter)


@app.command(help="Train a model (any architecture of chapters 3-5) on clips artifacts; writes a model artifact, checkpointed every epoch.",
             cls=_TrainCommand,
             epilog=examples("fercli train plain-cnn folds.h5 --folds all -o static.h5", "fercli train cnn-gru folds.h5 --init-from static.h5 --freeze --fold 0 --tensorboard runs -o gru.h5"))
def train(
    arch: str = typer.Argument(..., help="Architecture (see `fercli train --help`)."),
    data: List[str] = typer.Argument(..., help="One or more clips artifacts (several = cross-database training: classes joined by name; folded artifacts keep their folds, others train only or by their official split)."),
    output: str = output_option(..., "-o", "--output", writes=FILE, help="Model artifact to write (also the checkpoint --resume continues)."),
    fold: Optional[int] = number_opt(None, "--fold", help="Hold out fold K as the test part (subject-independent folds from `fercli split`).", min=0, max=100_000),
    folds: Optional[str] = typer.Option(None, "--folds", help="'all' (or N): train every fold in turn, all in one artifact; N = folds to compute if the data has none."),
    n_folds: int = number_opt(10, "--n-folds", help="Folds to compute by subject when the data has none.", min=2, max=100_000),
    val: float = number_opt(0.0, "--val", help="Hold out this fraction of the training subjects as a validation part.", min=0, below=1),
    task: str = typer.Option("expression", "--task", help="expression (clip labels) | identity (subject ids as classes: 4.2.6 stage 1)."),
    classes: Optional[str] = typer.Option(None, "--classes", help="The model's classes, comma-separated, or 'all'. Default: the data's; with --frame first-last or --ckplus-split clips neutral + six basic (contempt left out, 4.2.4.3)."),
    frame: str = typer.Option("last", "--frame", help="Frame models on sequences: last (peak) | first-last (first/last 3 frames of whole sequences as neutral/peak, 4.3.1) | all."),
    frames: Optional[int] = number_opt(None, "--frames", help="Clip length for sequence models (resampled on the fly).", min=1, max=100_000),
    size: Optional[str] = typer.Option(None, "--size", help="Resize frames to N or WxH (ch4: 96, ch5: 32/48)."),
    # Options a training recipe sets: None = the architecture's recipe (the help appends the defaults).
    epochs: Optional[int] = number_opt(None, "--epochs", help="Epochs (0 writes the initialised model).", min=0, max=1_000_000),
    batch_size: Optional[int] = number_opt(None, "--batch-size", help="GLOBAL batch size (split over torchrun ranks).", min=1, max=65_536),
    lr: Optional[float] = number_opt(None, "--lr", help="Learning rate.", above=0, max=1000),
    optimizer: Optional[str] = typer.Option(None, "--optimizer", help="sgd (with --momentum) | adam."),
    momentum: Optional[float] = number_opt(None, "--momentum", help="SGD momentum.", min=0, below=1),
    weight_decay: Optional[float] = number_opt(None, "--weight-decay", help="L2 weight decay.", min=0, max=1000),
    schedule: Optional[str] = typer.Option(None, "--schedule", help="constant | cosine | step:E1,E2,... (x0.1 each; '@G' for another factor)."),
    seed: int = number_opt(0, "--seed", help="Seed of initialisation, batch order, augmentation and dropout.", min=0, max=2**63 - 1),
    rotation: Optional[float] = number_opt(None, "--rotation", help="Random rotation range in degrees (3.2.2).", min=0, max=180),
    flip: Optional[bool] = typer.Option(None, "--flip/--no-flip", help="Random horizontal flips."),
    shift: Optional[int] = number_opt(None, "--shift", help="Random width/height shift in pixels (5.3.1).", min=0, max=4096),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda."),
    compile_model: bool = typer.Option(False, "--compile", help="torch.compile the training step (faster on GPUs after a compile of a minute or so; needs Triton on CUDA, a C++ compiler on CPU)."),
    init_from: Optional[str] = input_option(None, "--init-from", help="Model artifact whose matching weights initialise this model."),
    freeze_loaded: bool = typer.Option(False, "--freeze", help="Freeze the weights loaded by --init-from."),
    streams: Optional[str] = input_option(None, "--streams", sep=",", help="multistream: the trained stream models, comma-separated."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run checkpointed at -o."),
    input_kind: Optional[str] = typer.Option(None, "--input", help="cnn-gru: features (SF) | probs (PD)."),
    plane: Optional[str] = typer.Option(None, "--plane", help="lbptop-gru: xt | yt."),
    pool: Optional[str] = typer.Option(None, "--pool", help="max: temporal max pooling in place of the GRU (Table 3.5)."),
    rnn: Optional[str] = typer.Option(None, "--rnn", help="gru | lstm (Table 4.2)."),
    depth: Optional[int] = number_opt(None, "--depth", help="lb-mbnet: 59 | 32.", min=1, max=1000),
    expansion: Optional[float] = number_opt(None, "--expansion", help="lb-mbnet: expansion ratio r.", above=0, max=1000),
    width_mult: Optional[float] = number_opt(None, "--width-mult", help="mobilenet width multiplier.", above=0, max=100),
    config: List[str] = typer.Option([], "--config", help="KEY=VALUE model option (JSON value), repeatable."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No per-epoch lines."),
    tensorboard: Optional[str] = output_option(None, "--tensorboard", writes=FOLDER, help="Also write TensorBoard event files of the per-epoch metrics to DIR (one run per fold; needs `pip install tensorboard`)."),
    device_memory: Optional[str] = typer.Option(None, "--device-memory", help="Memory the samples may take on the device, e.g. 8G or 64M; more data is streamed from the artifacts in loads (same results). Default: half the device's free memory (CPU: available RAM)."),
    shuffle_window: int = number_opt(65_536, "--shuffle-window", min=0, max=2**40, help="Samples shuffled together each epoch; larger data is shuffled as blocks within windows of this many samples (so streaming reads in runs). 0 = the whole set. Part of the run: --resume keeps it."),
    threads: int = ThreadsOpt,
) -> None:
    # -- parse: the command line as RunOptions (ranges were checked by number_opt)
    # -o passed the output guard (fercli.cli.paths): --resume reads its checkpoint from -o on
    # purpose; any other input at -o is refused.
    if output == "-":
        raise FercliError("train checkpoints into its output every epoch, so -o must be a file, not standard output")
    memory_cap = untrusted.parse_bytes(device_memory, "--device-memory") if device_memory is not None else None
    from fercli import train as T  # torch only when training
    from fercli.device import configure_cpu
    from fercli.train.engine import dist_from_env

    configure_cpu(threads, device)
    cfg = _model_config(arch, config, {"input": input_kind, "plane": plane, "rnn": rnn, "depth": depth, "expansion": expansion,
                                       "width_mult": width_mult}, pool, frames)
    if compile_model:  # before any data is read: no compiler, no Triton = one sentence at once
        from fercli.train.compile import check_compile
        from fercli.train.engine import resolve_device

        check_compile(resolve_device(device, dist_from_env()))
    if fold is not None and folds is not None:
        raise FercliError("give --fold K or --folds all, not both")
    if folds is not None and folds != "all":
        try:
            n_folds = int(folds)
        except ValueError:
            raise FercliError(f"--folds takes 'all' or a number of folds (got '{folds}')") from None
        if n_folds < 2:
            raise FercliError("--n-folds must be at least 2")
    class_list = [c.strip() for c in classes.split(",") if c.strip()] if classes is not None else None
    if classes is not None and not class_list:
        raise FercliError("--classes takes class names separated by commas, or 'all'")
    fit = T.FitOptions(epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, momentum=momentum, weight_decay=weight_decay,
                       schedule=schedule, seed=seed, compile=compile_model, shuffle_window=shuffle_window,
                       augment=T.AugmentConfig(rotation=rotation, flip=flip, shift=shift))
    # -- resolve: the architecture's recipe fills every training option not given
    opts = T.resolve_options(T.RunOptions(arch=arch, config=cfg, task=task, frame=frame, frames=frames, size=parse_size(size) if size else None,
                                          fold=fold, all_folds=folds is not None, n_folds=n_folds, val=val, classes=class_list, device=device,
                                          freeze=freeze_loaded, fit=fit, device_memory=memory_cap))
    inputs = _Inputs(data, init_from, streams, output if resume else None)
    entry = artifacts.lineage_entry("train", {"arch": arch, "options": opts.fingerprint(), "epochs": opts.fit.epochs, "device": device},
                                    inputs.identities)
    # -- run, reporting on rank 0
    report = _Report(output, opts, artifacts.combine_lineage(inputs.lineages, entry), inputs.resume, init_from, quiet, tensorboard,
                     dist_from_env().is_main)
    with report.running():
        record = T.train(opts, inputs.datasets, inputs.init, inputs.streams, inputs.resume, report.callbacks())
    report.finished(record)


class _Inputs:
    """The artifacts a training run reads: data (lazily: frames are read when samples are
    built), the --init-from and stream models, the checkpoint --resume continues."""

    def __init__(self, data: List[str], init_from: Optional[str], streams: Optional[str], resume_at: Optional[str]) -> None:
        from fercli.protocol import data_origins, load_model_file
        from fercli.protocol.provenance import data_summary

        self.datasets, self.lineages = [], []
        for path in data:
            clips, ident, lineage = artifacts.load_clips(path, "train", lazy=True)
            self.datasets.append((clips, {**ident, "origins": data_origins(lineage), "made_by": data_summary(lineage)}))
            self.lineages.append(lineage)
        self.init = load_model_file(init_from, "train --init-from") if init_from else None
        self.streams = [load_model_file(p.strip(), "train --streams") for p in streams.split(",") if p.strip()] if streams else []
        if resume_at is not None and not os.path.exists(resume_at):
            raise FercliError(f"--resume continues the checkpoint at {resume_at}, which does not exist")
        self.resume = load_model_file(resume_at, "train --resume") if resume_at is not None else None
        self.lineages += [mf.lineage for mf in ([self.init] if self.init else []) + self.streams]
        self.identities = [ident for _, ident in self.datasets] + ([self.init.identity] if self.init else []) + [s.identity for s in self.streams]


class _Report:
    """What rank 0 shows and writes while a run trains: checkpoints (with the run's lineage),
    per-epoch lines, TensorBoard scalars, the partition and data placement, fold results,
    and where a stopped or diverged run leaves -o."""

    def __init__(self, output: str, opts, lineage: list, resume_file, init_from: Optional[str], quiet: bool,
                 tensorboard: Optional[str], main_rank: bool) -> None:
        self.output, self.opts, self.lineage, self.resume_file, self.init_from = output, opts, lineage, resume_file, init_from
        self.main_rank = main_rank
        self.show = main_rank and not quiet
        self.board = _TensorBoard(tensorboard) if tensorboard and main_rank else None
        self.saves: list = []  # the progress of every checkpoint written

    def callbacks(self):
        from fercli import train as T

        return T.Callbacks(save=self.save if self.main_rank else None, progress=self.bar, on_epoch=self.on_epoch, on_init=self.on_init,
                           on_fold=self.on_fold, on_plan=self.on_plan, on_data=self.on_data)

    def save(self, record, arrays) -> None:
        from fercli.protocol import save_model_file

        save_model_file(self.output, record, self.lineage, arrays)
        self.saves.append(record.extra.get("progress"))

    def _line(self, text: str) -> None:
        err.print(text, markup=False, highlight=False, soft_wrap=True)

    def on_epoch(self, part: str, h: dict) -> None:
        if self.board is not None:
            self.board.epoch(part, h)
        if not self.show:
            return
        bits = [f"{part}", f"epoch {h['epoch']}/{self.opts.fit.epochs}", f"loss {h['loss']:.4f}", f"acc {h['train_acc']:.3f}"]
        if "val_acc" in h:
            bits.append(f"val {h['val_acc']:.3f}")
        if "test_acc" in h:
            bits.append(f"test {h['test_acc']:.3f}")
        bits += [f"lr {h['lr']:.3g}", f"{h['seconds']:.1f} s", f"{h['img_per_s'] or 0:.0f} samples/s"]
        err.print("  ".join(bits), highlight=False, soft_wrap=True)

    def on_init(self, report) -> None:
        if self.show:
            c = report.counts()
            err.print(f"init from {self.init_from}: {c['loaded']} tensors loaded, {c['new']} new, {c['skipped_for_shape']} skipped for shape"
                      + (f" (under '{report.prefix}')" if report.prefix else "") + (", loaded part frozen" if self.opts.freeze else ""))

    def on_plan(self, record) -> None:
        if self.show:
            from fercli.protocol.partition import describe, describe_lines

            for line in describe_lines(describe(record)):
                self._line(f"partition: {line}")

    def on_data(self, placement) -> None:
        if self.show:
            self._line(placement.describe())

    def on_fold(self, part: str, e: dict) -> None:
        if self.show and e.get("test_acc") is not None:
            err.print(f"{part}: test accuracy {e['test_acc']:.4f} on {e['n_test']} held-out clips")

    @contextlib.contextmanager
    def running(self):
        """The progress bar and TensorBoard writers around the run; a stop (SIGTERM) or a
        diverged epoch said as where -o stands."""
        from fercli import train as T
        from fercli.cli.common import progress_bar

        with progress_bar(f"train {self.opts.arch}", quiet=not self.show) as self.bar, self.board or contextlib.nullcontext():
            try:
                yield
            except T.Stopped as stop:
                if self.main_rank:  # only rank 0 writes the checkpoint, so only it reports where it stands
                    err.print(self._stopped(stop.signum), highlight=False, soft_wrap=True)
                raise typer.Exit(code=128 + stop.signum) from None
            except T.Diverged as bad:  # the diverged epoch was never saved: say what -o holds
                raise FercliError(f"training diverged in epoch {bad.epoch} ({bad.what}): {self._kept(bad.epoch)}; lower --lr") from None

    def _stopped(self, signum: int) -> str:
        if not self.saves and self.resume_file is None:
            return f"fercli: stopped by signal {signum} before the first epoch finished; nothing was written"
        where = self.saves[-1] if self.saves else (self.resume_file.record.extra.get("progress") or {})
        part = f"fold run {where.get('partition', 0) + 1}, " if self.opts.all_folds else ""
        return (f"fercli: stopped by signal {signum} at {part}epoch {where.get('epoch', 0)} of {self.opts.fit.epochs}; "
                f"checkpoint saved to {self.output}; resume with --resume")

    def _kept(self, epoch: int) -> str:
        if self.saves:
            return f"{self.output} keeps the checkpoint of epoch {(self.saves[-1] or {}).get('epoch', epoch - 1)}, the last finite one"
        if self.resume_file is not None:
            return f"{self.output} keeps the checkpoint --resume started from"
        return "nothing was written"

    def finished(self, record) -> None:
        if not self.show:
            return
        if self.resume_file is not None and record is self.resume_file.record:
            err.print(f"{self.output} already holds the finished run ({self.opts.fit.epochs} epochs): nothing to do")
            return
        accs = [f["test_acc"] for f in record.extra.get("folds") or [] if f.get("test_acc") is not None]
        if len(accs) > 1:
            import numpy as np

            err.print(f"mean test accuracy over {len(accs)} folds: {np.mean(accs):.4f} ± {np.std(accs):.4f}")
        err.print(f"wrote {self.output}")


class _TensorBoard:
    """Per-epoch metrics as TensorBoard scalars through ``torch.utils.tensorboard``:
    one run (sub-folder) per fold, tags ``loss/train``, ``accuracy/test``, ``lr``, ..."""

    def __init__(self, folder: str) -> None:
        import importlib.util

        if importlib.util.find_spec("tensorboard") is None:
            raise FercliError("--tensorboard writes event files with torch.utils.tensorboard, which needs the tensorboard package: pip install tensorboard")
        self.folder = folder
        self.writers: dict = {}

    def epoch(self, part: str, h: dict) -> None:
        from torch.utils.tensorboard import SummaryWriter

        if part not in self.writers:
            self.writers[part] = SummaryWriter(log_dir=os.path.join(self.folder, re.sub(r"[^A-Za-z0-9._-]+", "-", part) or "run"))
        for key, value in h.items():
            if key != "epoch" and isinstance(value, (int, float)):
                kind, _, which = key.rpartition("_") if key.endswith(("_loss", "_acc")) else ("", "", key)
                tag = "loss/train" if key == "loss" else f"{'loss' if which == 'loss' else 'accuracy'}/{kind}" if kind else key
                self.writers[part].add_scalar(tag, value, int(h.get("epoch", 0)))

    def __enter__(self) -> "_TensorBoard":
        return self

    def __exit__(self, *exc: object) -> None:
        for writer in self.writers.values():
            writer.close()
