"""`fercli prune`: SE-weight statistics of an LB-MBNet over data and the kernels kept per ratio (thesis 5.2.3, 5.3.2)."""

from __future__ import annotations

from typing import Optional

import typer

from fercli import artifacts
from fercli.cli.app import app
from fercli.cli.common import FIGURE, OutputOpt, ThreadsOpt, err, examples, number_opt, output_option, progress_bar


@app.command(help="Score every LBC kernel by its mean SE weight over the model's recorded training part of DATA and keep the best r'·c per block (thesis 5.2.3, Fig 5.4).",
             epilog=examples("fercli prune r80.h5 cifar.h5 --expansion 6 --plot se.pdf -o r80-to-r6.h5"))
def prune(
    model_path: str = typer.Argument(..., metavar="MODEL", help="Trained lb-mbnet model artifact."),
    data_path: str = typer.Argument(..., metavar="DATA", help="Clips artifact the model was trained on, or a copy of it ('-' = standard input)."),
    output: str = OutputOpt,
    expansion: str = typer.Option(..., "--expansion", help="Target ratio r', or a decreasing list for segmented pruning (e.g. 40,20,10,6)."),
    split: str = typer.Option("train", "--split", help="train: the training part the model's partition record lists (thesis 5.3.2) | all: every clip of DATA."),
    fold: Optional[int] = number_opt(None, "--fold", help="A --folds all model: prune fold K's weights (statistics from fold K's training part).", min=0, max=100_000),
    seed: int = number_opt(0, "--seed", help="Seed of --limit's sampling.", min=0, max=2**63 - 1),
    limit: Optional[int] = number_opt(None, "--limit", help="At most N clips (random, seeded); default all.", min=1),
    batch_size: int = number_opt(256, "--batch-size", help="Samples per forward pass.", min=1, max=65_536),
    bins: int = number_opt(50, "--bins", help="Histogram bins of the stored SE-weight distribution.", min=1, max=100_000),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when available), cpu, cuda, cuda:N."),
    plot: Optional[str] = output_option(None, "--plot", writes=FIGURE, help="Also draw the SE-weight histograms of Fig 5.4 to this .png, .pdf or .svg."),
    threads: int = ThreadsOpt,
) -> None:
    from fercli import prune as P
    from fercli.device import configure_cpu, resolve_device
    from fercli.errors import FercliError
    from fercli.models import registry
    from fercli.protocol import data_origins, load_model_file

    schedule = P.parse_schedule(expansion)
    if batch_size <= 0 or bins <= 0 or (limit is not None and limit <= 0):
        raise FercliError("--batch-size, --bins and --limit must be positive")
    configure_cpu(threads, device)
    dev = resolve_device(device)
    mf = load_model_file(model_path, "prune")
    source, source_arrays = P.source_of(mf, fold)
    model = registry.from_record(source)
    P.prunable_blocks(model)  # refuse a model without LBC blocks before reading the data
    clips, data_id, data_lineage = artifacts.load_clips(data_path, "prune", lazy=True)  # samples are read a batch at a time, as evaluate reads them
    samples, info = P.choose_samples(mf, clips, {**data_id, "origins": data_origins(data_lineage)}, model, split, fold, limit, seed)
    model.to(dev)
    with progress_bar("SE statistics") as progress:
        result = P.prune(source, model, P.batches_of(samples, batch_size, dev), len(samples), schedule, bins, info, progress, source_arrays)
    params = {"expansion": schedule, "split": split, "fold": fold, "seed": seed, "limit": limit, "bins": bins,
              "samples": result.samples, "device": str(dev)}
    entry = artifacts.lineage_entry("prune", params, [mf.identity, data_id])
    P.save_pruning(output, result, artifacts.combine_lineage([mf.lineage, data_lineage], entry))
    if plot:
        from fercli import figures

        figures.save(figures.se_histograms(result), plot)
    r = source.config.get("expansion")
    steps = ", ".join(f"r'={s}: {sum(result.kept_counts(i))} kernels" for i, s in enumerate(schedule))
    part = f" ({info['run']}: training part)" if "run" in info else ""
    err.print(f"prune: SE weights of {len(result.blocks)} LBC blocks over {result.samples} samples{part} (r={r}); kept {steps}")
