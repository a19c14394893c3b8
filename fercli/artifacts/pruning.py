"""The 'pruning' kind: SE-weight channel statistics of a model (thesis chapter 5)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import h5py
import numpy as np

from fercli.artifacts.attributes import read_json_attr, write_json_attr
from fercli.artifacts.base import display_name
from fercli.artifacts.lineage import artifact_identity, read_lineage
from fercli.artifacts.models import ModelRecord, _model_layout, read_array_group, read_model, read_model_header, write_model
from fercli.artifacts.opening import open_artifact
from fercli.artifacts.output import create_artifact
from fercli.artifacts.validation import LAYOUTS, _check_dataset, _damaged, _json

# --------------------------------------------------------------------------- pruning
#
# Written by ``fercli prune`` (thesis 5.2.3, 5.3.2):
#     source/                  the source model (attrs arch/config/class_names/..., weights/)
#     blocks/<i>/mean          (C,) float64 mean SE weight per LBC kernel
#     blocks/<i>/std           (C,) float64
#     blocks/<i>/hist          (bins,) int64 histogram of every gate value in [0, 1]
#     kept/<step>/<i>          sorted kept channel indices of block i for schedule[step]
#     attrs pruning (JSON)     schedule, blocks [{name, in_chs, mid_chs, kept: [...]}],
#                              samples, data (how they were chosen), bins


@dataclass
class BlockStats:
    name: str
    in_chs: int
    mid_chs: int
    mean: np.ndarray
    std: np.ndarray
    hist: np.ndarray


@dataclass
class Pruning:
    source: ModelRecord
    schedule: list[float]
    blocks: list[BlockStats]
    kept: list[list[np.ndarray]]  # [step][block] -> sorted channel indices
    samples: int
    data: dict = field(default_factory=dict)
    source_arrays: dict = field(default_factory=dict)  # the source's partition record arrays (carried to rebuild)

    def kept_counts(self, step: int) -> list[int]:
        return [len(k) for k in self.kept[step]]


def save_pruning(path: str, p: Pruning, lineage: Sequence[dict]) -> None:
    meta = {"schedule": p.schedule, "samples": p.samples, "source_arch": p.source.arch}
    with create_artifact(path, "pruning", lineage, meta) as f:
        write_model(f.create_group("source"), p.source, arrays=p.source_arrays)
        g = f.create_group("blocks")
        for i, s in enumerate(p.blocks):
            b = g.create_group(str(i))
            b.create_dataset("mean", data=s.mean)
            b.create_dataset("std", data=s.std)
            b.create_dataset("hist", data=s.hist)
        k = f.create_group("kept")
        for step, kept in enumerate(p.kept):
            sg = k.create_group(str(step))
            for i, idx in enumerate(kept):
                sg.create_dataset(str(i), data=idx)
        write_json_attr(f, "pruning", {
            "schedule": p.schedule, "samples": p.samples, "data": p.data,
            "blocks": [{"name": s.name, "in_chs": s.in_chs, "mid_chs": s.mid_chs, "kept": [len(kk[i]) for kk in p.kept]} for i, s in enumerate(p.blocks)],
        })


def load_pruning(path: str, stage: str) -> tuple[Pruning, dict, list[dict]]:
    with open_artifact(path, "pruning", stage) as f:
        return read_pruning(f, display_name(path)), artifact_identity(f, path), read_lineage(f)


def read_pruning(f: h5py.File, name: str, weights: bool = True) -> Pruning:
    """The pruning artifact open (and validated) in ``f``; ``weights=False`` leaves the
    source model's weights and partition arrays unread (statistics only: tables, figures)."""
    info = read_json_attr(f, "pruning", None)
    source = read_model(f["source"], name) if weights else read_model_header(f["source"])
    blocks = []
    for i, b in enumerate(info["blocks"]):
        g = f["blocks"][str(i)]
        blocks.append(BlockStats(b["name"], int(b["in_chs"]), int(b["mid_chs"]), g["mean"][()], g["std"][()], g["hist"][()]))
    kept = [[f["kept"][str(s)][str(i)][()].astype(np.int64) for i in range(len(blocks))] for s in range(len(info["schedule"]))]
    src = f["source"]
    source_arrays = {f"partition/{d}": read_array_group(src, f"partition/{d}")
                     for d in (src["partition"].keys() if weights and "partition" in src else [])}
    return Pruning(source, [float(x) for x in info["schedule"]], blocks, kept, int(info["samples"]), info.get("data") or {}, source_arrays)


def _pruning_layout(f: h5py.File, ds: dict[str, h5py.Dataset], name: str) -> None:
    """The 'pruning' layout, down to the kept indices (range, uniqueness, count per block)."""
    art = "pruning"
    info = _json(f, "pruning", name, art, dict, {}, required=True)
    schedule, blocks = info.get("schedule"), info.get("blocks")
    if not isinstance(schedule, list) or not schedule or not all(isinstance(r, (int, float)) and not isinstance(r, bool) and r > 0 for r in schedule):
        raise _damaged(name, art, "'schedule' must be a non-empty list of positive expansion ratios")
    if not isinstance(info.get("samples"), int) or isinstance(info.get("samples"), bool):
        raise _damaged(name, art, "'samples' must be a whole number")
    if not isinstance(info.get("data", {}), dict):
        raise _damaged(name, art, "'data' must be a JSON object")
    if not isinstance(blocks, list) or not all(isinstance(b, dict) for b in blocks):
        raise _damaged(name, art, "'blocks' must be a list of objects")
    for i, b in enumerate(blocks):
        if not isinstance(b.get("name"), str) or not all(isinstance(b.get(k), int) and not isinstance(b.get(k), bool) and b[k] > 0 for k in ("in_chs", "mid_chs")):
            raise _damaged(name, art, f"block {i} needs a name and positive whole in_chs and mid_chs")
    if "source" not in f or not isinstance(f["source"], h5py.Group):
        raise _damaged(name, art, "the group 'source' (the source model) is missing")
    _model_layout(f["source"], ds, name, art)
    for i, b in enumerate(blocks):
        for key, kind in (("mean", "float"), ("std", "float"), ("hist", "number")):
            _check_dataset(ds.get(f"blocks/{i}/{key}"), f"blocks/{i}/{key}", kind, name, art, 1, b["mid_chs"] if key != "hist" else None)
    for step in range(len(schedule)):
        for i, b in enumerate(blocks):
            where = f"kept/{step}/{i}"
            _check_dataset(ds.get(where), where, "int", name, art, 1)
            kept = ds[where][()]
            if len(kept) == 0 or len(kept) > b["mid_chs"]:
                raise _damaged(name, art, f"'{where}' keeps {len(kept)} of block {i}'s {b['mid_chs']} channels")
            if int(kept.min()) < 0 or int(kept.max()) >= b["mid_chs"]:
                raise _damaged(name, art, f"'{where}' holds channel indices outside 0..{b['mid_chs'] - 1} (e.g. {int(kept.min()) if kept.min() < 0 else int(kept.max())})")
            if len(np.unique(kept)) != len(kept):
                raise _damaged(name, art, f"'{where}' names a channel twice")


#: kind -> layout check run by :func:`validate` when an artifact is opened.


LAYOUTS["pruning"] = _pruning_layout
