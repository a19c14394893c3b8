"""Property-based fuzzing of every command that reads artifacts (issue 20), with Hypothesis.

Valid artifacts of every kind -- clips, planes (clips with LBP-TOP maps),
models, reports, prunings -- are built once from small synthetic data
(:func:`build_bases`).  A Hypothesis strategy (:func:`mutations`) then damages
a copy: an attribute of another type or JSON, a dataset of another shape or
dtype, offsets out of range, NaN/inf, an empty dataset, a huge declared size,
soft / external links, external storage.  The property
(:func:`check_command`): every command that reads it (info, table, show,
align, resample, lbptop, split, merge, train, evaluate, prune, rebuild,
export) either works or exits 2 with one ``fercli:`` sentence, no traceback,
its inputs unchanged, in bounded time and memory.  Commands run in the warm
fork server of the fault suite (:class:`fault_harness.Runner`), so hundreds of
examples cost seconds, not minutes.  The short profile runs in the suite
(tests/faults/test_fuzz.py); the long one is ``bench/fuzz.py --examples N``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import h5py
import numpy as np
from hypothesis import strategies as st

from fault_harness import Runner, clips, save

TRAIN = ["--config", "width=0.25", "--config", "input_size=32", "--batch-size", "2", "--quiet", "--epochs", "1", "--no-latency"]
#: Peak memory of one fuzzed command (MiB above the warm server) and its time limit.
MAX_MB = 1500
TIMEOUT = 60

KINDS = ("clips", "planes", "model", "report", "pruning")


def build_bases(runner: Runner, folder: Path) -> dict[str, Path]:
    """One valid artifact of each kind in ``folder`` (kind -> path)."""
    folder.mkdir(parents=True, exist_ok=True)
    save(folder / "clips.h5", clips(n=6, frames=5, size=(32, 32)))
    steps = [
        ["lbptop", "clips.h5", "-o", "planes.h5"],
        ["train", "plain-cnn", "clips.h5", *[a for a in TRAIN if a != "--no-latency"], "-o", "model.h5"],
        ["evaluate", "model.h5", "clips.h5", "--split", "all", "--include-training-data", "--no-latency", "-o", "report.h5"],
    ]
    for args in steps:
        proc = runner.run(*args, cwd=folder)
        assert proc.returncode == 0, (args, proc.stderr.decode(errors="replace"))
    from test_hostile import tiny_pruning

    tiny_pruning(folder / "pruning.h5")
    return {kind: folder / f"{kind}.h5" for kind in KINDS}


# --------------------------------------------------------------------------- mutations


@dataclass(frozen=True)
class Mutation:
    """One damage to an artifact: ``apply(h5file, folder)``; ``label`` says what it was."""

    label: str
    apply: Callable[[h5py.File, Path], None]


def _objects(path: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """(dataset paths, (object path, attribute name)) of an HDF5 file."""
    datasets: list[str] = []
    attrs: list[tuple[str, str]] = []
    with h5py.File(path, "r") as f:
        attrs.extend(("/", a) for a in f.attrs)

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                datasets.append(name)
            attrs.extend((name, a) for a in obj.attrs)

        f.visititems(visit)
    return sorted(datasets), sorted(attrs)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
ATTR_VALUES = st.one_of(
    st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.just(b"\xff\xfe"), st.lists(st.integers(-5, 5), max_size=4).map(lambda v: np.asarray(v, np.int64)),
    JSON_VALUES.map(lambda v: json.dumps(v, allow_nan=True)), st.just("{"), st.just(""),
)
SPECIAL = st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -1.0, 2.0**62, -2.0**62, 1e300])


def _replace(f: h5py.File, name: str, data) -> None:
    del f[name]
    f.create_dataset(name, data=data)


#: The mutation families: what a dataset mutation does, what an attribute mutation does.
DATASET_OPS = ("nonfinite", "extreme", "dtype", "shape", "empty", "truncate", "extend", "delete", "huge",
               "soft_link", "dangling", "external_link", "external_storage", "scalar", "transpose")
ATTR_OPS = ("value", "json", "delete")
FAMILIES = tuple(f"dataset {op}" for op in DATASET_OPS) + tuple(f"attr {op}" for op in ATTR_OPS)


@st.composite
def _dataset_mutation(draw, datasets: list[str], ops: tuple[str, ...] = DATASET_OPS) -> Mutation:
    name = draw(st.sampled_from(datasets))
    op = draw(st.sampled_from(ops))
    special = draw(SPECIAL)
    index = draw(st.integers(0, 2**16))
    dtype = draw(st.sampled_from(["f4", "f8", "i1", "u1", "i8", "u8", "S4", "bool", "f2"]))
    other = draw(st.sampled_from(datasets))

    def apply(f: h5py.File, folder: Path) -> None:
        if f[name].size > 1 << 24:  # made huge by an earlier damage of this example
            return
        old = f[name][()]
        arr = np.asarray(old)
        if op in ("nonfinite", "extreme"):
            if arr.size == 0 or arr.dtype.kind not in "fiub":
                return
            new = arr.astype(np.float64) if op == "nonfinite" else arr.astype(np.float64)
            new.flat[index % arr.size] = special
            if op == "extreme" and arr.dtype.kind in "iu":
                new = np.nan_to_num(new, nan=0, posinf=2**62, neginf=-2**62).astype(np.int64)
            _replace(f, name, new)
        elif op == "dtype":
            try:
                _replace(f, name, arr.astype(dtype))
            except (ValueError, TypeError, OverflowError):
                _replace(f, name, np.zeros(arr.shape, dtype))
        elif op == "shape":
            _replace(f, name, arr.reshape(-1) if arr.ndim != 1 else arr.reshape(-1, 1))
        elif op == "empty":
            _replace(f, name, np.zeros((0, *arr.shape[1:]), arr.dtype if arr.dtype.kind != "O" else "f4"))
        elif op == "truncate":
            if arr.ndim:
                _replace(f, name, arr[: max(0, len(arr) - 1 - index % max(1, len(arr)))])
        elif op == "extend":
            if arr.ndim and len(arr):
                _replace(f, name, np.concatenate([arr, arr[:1]]))
        elif op == "delete":
            del f[name]
        elif op == "huge":
            del f[name]
            shape = (2**40,) + tuple(arr.shape[1:]) if arr.ndim else (2**40,)
            f.create_dataset(name, shape=shape, dtype=arr.dtype if arr.dtype.kind in "fiub" else "f4",
                             chunks=(1,) + tuple(arr.shape[1:]) if arr.ndim else (1,))
        elif op == "scalar":
            _replace(f, name, np.asarray(special))
        elif op == "transpose":
            if arr.ndim >= 2:
                _replace(f, name, np.ascontiguousarray(np.swapaxes(arr, 0, 1)))
        elif op == "soft_link":
            if other != name:
                del f[name]
                f[name] = h5py.SoftLink("/" + other)
        elif op == "dangling":
            del f[name]
            f[name] = h5py.SoftLink("/no/such/dataset")
        elif op == "external_link":
            side = folder / "side.h5"
            with h5py.File(side, "w") as s:
                s.create_dataset("d", data=arr if arr.dtype.kind != "O" else np.zeros(3))
            del f[name]
            f[name] = h5py.ExternalLink(str(side), "/d")
        elif op == "external_storage":
            raw = folder / "raw.bin"
            data = np.ascontiguousarray(arr if arr.dtype.kind in "fiub" else np.zeros(3, "f4"))
            raw.write_bytes(data.tobytes())
            del f[name]
            f.create_dataset(name, shape=data.shape, dtype=data.dtype, external=[(str(raw), 0, max(1, data.nbytes))])

    return Mutation(f"{op} {name}" + (f" ({special})" if op in ("nonfinite", "extreme", "scalar") else f" ({dtype})" if op == "dtype" else ""), apply)


@st.composite
def _attr_mutation(draw, attrs: list[tuple[str, str]], ops: tuple[str, ...] = ATTR_OPS) -> Mutation:
    where, attr = draw(st.sampled_from(attrs))
    op = draw(st.sampled_from(ops))
    value = draw(ATTR_VALUES)
    key_choice = draw(st.integers(0, 2**16))
    new_json = draw(JSON_VALUES)

    def apply(f: h5py.File, folder: Path) -> None:
        obj = f[where]
        if op == "delete":
            del obj.attrs[attr]
        elif op == "value":
            obj.attrs[attr] = value
        else:  # change one value deep inside the attribute's JSON
            try:
                doc = json.loads(obj.attrs[attr])
            except (TypeError, ValueError):
                obj.attrs[attr] = json.dumps(new_json)
                return
            node, key = doc, None
            for _ in range(4):
                keys = list(node.keys()) if isinstance(node, dict) else list(range(len(node))) if isinstance(node, list) else []
                if not keys:
                    break
                key = keys[key_choice % len(keys)]
                if not isinstance(node[key], (dict, list)) or key_choice % 3 == 0:
                    break
                node = node[key]
            if key is None:
                doc = new_json
            else:
                node[key] = new_json
            obj.attrs[attr] = json.dumps(doc, allow_nan=True)

    return Mutation(f"attr {op} {where}:{attr}", apply)


def mutations(path: Path, family: Optional[str] = None) -> st.SearchStrategy[list[Mutation]]:
    """One to three damages to the artifact at ``path`` (its datasets and attributes);
    with ``family`` (one of :data:`FAMILIES`) the first is of that family."""
    datasets, attrs = _objects(path)
    kinds = ([_dataset_mutation(datasets)] if datasets else []) + ([_attr_mutation(attrs)] if attrs else [])
    one = st.one_of(*kinds)
    if family is None:
        return st.lists(one, min_size=1, max_size=3)
    target, op = family.split(" ")
    first = _dataset_mutation(datasets, (op,)) if target == "dataset" else _attr_mutation(attrs, (op,))
    return st.tuples(first, st.lists(one, max_size=2)).map(lambda t: [t[0], *t[1]])


# --------------------------------------------------------------------------- commands

#: kind -> commands that read that kind ("{a}" = the damaged artifact, other names = valid bases).
COMMANDS: dict[str, list[list[str]]] = {
    "clips": [["info", "{a}"], ["table", "{a}", "-o", "out.csv"], ["show", "{a}", "-o", "out.png"],
              ["resample", "{a}", "--frames", "4", "-o", "out.h5"], ["lbptop", "{a}", "-o", "out.h5"],
              ["split", "{a}", "--folds", "2", "-o", "out.h5"], ["merge", "{a}", "clips.h5", "--prefix-ids", "-o", "out.h5"],
              ["align", "{a}", "--no-align", "-o", "out.h5"],
              ["train", "plain-cnn", "{a}", *[a for a in TRAIN if a != "--no-latency"], "-o", "out.h5"],
              ["evaluate", "model.h5", "{a}", "--split", "all", "--include-training-data", "--no-latency", "-o", "out.h5"]],
    "planes": [["info", "{a}"], ["table", "{a}", "-o", "out.csv"], ["show", "{a}", "-o", "out.png"],
               ["merge", "{a}", "planes.h5", "--prefix-ids", "-o", "out.h5"], ["split", "{a}", "--folds", "2", "-o", "out.h5"]],
    "model": [["info", "{a}"], ["table", "{a}", "-o", "out.csv"], ["show", "{a}", "-o", "out.png"],
              ["evaluate", "{a}", "clips.h5", "--split", "all", "--include-training-data", "--no-latency", "-o", "out.h5"],
              ["export", "{a}", "--onnx", "out.onnx", "--no-verify"],
              ["train", "plain-cnn", "clips.h5", "--init-from", "{a}", *[a for a in TRAIN if a != "--no-latency"], "-o", "out.h5"]],
    "report": [["info", "{a}"], ["table", "{a}", "-o", "out.csv"], ["show", "{a}", "-o", "out.png"]],
    "pruning": [["info", "{a}"], ["table", "{a}", "-o", "out.csv"], ["show", "{a}", "-o", "out.png"],
                ["rebuild", "{a}", "--no-check", "-o", "out.h5"]],
}
#: Cheap commands only (what the suite's short profile draws from): no training, no figures.
QUICK = {"info", "table", "split", "merge", "resample", "rebuild", "lbptop"}


def commands(kind: str, quick: bool) -> list[list[str]]:
    return [c for c in COMMANDS[kind] if not quick or c[0] in QUICK]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Outcome:
    """What one fuzzed command did; ``problem`` is None when it kept the contract."""

    args: list[str]
    rc: int
    stderr: str
    problem: Optional[str]


def check_command(runner: Runner, bases: dict[str, Path], folder: Path, kind: str, damage: list[Mutation],
                  args: list[str]) -> Outcome:
    """Damage a copy of ``kind``'s base in ``folder``, run ``args`` on it, judge the contract."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for base in bases.values():
        if base.name in args:  # the valid inputs the command reads beside the damaged one
            shutil.copy(base, folder / base.name)
    target = folder / "a.h5"
    shutil.copy(bases[kind], target)
    with h5py.File(target, "r+") as f:
        for m in damage:
            try:
                m.apply(f, folder)
            except Exception:  # noqa: BLE001 - a damage that cannot be made is skipped, never the example
                pass  # that damage does not apply to this object (deleted, a link, made huge by another): the others stand
    inputs = {p.name: _digest(p) for p in folder.iterdir() if p.is_file()}
    argv = [a.replace("{a}", "a.h5") for a in args]
    proc = runner.run(*argv, cwd=folder, timeout=TIMEOUT)
    err = proc.stderr.decode(errors="replace").strip()
    problem = None
    if proc.timed_out:
        problem = f"still running after {TIMEOUT} s"
    elif proc.returncode not in (0, 2):
        problem = f"exit {proc.returncode}"
    elif "Traceback" in err:
        problem = "traceback"
    elif proc.returncode == 2 and (len(err.splitlines()) != 1 or not err.startswith("fercli: ")):
        problem = "not one fercli: sentence"
    elif proc.peak_mb > MAX_MB:
        problem = f"peak memory {proc.peak_mb:.0f} MiB"
    else:
        changed = [n for n, d in inputs.items() if not (folder / n).is_file() or _digest(folder / n) != d]
        if changed:
            problem = f"inputs changed: {changed}"
    return Outcome(argv, proc.returncode, err, problem)


def examples_strategy(bases: dict[str, Path], quick: bool, kind: Optional[str] = None,
                      family: Optional[str] = None) -> st.SearchStrategy[tuple[str, list[Mutation], list[str]]]:
    """(kind, damages, command) triples over every kind (or one ``kind``; ``family``: see :func:`mutations`)."""
    per_kind = {k: mutations(bases[k], family) for k in ([kind] if kind else KINDS)}
    return st.sampled_from(sorted(per_kind, key=KINDS.index)).flatmap(
        lambda k: st.tuples(st.just(k), per_kind[k], st.sampled_from(commands(k, quick))))
