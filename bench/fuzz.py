"""The long profile of the artifact fuzzer (tests/faults/fuzz_artifacts.py; docs/security.md).

    python bench/fuzz.py --examples 10000 [--seed S] [--quick] [--log fuzz.jsonl]

Draws random damaged artifacts of every kind with Hypothesis and runs every
command that reads them in the fault suite's warm fork server; unlike the
suite's short profile it does not stop at the first failure: each broken
contract is logged (one JSON line) and counted by its kind of problem,
command and first words of stderr, and the summary prints examples run per
command, failures and distinct findings.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "faults"))


def main() -> int:
    from hypothesis import HealthCheck, given, settings

    from fault_harness import Runner
    from fuzz_artifacts import build_bases, check_command, examples_strategy

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="cheap commands only (the suite's profile)")
    ap.add_argument("--log", default=None, help="JSON lines of every failure")
    args = ap.parse_args()

    runner = Runner()
    tmp = Path(tempfile.mkdtemp(prefix="fercli-fuzz-"))
    bases = build_bases(runner, tmp / "bases")
    per_command: collections.Counter = collections.Counter()
    per_rc: collections.Counter = collections.Counter()
    findings: collections.Counter = collections.Counter()
    first: dict = {}
    log = open(args.log, "w") if args.log else None
    start = time.monotonic()
    done = [0]

    @settings(max_examples=args.examples, database=None, deadline=None, suppress_health_check=list(HealthCheck), print_blob=False)
    @given(examples_strategy(bases, quick=args.quick))
    def run(example):
        kind, damage, command = example
        outcome = check_command(runner, bases, tmp / "case", kind, damage, command)
        name = f"{command[0]} ({kind})"
        per_command[name] += 1
        per_rc[outcome.rc] += 1
        done[0] += 1
        if outcome.problem is not None:
            words = re.sub(r"[0-9]+", "N", " ".join(outcome.stderr.splitlines()[-1:])[:80]) if outcome.stderr else ""
            key = f"{outcome.problem} | {name} | {words}"
            findings[key] += 1
            first.setdefault(key, {"damage": [m.label for m in damage], "args": outcome.args, "stderr": outcome.stderr[-2000:]})
            if log:
                log.write(json.dumps({"key": key, "damage": [m.label for m in damage], "args": outcome.args, "rc": outcome.rc,
                                      "stderr": outcome.stderr[-2000:]}) + "\n")
                log.flush()
        if done[0] % 500 == 0:
            print(f"{done[0]} examples, {sum(findings.values())} failures, {time.monotonic() - start:.0f} s", file=sys.stderr, flush=True)

    run._hypothesis_internal_use_seed = args.seed  # a fixed seed: the same run on every machine
    try:
        run()
    finally:
        runner.close()
    wall = time.monotonic() - start
    print(f"fuzz: {done[0]} examples in {wall:.0f} s ({done[0] / max(wall, 1e-9):.1f}/s), seed {args.seed}; "
          f"exit codes {dict(sorted(per_rc.items()))}")
    for name, n in sorted(per_command.items()):
        print(f"  {name:24s} {n}")
    print(f"failures: {sum(findings.values())} ({len(findings)} distinct)")
    for key, n in findings.most_common():
        print(f"  {n:5d}  {key}\n         e.g. {json.dumps(first[key]['damage'])} {' '.join(first[key]['args'])}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
