"""`fercli info`: what an artifact is, its shapes, counts and lineage."""

from __future__ import annotations

import typer
from rich.table import Table

from fercli import artifacts
from fercli.cli.app import app
from fercli.cli.common import bold, examples, out as stdout, print_json


@app.command(help="Show an artifact's kind, shapes, class and subject counts, and lineage.",
             epilog=examples("fercli info model.h5", "fercli info aligned.h5 --json | jq .face_found_rate"))
def info(
    path: str = typer.Argument(..., help="Artifact file ('-' = standard input)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON to stdout instead of tables."),
) -> None:
    with artifacts.open_artifact(path, None, "info", whole=False) as f:  # info never reads frames or code maps
        summary = artifacts.summarize(f, path)
        if summary["kind"] == "model":
            from fercli.models.summary import model_summary  # torch only when needed
            from fercli.protocol.partition import describe, read_partition

            name = artifacts.display_name(path)
            record = artifacts.read_model(f, name)
            summary.update(model_summary(record))
            summary["partition"] = describe(read_partition(f, record.extra.get("partition"), name))
            summary["data_prep"] = record.extra.get("data_prep")
    if as_json:
        print_json(summary)
        return
    _show(summary)


def _show(s: dict) -> None:
    out = stdout  # tables go to stdout, printed literally (names come from data)
    head = Table(show_header=False, box=None, pad_edge=False)
    head.add_row(bold("artifact"), s["path"])
    head.add_row(bold("kind"), f"{s['kind']} (schema {s['schema']}, fercli {s['fercli_version']}, {s['created']})")
    for key in ("clips", "frames", "frame_shape", "clip_length", "subjects", "face_found_rate", "arch", "epochs_trained",
                "trainable_params", "frozen_params", "fixed_params", "flops"):
        if key in s and s[key] not in (None, {}, []):
            head.add_row(bold(key.replace("_", " ")), str(s[key]))
    if s.get("meta"):
        head.add_row(bold("meta"), ", ".join(f"{k}={v}" for k, v in s["meta"].items()))
    out.print(head)
    if s.get("class_counts"):
        t = Table(title="classes")
        t.add_column("class")
        t.add_column("clips", justify="right")
        for name, count in s["class_counts"].items():
            t.add_row(name, str(count))
        out.print(t)
    for key in ("folds", "split", "planes", "segments"):
        if s.get(key):
            out.print(bold(f"{key}:") + " " + ", ".join(f"{k}: {v}" for k, v in s[key].items()))
    _show_results(s, out)
    if s.get("partition"):
        from fercli.protocol.partition import describe_lines

        out.print(bold("partition:") + " " + "\n  ".join(describe_lines(s["partition"])))
    t = Table(title="datasets")
    t.add_column("name")
    t.add_column("shape")
    t.add_column("dtype")
    for name, d in s["datasets"].items():
        t.add_row(name, "×".join(map(str, d["shape"])) or "scalar", d["dtype"])
    out.print(t)
    if s["lineage"]:
        t = Table(title="lineage")
        t.add_column("#", justify="right")
        t.add_column("stage")
        t.add_column("time")
        t.add_column("command")
        for i, entry in enumerate(s["lineage"]):
            t.add_row(str(i), *(str(entry.get(k, d)) for k, d in (("stage", "?"), ("time", ""), ("command", ""))))  # lineage is untrusted JSON: any type prints
        out.print(t)


# -- analysis (issue 14): a model's classes, config and fold results; a report's accuracy


def _show_results(s: dict, out) -> None:
    if s["kind"] not in ("model", "report"):
        return
    if s.get("class_names"):
        out.print(bold("classes:") + " " + ", ".join(map(str, s["class_names"])))
    if s["kind"] == "model" and s.get("config"):
        out.print(bold("config:") + " " + ", ".join(f"{k}={v}" for k, v in s["config"].items()))
    if s["kind"] == "report" and s.get("accuracy") is not None:
        line = f"{s['accuracy']:.4f} on {s.get('samples')} samples"
        if len(s.get("fold_results") or []) > 1 and s.get("accuracy_mean") is not None:
            line += f"; mean ± std over folds {s['accuracy_mean']:.4f} ± {s['accuracy_std']:.4f}"
        out.print(bold("accuracy:") + f" {line}" + (f" (model {s['model']})" if s.get("model") else ""))
    rows = s.get("fold_results") or []
    if rows:
        t = Table(title="fold results")
        for col in ("fold", "part", "epochs" if s["kind"] == "model" else "samples", "test accuracy" if s["kind"] == "model" else "accuracy"):
            t.add_column(col, justify="left" if col == "part" else "right")
        for r in rows:
            acc = r.get("test_acc") if s["kind"] == "model" else r.get("accuracy")
            size = r.get("epochs") if s["kind"] == "model" else r.get("n")
            t.add_row("" if r.get("fold") is None else str(r["fold"]), str(r.get("part") or ""), str(size),
                      "" if acc is None else f"{acc:.4f}")
        out.print(t)
