"""`fercli evaluate`: accuracy, per-class P/R/F1, confusion matrices, folds, parameters, FLOPs, latency."""

from __future__ import annotations

from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from fercli import artifacts
from fercli.cli.app import app
from fercli.cli.common import bold, check_outputs, err, number_opt, out as stdout, print_json, progress_bar
from fercli.errors import FercliError


@app.command(help="Evaluate a trained model on its held-out fold / the official test part of DATA (or --split all).")
def evaluate(
    model: str = typer.Argument(..., help="Model artifact from `fercli train`."),
    data: str = typer.Argument(..., help="Clips artifact ('-' = standard input)."),
    fold: Optional[int] = number_opt(None, "--fold", help="Evaluate fold K only (default: the fold(s) the model held out).", min=0, max=100_000),
    split: str = typer.Option("test", "--split", help="test (held-out part) | all (every labelled clip)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON to stdout."),
    output: Optional[str] = typer.Option(None, "-o", "--output", help="Also write the results as a 'report' artifact."),
    figure: Optional[str] = typer.Option(None, "--figure", help="Write the row-normalised confusion matrix as a PNG (like Fig 3.7)."),
    device: str = typer.Option("cpu", "--device", help="Device for the predictions: cpu | cuda | auto (latency is always CPU)."),
    no_latency: bool = typer.Option(False, "--no-latency", help="Skip the CPU latency measurement."),
) -> None:
    if figure is not None and not figure.lower().endswith(".png"):
        raise FercliError(f"--figure writes a PNG: give a name ending in .png (got '{figure}')")
    check_outputs([model, data], [output, figure])
    if as_json and output == "-":
        raise FercliError("--json and -o - both want standard output: write the report to a file")
    from fercli.evaluate import confusion_figure, evaluate as run_evaluate
    from fercli.train import load_model_file

    mf = load_model_file(model, "evaluate")
    clips, ident, lineage = artifacts.load_clips(data, "evaluate")
    with progress_bar("evaluate") as bar:
        result = run_evaluate(mf, clips, fold=fold, split=split, device=device, latency=not no_latency, progress=bar)
    result["data"] = ident
    if figure is not None:
        import cv2

        title = f"{result['arch']}  acc {result['pooled']['accuracy']:.3f}"
        img = confusion_figure(result["pooled"]["confusion_normalised"], result["class_names"], title)
        with artifacts.atomic_path(figure, suffix=".png") as tmp:
            ok, buf = cv2.imencode(".png", img)
            if not ok:
                raise FercliError(f"could not encode {figure}")
            with open(tmp, "wb") as fh:
                fh.write(buf.tobytes())
    if output is not None:
        entry = artifacts.lineage_entry("evaluate", {"fold": fold, "split": split}, [mf.identity, ident])
        artifacts.save_report(output, result, artifacts.combine_lineage([mf.lineage, lineage], entry))
    if as_json:
        print_json(result)
        return
    _show(result, err if output == "-" else stdout)


def _show(r: dict, out: Console) -> None:
    names = r["class_names"]
    pooled = r["pooled"]
    head = Table(show_header=False, box=None, pad_edge=False)
    head.add_row(bold("model"), f"{r['arch']} ({r['model']['path']})")
    for f in r["folds"]:
        head.add_row(bold(f["part"]), f"accuracy {f['accuracy']:.4f} on {f['n']} samples")
    if len(r["folds"]) > 1:
        head.add_row(bold("mean ± std"), f"{r['accuracy_mean']:.4f} ± {r['accuracy_std']:.4f} over {len(r['folds'])} folds")
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
