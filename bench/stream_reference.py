"""Reference outputs of every clips stage, to check that streaming changed no array (issue 19).

    python bench/stream_reference.py write /tmp/i19-before     # with the code before the change
    python bench/stream_reference.py write /tmp/i19-after      # with the code after it
    python bench/stream_reference.py compare /tmp/i19-before /tmp/i19-after

``write`` runs the real CLI on small synth data (gray and colour) through align,
resample (plain and --ckplus-split), lbptop (whole and sharded), split and merge,
and keeps every output artifact; ``compare`` checks that every dataset of every
artifact is equal, byte for byte, and that the metadata agrees (ids, times and
lineage differ by design and are left out).  Exit 1 on any difference.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import h5py
import numpy as np

#: (output name, fercli arguments); {d} is the output folder.
STEPS = [
    ("raw", ["synth", "--subjects", "3", "--classes", "happy,surprise,sadness", "--frames", "8:12", "--size", "240x180", "--seed", "3", "--motion", "mild"]),
    ("rawc", ["synth", "--subjects", "2", "--classes", "happy,surprise", "--frames", "6:9", "--size", "96x72", "--color", "--seed", "4"]),
    ("aligned", ["align", "{d}/raw.h5", "--size", "48"]),
    ("aligned-drop", ["align", "{d}/raw.h5", "--size", "40", "--missing", "drop", "--transform", "similarity"]),
    ("aligned-s1", ["align", "{d}/raw.h5", "--size", "48", "--shard", "1/2"]),
    ("r10", ["resample", "{d}/aligned.h5", "-n", "10"]),
    ("r7n", ["resample", "{d}/aligned.h5", "-n", "7", "--method", "nearest"]),
    ("ck", ["resample", "{d}/aligned.h5", "-n", "10", "--ckplus-split"]),
    ("rawc5", ["resample", "{d}/rawc.h5", "-n", "5"]),
    ("lbp", ["lbptop", "{d}/r10.h5", "--histogram"]),
    ("lbpc", ["lbptop", "{d}/rawc5.h5", "--planes", "xy,xt,yt", "--method", "uniform"]),
    ("lbp-s0", ["lbptop", "{d}/r10.h5", "--histogram", "--shard", "0/2"]),
    ("lbp-s1", ["lbptop", "{d}/r10.h5", "--histogram", "--shard", "1/2"]),
    ("folds", ["split", "{d}/lbp.h5", "--folds", "3"]),
    ("folds-clip", ["split", "{d}/r10.h5", "--folds", "4", "--by", "clip", "--seed", "5"]),
    ("merged", ["merge", "{d}/lbp-s0.h5", "{d}/lbp-s1.h5"]),
    ("merged-db", ["merge", "{d}/r10.h5", "{d}/ck.h5", "--prefix-ids"]),
    ("merged-folds", ["merge", "{d}/folds.h5", "{d}/lbp-s1.h5", "--prefix-ids"]),
]

#: Root attributes that differ between two runs by design.
#: Root attributes that differ by design: identity, time, lineage, and how the arrays are stored
#: (fercli_storage: chunking and compression, not their values).
VOLATILE = {"fercli_id", "fercli_created", "fercli_lineage", "fercli_version", "fercli_storage"}


def write(folder: str) -> None:
    os.makedirs(folder, exist_ok=True)
    fercli = [sys.executable, "-m", "fercli"]
    for name, args in STEPS:
        out = os.path.join(folder, f"{name}.h5")
        proc = subprocess.run([*fercli, *[a.format(d=folder) for a in args], "-o", out], capture_output=True, text=True)
        if proc.returncode:
            sys.exit(f"{name}: fercli {' '.join(args)} failed:\n{proc.stderr}")
        print(f"{name}: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else 'ok'}")


def contents(path: str) -> tuple[dict, dict]:
    arrays, attrs = {}, {}
    with h5py.File(path, "r") as f:
        def visit(key, obj):
            if isinstance(obj, h5py.Dataset):
                arrays[key] = obj[()]
        f.visititems(visit)
        for key, value in f.attrs.items():
            if key not in VOLATILE:
                attrs[key] = value.decode() if isinstance(value, bytes) else value
    if "fercli_meta" in attrs:
        attrs["fercli_meta"] = json.loads(attrs["fercli_meta"])
    return arrays, attrs


def same_array(a: np.ndarray, b: np.ndarray) -> bool:
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.kind == "O":
        return [str(x) for x in a.ravel()] == [str(x) for x in b.ravel()]
    return a.tobytes() == b.tobytes()


def compare(before: str, after: str) -> int:
    bad = 0
    for name, _ in STEPS:
        a_arrays, a_attrs = contents(os.path.join(before, f"{name}.h5"))
        b_arrays, b_attrs = contents(os.path.join(after, f"{name}.h5"))
        problems = []
        if sorted(a_arrays) != sorted(b_arrays):
            problems.append(f"datasets {sorted(set(a_arrays) ^ set(b_arrays))} in one only")
        for key in sorted(set(a_arrays) & set(b_arrays)):
            if not same_array(a_arrays[key], b_arrays[key]):
                problems.append(f"'{key}' differs ({a_arrays[key].dtype}{a_arrays[key].shape} vs {b_arrays[key].dtype}{b_arrays[key].shape})")
        if json.dumps(a_attrs, sort_keys=True, default=str) != json.dumps(b_attrs, sort_keys=True, default=str):
            problems.append("root attributes differ")
        print(f"{name}: {'same' if not problems else '; '.join(problems)}")
        bad += bool(problems)
    print(f"{len(STEPS) - bad}/{len(STEPS)} artifacts identical")
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "write":
        write(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    else:
        sys.exit(__doc__)
