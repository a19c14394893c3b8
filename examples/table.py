"""Print a thesis-style results table from `fercli evaluate -o` report artifacts.

    python examples/table.py --title "Table 3.2" "Static Plain CNN=out/ch3/report-static.h5" ...

Each argument is ROW=REPORT; rows print in the order given as a Markdown table
(accuracy mean ± std over the evaluated folds, folds, trainable/fixed
parameters, FLOPs per sample, CPU latency), so a Makefile target can `tee` it.
"""

from __future__ import annotations

import argparse
import sys

from fercli import artifacts
from fercli.errors import FercliError


def row(label: str, path: str) -> str:
    with artifacts.open_artifact(path, "report", "table") as f:
        r = artifacts.read_json_attr(f, "report", {})
    acc, std, n = r.get("accuracy_mean"), r.get("accuracy_std") or 0.0, len(r.get("folds", []))
    acc_text = "n/a" if acc is None else f"{100 * acc:.1f} ± {100 * std:.1f}" if n > 1 else f"{100 * acc:.1f}"
    flops = r.get("flops")
    return (f"| {label} | {acc_text} | {n} | {r.get('trainable_params', 0) / 1e6:.3f} M | {r.get('fixed_params', 0) / 1e6:.3f} M | "
            f"{'n/a' if flops is None else f'{flops / 1e8:.3f}'} | {r.get('cpu_latency_ms', float('nan')):.1f} |")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--title", default="Results")
    parser.add_argument("rows", nargs="+", metavar="ROW=REPORT")
    args = parser.parse_args(argv)
    lines = [f"### {args.title}", "",
             "| Model | Accuracy (%) | Folds | Trainable params | Fixed params | FLOPs (1e8) | CPU ms/sample |",
             "|---|---|---|---|---|---|---|"]
    try:
        for item in args.rows:
            label, sep, path = item.rpartition("=")
            if not sep:
                raise FercliError(f"rows look like LABEL=REPORT.h5 (got '{item}')")
            lines.append(row(label, path))
    except FercliError as exc:
        print(f"table: {exc}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
