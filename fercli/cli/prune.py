"""`fercli prune`: SE-weight statistics of an LB-MBNet over data and the kernels kept per ratio (thesis 5.2.3, 5.3.2)."""

from __future__ import annotations

from typing import Optional

import typer

from fercli import artifacts
from fercli.cli.app import app
from fercli.cli.common import OutputOpt, check_outputs, err, number_opt, progress_bar


@app.command(help="Score every LBC kernel by its mean SE weight over DATA and keep the best r'·c per block (thesis 5.2.3, Fig 5.4).")
def prune(
    model_path: str = typer.Argument(..., metavar="MODEL", help="Trained lb-mbnet model artifact."),
    data_path: str = typer.Argument(..., metavar="DATA", help="Clips artifact to collect SE weights over ('-' = standard input)."),
    output: str = OutputOpt,
    expansion: str = typer.Option(..., "--expansion", help="Target ratio r', or a decreasing list for segmented pruning (e.g. 40,20,10,6)."),
    split: str = typer.Option("train", "--split", help="Part of DATA to use: train (thesis 5.3.2), val, test or all."),
    fold: Optional[int] = number_opt(None, "--fold", help="Use the training part of subject-independent fold K (and the model's fold-K weights).", min=0, max=100_000),
    n_folds: int = number_opt(10, "--n-folds", help="Folds to compute by subject when the data has none.", min=2, max=100_000),
    seed: int = number_opt(0, "--seed", help="Seed for computed folds and --limit sampling.", min=0, max=2**63 - 1),
    limit: Optional[int] = number_opt(None, "--limit", help="At most N clips (random, seeded); default all.", min=1),
    batch_size: int = number_opt(256, "--batch-size", help="Samples per forward pass.", min=1, max=65_536),
    bins: int = number_opt(50, "--bins", help="Histogram bins of the stored SE-weight distribution.", min=1, max=100_000),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when available), cpu, cuda, cuda:N."),
    plot: Optional[str] = typer.Option(None, "--plot", help="Also draw the SE-weight histograms of Fig 5.4 to this PNG."),
) -> None:
    import torch

    from fercli import prune as P
    from fercli.errors import FercliError
    from fercli.models import registry
    from fercli.train.checkpoint import fold_state, load_model_file

    check_outputs([model_path, data_path], [output, plot])
    schedule = P.parse_schedule(expansion)
    if batch_size <= 0 or bins <= 0 or (limit is not None and limit <= 0):
        raise FercliError("--batch-size, --bins and --limit must be positive")
    mf = load_model_file(model_path, "prune")
    state = fold_state(mf, fold, "prune")
    source = artifacts.ModelRecord(mf.record.arch, mf.record.config, state, mf.record.class_names, mf.record.history,
                                   {k: v for k, v in mf.record.extra.items() if k in ("data_prep", "fold", "run", "rebuilt")})
    model = registry.from_record(source)
    P.prunable_blocks(model)  # refuse a model without LBC blocks before reading the data
    clips, data_id, data_lineage = artifacts.load_clips(data_path, "prune")
    samples, info = P.choose_samples(clips, source, split, fold, n_folds, seed, limit, model)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        model.to(device)
    except (RuntimeError, AssertionError) as exc:
        raise FercliError(f"cannot use device '{device}': {str(exc).splitlines()[0]}") from None
    with progress_bar("SE statistics") as progress:
        result = P.prune(source, model, P.batches_of(samples, batch_size, device), len(samples), schedule, bins, info, progress)
    params = {"expansion": schedule, "split": split, "fold": fold, "n_folds": n_folds, "seed": seed, "limit": limit, "bins": bins,
              "samples": result.samples, "device": device}
    entry = artifacts.lineage_entry("prune", params, [mf.identity, data_id])
    P.save_pruning(output, result, artifacts.combine_lineage([mf.lineage, data_lineage], entry))
    if plot:
        P.plot_se_histograms(result, plot)
    r = source.config.get("expansion")
    steps = ", ".join(f"r'={s}: {sum(result.kept_counts(i))} kernels" for i, s in enumerate(schedule))
    err.print(f"prune: SE weights of {len(result.blocks)} LBC blocks over {result.samples} samples (r={r}); kept {steps}")
