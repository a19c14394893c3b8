"""ONNX export of trained models, whole or split for the live system (thesis 4.2.7, Fig 4.3).

"In this part, the CNN-GRU model will be separated into CNN and RNN parts": with
``split`` a ``cnn-gru`` model becomes two graphs, the CNN (one frame in, the
per-frame vector out: the probability distribution for ``input: probs``, the
128-d feature for ``input: features``) and the GRU (a sequence of those vectors
in, class logits out), so an app can run the CNN per frame and the GRU once per
window, as ``fercli live`` does.

Inputs are named after the registry's input convention (``image`` (B,C,H,W),
``clip`` (B,T,C,H,W), ``xt``/``yt``/``xy`` (B,M,1,h,w), floats in [0, 1]; the
GRU part takes ``sequence`` (B,T,D)); the batch axis (and the time axis of
sequences) is dynamic.  The class names, architecture, config and the sample
spec the model was trained with (``fercli_data_prep``: input size, channels,
frame picks) ride along as ONNX metadata (``fercli_class_names`` JSON etc.).

Uses torch's TorchScript-based exporter, which needs the ``onnx`` package;
``onnxruntime``, when importable, runs each exported graph on the same random
input as PyTorch and the largest absolute difference of the outputs is reported.
Files are written atomically.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import tempfile
import warnings
import numpy as np

from fercli import artifacts
from fercli.artifacts import ModelRecord
from fercli.errors import FercliError

OPSET = 17
#: Largest output difference, relative to the output's scale, accepted when verifying.
TOLERANCE = 1e-3


def split_paths(path: str) -> tuple[str, str]:
    """``out.onnx`` -> (``out-cnn.onnx``, ``out-gru.onnx``)."""
    stem, ext = os.path.splitext(path)
    return f"{stem}-cnn{ext or '.onnx'}", f"{stem}-gru{ext or '.onnx'}"


def _wrappers(model, split: bool, with_probs: bool = False):
    """[(module, example inputs, input names, output names, dynamic axes, suffix)].

    ``with_probs``: the CNN half also outputs the frame's class distribution
    (``probs``) from the same pass -- what ``live`` shows beside the GRU's label.
    """
    import torch
    from torch import nn

    if not split:
        inputs = tuple(model.dummy_inputs(1))
        names = list(model.inputs)
        axes = {n: {0: "batch"} for n in names}
        axes["logits"] = {0: "batch"}
        return [(model, inputs, names, ["logits"], axes, None)]

    if not model.sequence_halves:
        raise FercliError("--split needs a cnn-gru model (a CNN per frame and a GRU per window)")

    class CNNPart(nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, image):
            return self.m.frame_vectors_and_probs(image) if with_probs else self.m.frame_vectors(image)

    class GRUPart(nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, sequence):
            return self.m.sequence_logits(sequence)

    (frame,) = model.frame_model().dummy_inputs(1)
    frame = frame.clone()
    seq = torch.zeros(1, max(2, int(model.frames)), model.frame_dim)
    outs = ["vector", "probs"] if with_probs else ["vector"]
    # eval() on the wrappers too: the exporter restores the wrapper's own training
    # flag afterwards -- recursively -- and a fresh Module starts in training mode.
    return [
        (CNNPart(model).eval(), (frame,), ["image"], outs, {"image": {0: "batch"}, **{o: {0: "batch"} for o in outs}}, "cnn"),
        (GRUPart(model).eval(), (seq,), ["sequence"], ["logits"], {"sequence": {0: "batch", 1: "time"}, "logits": {0: "batch"}}, "gru"),
    ]


def _random_like(inputs, seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    return tuple(torch.rand(x.shape, generator=g) for x in inputs)


def export_onnx(record: ModelRecord, path: str, split: bool = False, verify: bool = True) -> dict:
    """Export ``record`` to ONNX at ``path`` (or its ``-cnn``/``-gru`` pair with ``split``).

    Returns ``{"files": [...], "max_abs_diff": {file: float | None}, "verified": bool}``;
    ``None`` diffs mean onnxruntime was not available to check.
    """
    from fercli.models import registry

    if importlib.util.find_spec("onnx") is None:
        raise FercliError("ONNX export needs the 'onnx' package: pip install onnx (and onnxruntime to verify the export)")
    if path == "-":
        raise FercliError("--onnx needs a file name, not '-'")
    model = registry.from_record(record).eval()
    parts = _wrappers(model, split)
    targets = list(split_paths(path)) if split else [path]
    for t in targets:
        artifacts.check_output_path(t)
    have_ort = verify and importlib.util.find_spec("onnxruntime") is not None
    meta = {"fercli_arch": record.arch, "fercli_config": json.dumps(record.config, sort_keys=True),
            "fercli_class_names": json.dumps(list(record.class_names)), "fercli_input_range": "[0, 1]",
            # how frames became the model's inputs in training (size, channels, frame picks): an app repeats it
            "fercli_data_prep": json.dumps(record.extra.get("data_prep") or {}, sort_keys=True)}
    report: dict = {"files": targets, "max_abs_diff": {}, "verified": have_ort}
    with contextlib.ExitStack() as stack:
        # Both halves of a split appear only if both exported (and checked) fine.
        temps = [stack.enter_context(artifacts.atomic_path(t, suffix=".onnx")) for t in targets]
        for (module, inputs, in_names, out_names, axes, part), tmp, target in zip(parts, temps, targets):
            _export_one(module, inputs, in_names, out_names, axes, tmp, {**meta, "fercli_part": part or "whole"})
            report["max_abs_diff"][target] = _check(module, inputs, tmp) if have_ort else None
    return report


def _export_one(module, inputs, in_names, out_names, axes, tmp: str, meta: dict) -> None:
    import onnx
    import torch

    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of the dynamo one, which
        # needs onnxscript; the TorchScript one handles every model here.
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(module, inputs, tmp, input_names=in_names, output_names=out_names, dynamic_axes=axes,
                              opset_version=OPSET, do_constant_folding=True, dynamo=False)
        except Exception as exc:  # an operator ONNX cannot express is a fact about the model, say so
            raise FercliError(f"torch.onnx could not export this model: {str(exc).strip().splitlines()[0][:200]}") from exc
    proto = onnx.load(tmp)
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, tmp)


def onnx_parts(model, split: bool, with_probs: bool = False) -> list[tuple[str, bytes]]:
    """In-memory ONNX graphs of an eval-mode model: [("cnn", b), ("gru", b)] with
    ``split``, else [("whole", b)].  ``live`` runs these with onnxruntime."""
    import io

    if importlib.util.find_spec("onnx") is None:
        raise FercliError("ONNX export needs the 'onnx' package: pip install onnx")
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for module, inputs, in_names, out_names, axes, part in _wrappers(model, split, with_probs):
            path = os.path.join(tmp, "part.onnx")
            _export_one(module, inputs, in_names, out_names, axes, path, {"fercli_part": part or "whole"})
            with open(path, "rb") as fh:
                out.append((part or "whole", io.BytesIO(fh.read()).getvalue()))
    return out


def _check(module, inputs, tmp: str) -> float:
    import onnxruntime as ort
    import torch

    x = _random_like(inputs)
    with torch.inference_mode():
        want = module(*x).numpy()
    session = ort.InferenceSession(tmp, providers=["CPUExecutionProvider"])
    feeds = {i.name: v.numpy() for i, v in zip(session.get_inputs(), x)}
    got = session.run(None, feeds)[0]
    if got.shape != want.shape:
        raise FercliError(f"the exported graph gives shape {got.shape}, PyTorch {want.shape}; nothing was written")
    diff = float(np.abs(got - want).max())
    # float32 kernels differ in summation order: ~1e-6 is normal, 1e-3 of the
    # output's scale is a broken export.
    if not diff <= TOLERANCE * max(1.0, float(np.abs(want).max())):
        raise FercliError(f"the exported graph's outputs differ from PyTorch's by {diff:.3g}; nothing was written")
    return diff
