"""`fercli train`: train any registered model with the one engine (thesis 3.3.1, 4.2.6, 5.3.1)."""

from __future__ import annotations

import json
import os
from typing import List, Optional

import typer

from fercli import artifacts
from fercli.cli.app import app
from fercli.cli.common import check_outputs, err, number_opt, parse_size
from fercli.errors import FercliError

# Model options with their own flag -> config key (registry names).
MODEL_FLAGS = {"input": "input", "plane": "plane", "rnn": "rnn", "depth": "depth", "expansion": "expansion", "width_mult": "width_mult"}


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


@app.command(help="Train a model (any architecture of chapters 3-5) on clips artifacts; writes a model artifact, checkpointed every epoch.")
def train(
    arch: str = typer.Argument(..., help="Architecture: plain-cnn, cnn-gru, lbptop-gru, multistream, mobilenet-v2, mobilenet-v3, lb-mbnet, ..."),
    data: List[str] = typer.Argument(..., help="One or more clips artifacts (several = cross-database training, classes reconciled by name)."),
    output: str = typer.Option(..., "-o", "--output", help="Model artifact to write (also the checkpoint --resume continues)."),
    fold: Optional[int] = number_opt(None, "--fold", help="Hold out fold K as the test part (subject-independent folds from `fercli split`).", min=0, max=100_000),
    folds: Optional[str] = typer.Option(None, "--folds", help="'all' (or N): train every fold in turn, all in one artifact; N = folds to compute if the data has none."),
    n_folds: int = number_opt(10, "--n-folds", help="Folds to compute by subject when the data has none.", min=2, max=100_000),
    val: float = number_opt(0.0, "--val", help="Hold out this fraction of the training subjects as a validation part.", min=0, below=1),
    task: str = typer.Option("expression", "--task", help="expression (clip labels) | identity (subject ids as classes: 4.2.6 stage 1)."),
    frame: str = typer.Option("last", "--frame", help="Frame models on sequences: last (peak) | first-last (neutral + peak, 4.3.1) | all."),
    frames: Optional[int] = number_opt(None, "--frames", help="Clip length for sequence models (resampled on the fly).", min=1, max=100_000),
    size: Optional[str] = typer.Option(None, "--size", help="Resize frames to N or WxH (ch4: 96, ch5: 32/48)."),
    epochs: Optional[int] = number_opt(None, "--epochs", help="Epochs (0 writes the initialised model). Default: 30; lb-mbnet 200.", min=0, max=1_000_000),
    batch_size: Optional[int] = number_opt(None, "--batch-size", help="GLOBAL batch size (split over torchrun ranks). Default 32; lb-mbnet 128.", min=1, max=65_536),
    lr: Optional[float] = number_opt(None, "--lr", help="Learning rate. Default: adam 1e-3; lb-mbnet sgd 0.1.", above=0, max=1000),
    optimizer: Optional[str] = typer.Option(None, "--optimizer", help="sgd (momentum 0.9) | adam."),
    momentum: float = number_opt(0.9, "--momentum", help="SGD momentum.", min=0, below=1),
    weight_decay: float = number_opt(0.0, "--weight-decay", help="L2 weight decay.", min=0, max=1000),
    schedule: Optional[str] = typer.Option(None, "--schedule", help="constant | cosine | step:E1,E2,... (x0.1 each; '@G' for another factor)."),
    seed: int = number_opt(0, "--seed", help="Seed of initialisation, batch order, augmentation and dropout.", min=0, max=2**63 - 1),
    rotation: Optional[float] = number_opt(None, "--rotation", help="Random rotation range in degrees (3.2.2; default 10, lb-mbnet 0).", min=0, max=180),
    flip: Optional[bool] = typer.Option(None, "--flip/--no-flip", help="Random horizontal flips (default on)."),
    shift: Optional[int] = number_opt(None, "--shift", help="Random width/height shift in pixels (5.3.1: 4; default 0, lb-mbnet 4).", min=0, max=4096),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda."),
    init_from: Optional[str] = typer.Option(None, "--init-from", help="Model artifact whose matching weights initialise this model."),
    freeze_loaded: bool = typer.Option(False, "--freeze", help="Freeze the weights loaded by --init-from."),
    streams: Optional[str] = typer.Option(None, "--streams", help="multistream: the trained stream models, comma-separated."),
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
) -> None:
    # --resume reads its checkpoint from -o on purpose; any other input at -o is refused.
    check_outputs([*data, init_from, *(streams.split(",") if streams else [])], [output])
    if output == "-":
        raise FercliError("train checkpoints into its output every epoch, so -o must be a file, not standard output")
    from fercli import train as T  # torch only when training
    from fercli.models import registry
    from fercli.train.engine import dist_from_env

    spec = registry.get_spec(arch)
    cfg = _parse_config(config)
    flags = {"input": input_kind, "plane": plane, "rnn": rnn, "depth": depth, "expansion": expansion, "width_mult": width_mult}
    for flag, value in flags.items():
        if value is not None:
            cfg[MODEL_FLAGS[flag]] = value
    if pool is not None:
        if pool not in ("max", "gru"):
            raise FercliError(f"--pool must be max (or gru, the default recurrent layer), not '{pool}'")
        cfg["pool" if "pool" in spec.defaults else "rnn"] = pool if "pool" in spec.defaults else ("max" if pool == "max" else "gru")
    if frames is not None:
        if frames <= 0:
            raise FercliError("--frames must be positive")
        if "frames" in spec.defaults:
            cfg["frames"] = frames
    if fold is not None and folds is not None:
        raise FercliError("give --fold K or --folds all, not both")
    all_folds = folds is not None
    if folds is not None and folds != "all":
        try:
            n_folds = int(folds)
        except ValueError:
            raise FercliError(f"--folds takes 'all' or a number of folds (got '{folds}')") from None
    if n_folds < 2:
        raise FercliError("--n-folds must be at least 2")
    if not 0 <= val < 1:
        raise FercliError("--val must be a fraction in [0, 1)")

    recipe = T.recipe_for(arch, epochs if epochs is not None else T.recipe_for(arch, 0)["epochs"])
    n_epochs = epochs if epochs is not None else recipe["epochs"]
    fit = T.FitOptions(
        epochs=n_epochs, batch_size=batch_size or recipe["batch_size"], lr=lr if lr is not None else recipe["lr"],
        optimizer=(optimizer or recipe["optimizer"]).lower(), momentum=momentum, weight_decay=weight_decay,
        schedule=schedule or recipe["schedule"], seed=seed,
        augment=T.AugmentConfig(rotation=rotation if rotation is not None else recipe["rotation"],
                                flip=flip if flip is not None else recipe["flip"], shift=shift if shift is not None else recipe["shift"]),
    )
    if fit.batch_size <= 0 or fit.lr <= 0:
        raise FercliError("--batch-size and --lr must be positive")
    opts = T.RunOptions(arch=arch, config=cfg, task=task, frame=frame, frames=frames, size=parse_size(size) if size else None,
                        fold=fold, all_folds=all_folds, n_folds=n_folds, val=val, device=device, freeze=freeze_loaded, fit=fit)

    datasets, lineages = [], []
    for path in data:
        clips, ident, lineage = artifacts.load_clips(path, "train")
        datasets.append((clips, ident))
        lineages.append(lineage)
    init = T.load_model_file(init_from, "train --init-from") if init_from else None
    stream_files = [T.load_model_file(p.strip(), "train --streams") for p in streams.split(",") if p.strip()] if streams else []
    if resume and not os.path.exists(output):
        raise FercliError(f"--resume continues the checkpoint at {output}, which does not exist")
    resume_file = T.load_model_file(output, "train --resume") if resume else None
    for mf in ([init] if init else []) + stream_files:
        lineages.append(mf.lineage)

    inputs = [ident for _, ident in datasets] + ([init.identity] if init else []) + [s.identity for s in stream_files]
    entry = artifacts.lineage_entry("train", {"arch": arch, "options": opts.fingerprint(), "epochs": fit.epochs, "device": device}, inputs)
    lineage = artifacts.combine_lineage(lineages, entry)
    main_rank = dist_from_env().is_main
    show = main_rank and not quiet

    saves = []

    def save(record, arrays) -> None:
        T.checkpoint.save_model_file(output, record, lineage, arrays)
        saves.append(record.extra.get("progress"))

    def on_epoch(part: str, h: dict) -> None:
        if not show:
            return
        bits = [f"{part}", f"epoch {h['epoch']}/{fit.epochs}", f"loss {h['loss']:.4f}", f"acc {h['train_acc']:.3f}"]
        if "val_acc" in h:
            bits.append(f"val {h['val_acc']:.3f}")
        if "test_acc" in h:
            bits.append(f"test {h['test_acc']:.3f}")
        bits += [f"lr {h['lr']:.3g}", f"{h['seconds']:.1f} s", f"{h['img_per_s'] or 0:.0f} samples/s"]
        err.print("  ".join(bits), highlight=False, soft_wrap=True)

    def on_init(report) -> None:
        if show:
            c = report.counts()
            err.print(f"init from {init_from}: {c['loaded']} tensors loaded, {c['new']} new, {c['skipped_for_shape']} skipped for shape"
                      + (f" (under '{report.prefix}')" if report.prefix else "") + (", loaded part frozen" if freeze_loaded else ""))

    def on_fold(part: str, e: dict) -> None:
        if show and e.get("test_acc") is not None:
            err.print(f"{part}: test accuracy {e['test_acc']:.4f} on {e['n_test']} held-out clips")

    from fercli.cli.common import progress_bar

    with progress_bar(f"train {arch}", quiet=not show) as bar:
        try:
            record = T.train(opts, datasets, init, stream_files, resume_file,
                             T.Callbacks(save=save if main_rank else None, progress=bar, on_epoch=on_epoch, on_init=on_init, on_fold=on_fold))
        except T.Stopped as stop:
            if saves or resume:
                where = saves[-1] if saves else (resume_file.record.extra.get("progress") or {})
                part = f"fold run {where.get('partition', 0) + 1}, " if all_folds else ""
                err.print(f"fercli: stopped by signal {stop.signum} at {part}epoch {where.get('epoch', 0)} of {fit.epochs}; "
                          f"checkpoint saved to {output}; resume with --resume", highlight=False, soft_wrap=True)
            else:
                err.print(f"fercli: stopped by signal {stop.signum} before the first epoch finished; nothing was written",
                          highlight=False, soft_wrap=True)
            raise typer.Exit(code=128 + stop.signum)
        except T.Diverged as bad:  # the diverged epoch was never saved: say what -o holds
            if saves:
                kept = f"{output} keeps the checkpoint of epoch {(saves[-1] or {}).get('epoch', bad.epoch - 1)}, the last finite one"
            elif resume:
                kept = f"{output} keeps the checkpoint --resume started from"
            else:
                kept = "nothing was written"
            raise FercliError(f"training diverged in epoch {bad.epoch} ({bad.what}): {kept}; lower --lr") from None
    if show and resume_file is not None and record is resume_file.record:
        err.print(f"{output} already holds the finished run ({fit.epochs} epochs): nothing to do")
        return
    if show:
        folds_done = record.extra.get("folds") or []
        accs = [f["test_acc"] for f in folds_done if f.get("test_acc") is not None]
        if len(accs) > 1:
            import numpy as np

            err.print(f"mean test accuracy over {len(accs)} folds: {np.mean(accs):.4f} ± {np.std(accs):.4f}")
        err.print(f"wrote {output}")
