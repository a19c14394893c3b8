"""`fercli evaluate`: accuracy, per-class P/R/F1, confusion matrices, folds, parameters, FLOPs, latency."""

from __future__ import annotations

from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from fercli import artifacts
from fercli.cli.app import app
from fercli.cli.common import FIGURE, ThreadsOpt, bold, err, examples, number_opt, out as stdout, output_option, print_json, progress_bar
from fercli.errors import FercliError


@app.command(help="Evaluate a trained model on the clips its partition record holds out (replayed in DATA or a copy of it); new data is scored whole.",
             epilog=examples("fercli evaluate model.h5 ck-folds.h5 -o report.h5 --figure cm.pdf"))
def evaluate(
    model: str = typer.Argument(..., help="Model artifact from `fercli train`."),
    data: str = typer.Argument(..., help="Clips artifact ('-' = standard input)."),
    fold: Optional[int] = number_opt(None, "--fold", help="Evaluate fold K only (default: the fold(s) the model held out).", min=0, max=100_000),
    split: str = typer.Option("test", "--split", help="test (the recorded held-out part) | all (every labelled clip; refused if the model trained on some)."),
    include_training_data: bool = typer.Option(False, "--include-training-data", help="With --split all: score clips the model trained on too (the report says so)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON to stdout."),
    output: Optional[str] = output_option(None, "-o", "--output", help="Also write the results as a 'report' artifact."),
    figure: Optional[str] = output_option(None, "--figure", writes=FIGURE, help="Write the row-normalised confusion matrix (like Fig 3.7) as .png, .pdf or .svg."),
    device: str = typer.Option("auto", "--device", help="Device for the predictions: auto (CUDA when available) | cpu | cuda (latency is always CPU)."),
    no_latency: bool = typer.Option(False, "--no-latency", help="Skip the CPU latency measurement."),
    threads: int = ThreadsOpt,
) -> None:
    if as_json and output == "-":
        raise FercliError("--json and -o - both want standard output: write the report to a file")
    if include_training_data and split != "all":
        raise FercliError("--include-training-data goes with --split all (the test part never holds training clips)")
    from fercli.device import configure_cpu
    from fercli.evaluate import evaluate as run_evaluate
    from fercli.protocol import data_origins, load_model_file
    from fercli.protocol.provenance import data_summary, model_summary

    configure_cpu(threads, device)

    mf = load_model_file(model, "evaluate")
    clips, ident, lineage = artifacts.load_clips(data, "evaluate", lazy=True)  # samples are read a load at a time
    with progress_bar("evaluate") as bar:
        result = run_evaluate(mf, clips, fold=fold, split=split, device=device, latency=not no_latency, progress=bar,
                              identity={**ident, "origins": data_origins(lineage)}, include_training_data=include_training_data)
    result["data"] = ident
    result["provenance"] = {"model": model_summary(mf.lineage), "data": data_summary(lineage)}  # what fercli.results names rows by
    predictions = result.pop("predictions")  # per-sample arrays: in the report artifact, not the JSON
    if figure is not None:
        from fercli import figures

        figures.save(figures.confusion_figure(result), figure)
    if output is not None:
        entry = artifacts.lineage_entry("evaluate", {"fold": fold, "split": split, "include_training_data": include_training_data},
                                        [mf.identity, ident])
        artifacts.save_report(output, result, artifacts.combine_lineage([mf.lineage, lineage], entry), predictions)
    if as_json:
        print_json(result)
        return
    _show(result, err if output == "-" else stdout)


def _show(r: dict, out: Console) -> None:
    names = r["class_names"]
    pooled = r["pooled"]
    head = Table(show_header=False, box=None, pad_edge=False)
    head.add_row(bold("model"), f"{r['arch']} ({r['model']['path']})")
    if r["partition"]["source"] != "record":
        head.add_row(bold("partition"), r["partition"]["source"])
    for f in r["folds"]:
        b = f["baselines"]
        head.add_row(bold(f["part"]), f"accuracy {f['accuracy']:.4f} on {f['n']} samples of {f['clips']} clips "
                     f"(chance {b['chance']:.4f}, majority {b['majority']:.4f} '{b['majority_class']}')")
    if len(r["folds"]) > 1:
        head.add_row(bold("mean ± std"), f"{r['accuracy_mean']:.4f} ± {r['accuracy_std']:.4f} over {len(r['folds'])} folds")
    skipped = sum(e.get("skipped_trained_clips", 0) for e in r["partition"].get("runs", []))
    if skipped:
        head.add_row(bold("not scored"), f"{skipped} clip(s) the model trained on")
    head.add_row(bold("parameters"), f"{r['trainable_params']:,} trainable, {r.get('frozen_params', 0):,} frozen, {r['fixed_params']:,} fixed")
    head.add_row(bold("FLOPs"), f"{r['flops']:,} per sample" if r.get("flops") is not None else "unknown")
    if r.get("cpu_latency_ms") is not None:
        head.add_row(bold("CPU latency"), f"{r['cpu_latency_ms']:.2f} ms per sample (median)")
    out.print(head)
    t = Table(title="per class")
    for col in ("class", "precision", "recall", "F1", "support"):
        t.add_column(col, justify="left" if col == "class" else "right")
    for name in names:
        c = pooled["per_class"][name]
        t.add_row(name, f"{c['precision']:.3f}", f"{c['recall']:.3f}", f"{c['f1']:.3f}", str(c["support"]))
    out.print(t)
    cm = Table(title="confusion (rows: true, columns: predicted; count / row %)")
    cm.add_column("true \\ pred")
    for name in names:
        cm.add_column(name, justify="right")
    for i, name in enumerate(names):
        cm.add_row(name, *[f"{pooled['confusion'][i][j]} / {100 * pooled['confusion_normalised'][i][j]:.0f}%" for j in range(len(names))])
    out.print(cm)
