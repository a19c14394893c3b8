"""Thesis-style results tables (Tables 3.1-3.5, 4.1-4.3, 5.2-5.6) from ``report`` artifacts.

A row's name comes from what the report records -- the model's architecture and
config, and its history (``report.provenance``, :mod:`fercli.protocol.provenance`):
what it trained on, identity pre-training, the pruning steps that led to it -- never
from how it was invoked, so a Makefile cannot print a model under another model's
name.  A caption (``(a)``, a table's own wording) may precede the derived name; it
never replaces it.

Two layouts:

- **flat** (:func:`flat_table`): one row per report -- accuracy (mean ± std over the
  evaluated folds), folds, trainable and fixed parameters, FLOPs, CPU latency, and
  optionally the epochs of every training in the model's history; the evaluated
  data set goes into the heading when all rows share it, else into a column;
- **by data** (:func:`by_data_table`): one column per evaluated data set (CK+,
  FER2013, SFEW, AFEW as in Tables 4.1-4.3), reports with one row name side by side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from fercli import artifacts
from fercli.errors import FercliError
from fercli.protocol.provenance import dataset_name

#: Short names of the sequence inputs (3.2.3): static-feature and probability-distribution sequences.
SEQUENCE_INPUTS = {"features": "SF", "probs": "PD"}
RNN_NAMES = {"gru": "GRU", "lstm": "LSTM", "max": "max pooling"}
MOBILENETS = {"v2": "MobileNetV2", "v3-large": "MobileNetV3-Large", "v3-small": "MobileNetV3-Small"}


@dataclass
class Result:
    """One report as a table row."""

    report: dict
    path: str
    caption: str = ""

    @property
    def name(self) -> str:
        derived = model_name(self.report)
        return f"{self.caption} {derived}".strip() if self.caption else derived

    @property
    def data(self) -> str:
        """The evaluated data set, as a column heading ('CK+', 'synth', 'AFEW')."""
        d = (self.report.get("provenance") or {}).get("data") or {}
        return " + ".join(dataset_name(x) for x in d.get("datasets") or []) or "?"


def read_result(spec: str) -> Result:
    """``[CAPTION=]REPORT.h5`` -> Result (the report's JSON)."""
    caption, sep, path = spec.rpartition("=")
    if not sep:
        caption, path = "", spec
    with artifacts.open_artifact(path, "report", "table") as f:
        report = artifacts.read_json_attr(f, "report", {}) or {}
    return Result(report, path, caption.strip())


# --------------------------------------------------------------------------- row names


def _backbone(arch: str, cfg: dict) -> str:
    if arch == "plain-cnn":
        return "Plain CNN" + _width_note(cfg.get("width"))
    if arch.startswith("mobilenet"):
        variant = cfg.get("variant") or {"mobilenet-v2": "v2", "mobilenet-v3-small": "v3-small"}.get(arch, "v3-large")
        return MOBILENETS.get(variant, arch) + _width_note(cfg.get("width_mult"))
    return arch


def _width_note(width) -> str:
    return f" (width ×{float(width):g})" if width not in (None, 1, 1.0) else ""


def _stream_tag(stream: dict) -> str:
    """SF / PD / XT / YT, the letters of Fig 3.1's streams (with the pooling when not a GRU)."""
    arch, cfg = stream.get("arch"), stream.get("config") or {}
    if arch == "cnn-gru":
        tag = SEQUENCE_INPUTS.get(cfg.get("input", "features"), "?")
        rnn = cfg.get("rnn", "gru")
        return tag if rnn == "gru" else f"{tag} ({RNN_NAMES.get(rnn, rnn)})"
    if arch == "lbptop-gru":
        return str(cfg.get("plane", "xt")).upper()
    return str(arch)


def _ratio(r) -> str:
    if isinstance(r, (list, tuple)):  # one ratio per block
        return _ratio(r[0]) if len(set(r)) == 1 else "(per block)"
    return f"{float(r):g}"


def _lbmbnet(cfg: dict, expansions: Sequence) -> str:
    """LB-MBNet-59-r6; Re-LB-MBNet-59-r6, pruned r80 → r6 (one shot) or r80 → r40 → r20 → r6 (segmented)."""
    name = f"LB-MBNet-{cfg.get('depth', 59)}-r{_ratio(cfg.get('expansion', 6))}"
    if len(expansions) > 1:  # rebuilt after pruning (5.3.2)
        name = "Re-" + name + ", pruned " + " → ".join("r?" if x is None else f"r{_ratio(x)}" for x in expansions)
    channels = cfg.get("channels")
    if channels and list(channels) != [32, 16, 64, 128, 256, 512]:
        name += " (channels " + "-".join(map(str, channels)) + ")"
    if cfg.get("depthwise", "lbc") != "lbc":
        name += ", learned depthwise conv in place of LBC"
    return name


def architecture_name(arch: str, cfg: dict, expansions: Sequence = ()) -> str:
    """The model as the thesis's tables name it, from its architecture and config."""
    if arch == "plain-cnn":
        return "Static " + _backbone(arch, cfg)
    if arch.startswith("mobilenet"):
        return _backbone(arch, cfg)
    if arch == "cnn-gru":
        frames = cfg.get("frames", 10)
        return (f"{_backbone(cfg.get('backbone', 'plain-cnn'), cfg.get('backbone_config') or {})} + {RNN_NAMES.get(cfg.get('rnn', 'gru'), cfg.get('rnn'))} "
                f"with {SEQUENCE_INPUTS.get(cfg.get('input', 'features'), '?')} sequence" + (f" ({frames} frames)" if frames != 10 else ""))
    if arch == "lbptop-gru":
        return f"CNN + GRU with LBP-TOP {str(cfg.get('plane', 'xt')).upper()}" + _width_note(cfg.get("width"))
    if arch == "multistream":
        tags = [_stream_tag(s) for s in cfg.get("streams") or []]
        if cfg.get("fusion", "concat") == "average":
            return "Averaged outputs of " + ", ".join(tags)
        if sorted(tags) == ["PD", "SF", "XT", "YT"]:
            return "Fusion Multi-Stream Network (" + ", ".join(tags) + ")"
        return "Fusion Network with " + " & ".join(tags)
    if arch == "lb-mbnet":
        return _lbmbnet(cfg, expansions)
    return arch


def model_name(report: dict) -> str:
    """Architecture name, then what the model's history adds: identity pre-training
    (4.2.6), cross-database or aligned + unaligned training (4.3.2, 4.3.4), and the
    faces it was tested on when they are not the ones it trained on."""
    prov = report.get("provenance") or {}
    model, data = prov.get("model") or {}, prov.get("data") or {}
    name = architecture_name(str(report.get("arch", "?")), report.get("config") or {}, model.get("expansions") or ())
    notes = []
    if model.get("identity_pretrained"):
        notes.append("identity pre-trained")
    trained = model.get("trained_on") or []
    sets = list(dict.fromkeys(d for t in trained for d in t.get("datasets") or []))
    faces = list(dict.fromkeys(t.get("faces") for t in trained if t.get("faces")))
    if len(sets) > 1:
        notes.append("cross databases (" + " + ".join(dataset_name(s) for s in sets) + ")")
    if len(faces) > 1:
        notes.append("trained on " + " + ".join(faces) + " faces")
    if data.get("faces") and (faces and data["faces"] not in faces or len(faces) > 1):
        notes.append(f"tested on {data['faces']} faces")
    return name + (", " + ", ".join(notes) if notes else "")


# --------------------------------------------------------------------------- tables


def _accuracy(report: dict) -> str:
    acc, std, n = report.get("accuracy_mean"), report.get("accuracy_std") or 0.0, len(report.get("folds") or [])
    if acc is None:
        return "n/a"
    return f"{100 * acc:.1f} ± {100 * std:.1f}" if n > 1 else f"{100 * acc:.1f}"


def _epochs(report: dict) -> str:
    epochs = ((report.get("provenance") or {}).get("model") or {}).get("epochs") or []
    return " + ".join(map(str, epochs)) if epochs else "?"


def flat_table(results: Sequence[Result], title: str, epochs: bool = False) -> str:
    """One Markdown row per report (Tables 3.1/3.2, 3.5, 5.2/5.3)."""
    datasets = list(dict.fromkeys(r.data for r in results))
    one = len(datasets) == 1
    head = ["Model"] + ([] if one else ["Data"]) + ["Accuracy (%)", "Folds", "Trainable params", "Fixed params", "FLOPs (1e8)", "CPU ms/sample"]
    if epochs:
        head.append("Epochs")
    lines = [f"### {title}" + (f" — {datasets[0]}" if one and results else ""), "", "| " + " | ".join(head) + " |",
             "|" + "---|" * len(head)]
    for r in results:
        rep = r.report
        flops, ms = rep.get("flops"), rep.get("cpu_latency_ms")
        cells = [r.name] + ([] if one else [r.data]) + [
            _accuracy(rep), str(len(rep.get("folds") or [])), f"{(rep.get('trainable_params') or 0) / 1e6:.3f} M",
            f"{(rep.get('fixed_params') or 0) / 1e6:.3f} M", "n/a" if flops is None else f"{flops / 1e8:.3f}",
            "n/a" if ms is None else f"{ms:.1f}"]
        if epochs:
            cells.append(_epochs(rep))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def by_data_table(results: Sequence[Result], title: str) -> str:
    """Accuracy with one column per evaluated data set (Tables 4.1-4.3); rows by name,
    in order of first appearance; a cell is empty where that model was not evaluated."""
    columns = list(dict.fromkeys(r.data for r in results))
    rows: dict[str, dict[str, Result]] = {}
    for r in results:
        cell = rows.setdefault(r.name, {})
        if r.data in cell:
            raise FercliError(f"two reports for '{r.name}' on {r.data}: {cell[r.data].path} and {r.path}")
        cell[r.data] = r
    lines = [f"### {title}", "", "| Accuracy (%) | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for name, cells in rows.items():
        lines.append(f"| {name} | " + " | ".join(_accuracy(cells[c].report) if c in cells else "" for c in columns) + " |")
    folds = {c: sorted({len(r.report.get("folds") or []) for r in results if r.data == c}) for c in columns}
    lines += ["", "Folds per column: " + "; ".join(f"{c} {'/'.join(map(str, n))}" for c, n in folds.items()) + "."]
    return "\n".join(lines)


def table(specs: Sequence[str], title: str, by_data: bool = False, epochs: bool = False) -> str:
    results = [read_result(s) for s in specs]
    return by_data_table(results, title) if by_data else flat_table(results, title, epochs)

