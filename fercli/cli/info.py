"""`fercli info`: what an artifact is, its shapes, counts and lineage."""

from __future__ import annotations

import typer
from rich.table import Table

from fercli import artifacts
from fercli.cli.app import app
from fercli.cli.common import bold, out as stdout, print_json


@app.command(help="Show an artifact's kind, shapes, class and subject counts, and lineage.")
def info(
    path: str = typer.Argument(..., help="Artifact file ('-' = standard input)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON to stdout instead of tables."),
) -> None:
    with artifacts.open_artifact(path, None, "info", whole=False) as f:  # info never reads frames or code maps
        summary = artifacts.summarize(f, path)
        if summary["kind"] == "model":
            from fercli.models.summary import model_summary  # torch only when needed

            summary.update(model_summary(artifacts.read_model(f, artifacts.display_name(path))))
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
                "trainable_params", "fixed_params", "flops"):
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
    for key in ("folds", "split", "planes"):
        if s.get(key):
            out.print(bold(f"{key}:") + " " + ", ".join(f"{k}: {v}" for k, v in s[key].items()))
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
            t.add_row(str(i), entry.get("stage", "?"), entry.get("time", ""), entry.get("command", ""))
        out.print(t)
