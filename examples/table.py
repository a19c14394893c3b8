"""Print a thesis-style results table from `fercli evaluate -o` report artifacts.

    python examples/table.py --title "Table 3.2" "(a)=out/ch3/.../report-gru-sf.h5" out/ch3/.../report-static.h5 ...
    python examples/table.py --by-data --title "Table 4.1" report-ck.h5 report-fer.h5 ...

Each argument is [CAPTION=]REPORT. Row names come from what the reports record
(architecture, config, what the model trained on, identity pre-training, pruning
steps: fercli.results); a caption only goes in front. Flat layout: accuracy
(mean ± std over the evaluated folds), folds, trainable/fixed parameters, FLOPs
per sample, CPU latency (--epochs: the epochs of every training in the model's
history). --by-data: one accuracy column per evaluated data set (Tables 4.1-4.3).
Markdown, so a Makefile target can `tee` it.
"""

from __future__ import annotations

import argparse
import sys

from fercli import results
from fercli.errors import FercliError


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--title", default="Results")
    parser.add_argument("--by-data", action="store_true", help="one accuracy column per evaluated data set")
    parser.add_argument("--epochs", action="store_true", help="add the epochs of every training in each model's history")
    parser.add_argument("rows", nargs="+", metavar="[CAPTION=]REPORT")
    args = parser.parse_args(argv)
    try:
        print(results.table(args.rows, args.title, by_data=args.by_data, epochs=args.epochs))
    except FercliError as exc:
        print(f"table: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
