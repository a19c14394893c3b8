"""`fercli export`: a model artifact to ONNX, whole or CNN + GRU for the live system (thesis 4.2.7)."""

from __future__ import annotations

import typer

from fercli import artifacts
from fercli.cli.app import app
from fercli.cli.common import Writes, err, examples, output_option
from fercli.errors import FercliError


def _onnx_files(path: str, split: bool) -> list[str]:
    """The files ``--onnx PATH`` writes: PATH, or with --split its -cnn and -gru twins."""
    from fercli.export import split_paths

    return list(split_paths(path)) if split else [path]


@app.command(help="Export a model to ONNX (checked with onnxruntime when installed); --split: CNN and GRU parts of a cnn-gru model.",
             epilog=examples("fercli export gru.h5 --onnx gru.onnx --split"))
def export(
    model: str = typer.Argument(..., help="A 'model' artifact ('-' = standard input)."),
    onnx: str = output_option(None, "--onnx", writes=Writes(expand=lambda path, params: _onnx_files(path, params["split"])), help="Output .onnx file (with --split: NAME-cnn.onnx and NAME-gru.onnx)."),
    split: bool = typer.Option(False, "--split", help="cnn-gru: write the per-frame CNN and the per-window GRU as two graphs."),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="Run the exported graph with onnxruntime (if installed) and compare with PyTorch."),
) -> None:
    from fercli import export as stage

    if not onnx:
        raise FercliError("say where to write: --onnx out.onnx")
    record, _, _ = artifacts.load_model(model, "export")
    report = stage.export_onnx(record, onnx, split=split, verify=verify)
    for path in report["files"]:
        diff = report["max_abs_diff"][path]
        check = f"max abs diff vs PyTorch {diff:.2e}" if diff is not None else ("not verified (onnxruntime not installed)" if verify else "not verified")
        err.print(f"export: wrote {path} ({record.arch}); {check}", soft_wrap=True, markup=False)
