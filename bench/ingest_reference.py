"""Every ``ingest`` importer's output on small synth datasets, compared between two
checkouts array by array (issue 19: the streamed ingest must equal the old
in-memory one byte for byte), synth.

    python bench/ingest_reference.py --code new=. --code base=/path/to/old/checkout [--small-runs]

It builds CK+, Oulu-CASIA, SFEW, AFEW, FER2013, CIFAR-10, video and image
layouts in a temporary folder (the builders of tests/test_ingest.py: mixed
frame sizes and colours, unreadable and truncated files, a manifest), runs each
importer under several options with each checkout (``PYTHONPATH``, its own
process), writes the clips with ``save_clips``, runs ``fercli ingest`` of each
layout too (the streamed path), and prints, per case, whether every array, the
lineage (but its time and command line) and the report lines are the same.  Exit status 1 if any differs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))

#: (name, importer, source below the data folder, keywords); FrameOptions keywords under "frames".
CASES = [
    ("ckplus", "ingest_ckplus", "ck", {}),
    ("ckplus-all-color", "ingest_ckplus", "ck", {"include_unlabelled": True, "frames": {"color": True}}),
    ("ckplus-resize", "ingest_ckplus", "ck", {"include_unlabelled": True, "frames": {"resize": [8, 6]}}),
    ("oulu-vl", "ingest_oulu", "oulu", {}),
    ("oulu-ni", "ingest_oulu", "oulu", {"lighting": "NI"}),
    ("sfew-pad", "ingest_emotiw", "sfew", {"dataset": "sfew", "frames": {"pad": True}}),
    ("sfew-max-side", "ingest_emotiw", "sfew", {"dataset": "sfew", "frames": {"max_side": 9}}),
    ("afew", "ingest_emotiw", "afew", {"dataset": "afew"}),
    ("afew-gray-small", "ingest_emotiw", "afew", {"dataset": "afew", "frames": {"max_side": 16, "color": False}}),
    ("fer2013", "ingest_fer2013", "fer2013.csv", {}),
    ("fer2013-color", "ingest_fer2013", "fer2013.csv", {"frames": {"color": True}}),
    ("cifar10", "ingest_cifar10", "cifar", {}),
    ("cifar10-gray", "ingest_cifar10", "cifar", {"frames": {"color": False}}),
    ("video", "ingest_video", ["vids"], {}),
    ("video-shard", "ingest_video", ["vids"], {"shard": [1, 2]}),
    ("video-mixed-pad", "ingest_video", ["vids", "vids2"], {"frames": {"pad": True}}),
    ("images", "ingest_images", "imgs", {}),
    ("images-manifest", "ingest_images", "imgs", {"manifest": "imgs/m.csv", "classes": ["happy", "fear"]}),
    ("images-gray", "ingest_images", "imgs", {"frames": {"color": False}}),
    ("images-mixed-pad", "ingest_images", "sfew", {"frames": {"pad": True}}),
]

#: The same through the command line (the streamed path of the new code): (name, arguments; DATA is the data folder).
CLI_CASES = [
    ("cli-ckplus", ["ckplus", "DATA/ck", "--all"]),
    ("cli-oulu", ["oulu", "DATA/oulu"]),
    ("cli-sfew", ["sfew", "DATA/sfew", "--pad"]),
    ("cli-afew", ["afew", "DATA/afew", "--max-side", "20"]),
    ("cli-fer2013", ["fer2013", "DATA/fer2013.csv", "--color"]),
    ("cli-cifar10", ["cifar10", "DATA/cifar", "--gray"]),
    ("cli-video", ["video", "DATA/vids", "DATA/vids2", "--pad"]),
    ("cli-video-shard", ["video", "DATA/vids", "--shard", "0/2", "--label", "happy"]),
    ("cli-images", ["images", "DATA/imgs", "--manifest", "DATA/imgs/m.csv"]),
]


def build(data: Path) -> None:
    """The fixtures of tests/test_ingest.py, plus a few mixed sizes and colours."""
    sys.path.insert(0, os.path.join(HERE, "..", "tests"))
    import csv

    import numpy as np
    import test_ingest as t

    t.make_ckplus(data / "ck")
    for light in ("VL", "NI"):
        for subj in ("P001", "P002"):
            for expr in ("Anger", "Happiness"):
                for i in range(3):
                    t.write_image(data / "oulu" / light / "Strong" / subj / expr / f"{i:03d}.jpeg", color=light == "VL" and i != 1,
                                  h=12 + (subj == "P002"))
    t.write_image(data / "sfew/Train/Angry/a1.png", color=True)
    t.write_image(data / "sfew/Train/Sad/s1.png", h=20, w=10)
    t.write_image(data / "sfew/Val/Neutral/n1.jpg", color=True)
    (data / "sfew/Val/Neutral/broken.png").write_bytes(b"\x89PNG\r\n\x1a\n trunc")
    t.write_image(data / "sfew/Val/x.png")
    t.write_video(data / "afew/Train/Happy/001.avi", 6)
    t.write_video(data / "afew/Val/Fear/002.avi", 4, start=100)
    t.write_video(data / "afew/Val/Fear/full.avi", 20)
    raw = (data / "afew/Val/Fear/full.avi").read_bytes()
    (data / "afew/Val/Fear/003.avi").write_bytes(raw[: len(raw) * 6 // 10])
    (data / "afew/Val/Fear/full.avi").unlink()
    (data / "afew/Val/Fear/004.avi").write_bytes(b"garbage")
    rng = np.random.default_rng(3)
    with open(data / "fer2013.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["emotion", "pixels", "Usage"])
        for i in range(50):
            w.writerow([i % 8, " ".join(map(str, rng.integers(0, 256, 48 * 48 if i % 13 else 100))), "Training"])
    t.make_cifar_binary(data / "cifar", n=40)
    t.make_video_folder(data / "vids")
    t.write_video(data / "vids2" / "happy" / "big.avi", 3, h=30, w=40)
    for name, color in (("happy/1.png", False), ("happy/2.png", True), ("fear/3.jpg", False)):
        t.write_image(data / "imgs" / name, color=color)
    (data / "imgs" / "happy" / "bad.png").write_bytes(b"nope")
    (data / "imgs" / "m.csv").write_text("happy/1.png,joy,S1\nfear/3.jpg,fear,S2\nhappy/2.png,happy\n")


def dump(data: Path, out: Path, small_runs: bool = False) -> None:
    """Run every case with the code on ``sys.path``; each case's clips to out/CASE.h5,
    reports to out/reports.json.  ``small_runs``: the streaming code appends a few
    frames at a time (every clip longer than a run goes in parts)."""
    import fercli.ingest as ingest
    from fercli import artifacts
    from fercli.errors import FercliError

    if small_runs:
        from fercli.ingest import stream

        stream.run_bytes = lambda: 2000

    reports = {}
    for name, fn, source, kwargs in CASES:
        kwargs = dict(kwargs)
        frames = ingest.FrameOptions(**{k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.pop("frames", {}).items()})
        if "shard" in kwargs:
            kwargs["shard"] = tuple(kwargs["shard"])
        if "manifest" in kwargs:
            kwargs["manifest"] = str(data / kwargs["manifest"])
        where = [str(data / s) for s in source] if isinstance(source, list) else str(data / source)
        try:
            clips, report = getattr(ingest, fn)(where, frames=frames, **kwargs)
        except FercliError as exc:
            reports[name] = ["error: " + str(exc).replace(str(data), "DATA")]
            continue
        artifacts.save_clips(str(out / f"{name}.h5"), clips, [])
        reports[name] = [line.replace(str(data), "DATA") for line in report.lines()]
    for name, args in CLI_CASES:
        proc = subprocess.run([sys.executable, "-m", "fercli", "ingest", *[a.replace("DATA", str(data)) for a in args],
                               "-o", str(out / f"{name}.h5")], capture_output=True, text=True)
        reports[name] = [line.replace(str(data), "DATA").replace(str(out), "OUT") for line in proc.stderr.splitlines()]
    (out / "reports.json").write_text(json.dumps(reports, indent=1))


def compare(a: Path, b: Path) -> bool:
    import h5py
    import numpy as np

    ra, rb = json.loads((a / "reports.json").read_text()), json.loads((b / "reports.json").read_text())
    same_all = True
    for name in [c[0] for c in CASES] + [c[0] for c in CLI_CASES]:
        problems = [] if ra[name] == rb[name] else [f"report {ra[name]} != {rb[name]}"]
        fa, fb = a / f"{name}.h5", b / f"{name}.h5"
        if fa.exists() != fb.exists():
            problems.append("written by one code only")
        elif fa.exists():
            with h5py.File(fa) as x, h5py.File(fb) as y:
                keys = set()
                x.visit(keys.add)
                y.visit(keys.add)
                for key in sorted(keys):
                    if key not in x or key not in y:
                        problems.append(f"{key} in one file only")
                    elif isinstance(x[key], h5py.Dataset):
                        u, v = x[key][()], y[key][()]
                        if u.dtype != v.dtype or u.shape != v.shape or not np.array_equal(u, v, equal_nan=u.dtype.kind == "f"):
                            problems.append(f"{key} differs ({u.dtype}{u.shape} vs {v.dtype}{v.shape})")
                for key in ("class_names", "fercli_meta"):
                    if x.attrs.get(key) != y.attrs.get(key):
                        problems.append(f"attribute {key} differs")
                lineage = [[{k: v for k, v in entry.items() if k not in ("time", "command")} for entry in json.loads(f.attrs["fercli_lineage"])]
                           for f in (x, y)]
                if lineage[0] != lineage[1]:
                    problems.append("lineage differs")
        print(f"{name:18s} {'same' if not problems else 'DIFFERS: ' + '; '.join(problems)}")
        same_all = same_all and not problems
    return same_all


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--code", action="append", default=[], metavar="NAME=DIR", help="two checkouts to compare")
    ap.add_argument("--small-runs", action="store_true",
                    help="also run the first code with runs of a few frames (the streaming code's parts path)")
    ap.add_argument("--dump", nargs=2, metavar=("DATA", "OUT"), help=argparse.SUPPRESS)  # one code's run (internal)
    args = ap.parse_args()
    if args.dump:
        dump(Path(args.dump[0]), Path(args.dump[1]), args.small_runs)
        return 0
    if len(args.code) != 2:
        ap.error("give two --code NAME=DIR")
    with tempfile.TemporaryDirectory(prefix="ingest-reference-") as work:
        data = Path(work) / "data"
        build(data)
        runs = [(*spec.split("=", 1), []) for spec in args.code]
        if args.small_runs:
            runs.insert(1, (runs[0][0] + "-small-runs", runs[0][1], ["--small-runs"]))
        outs = []
        for name, code, extra in runs:
            out = Path(work) / name
            out.mkdir()
            env = {**os.environ, "PYTHONPATH": os.path.abspath(code)}
            subprocess.run([sys.executable, os.path.abspath(__file__), "--dump", str(data), str(out), *extra], env=env, check=True)
            outs.append(out)
        same = True
        for name, out in zip([r[0] for r in runs[:-1]], outs[:-1]):
            print(f"--- {name} vs {runs[-1][0]}")
            same = compare(out, outs[-1]) and same
    print("every case the same" if same else "some cases differ")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
