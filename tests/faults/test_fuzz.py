"""The short profile of the artifact fuzzer (fuzz_artifacts.py): a few hundred damaged artifacts, every kind.

Deterministic (derandomized, no example database) so CI runs the same
examples every time; ``bench/fuzz.py --examples N`` runs the long, random
profile.  Cheap commands only here (fuzz_artifacts.QUICK), so the profile
fits in about a minute on a two-core machine.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from fuzz_artifacts import build_bases, check_command, examples_strategy

EXAMPLES = 150


@pytest.fixture(scope="module")
def bases(runner, tmp_path_factory) -> dict[str, Path]:
    return build_bases(runner, tmp_path_factory.mktemp("fuzz-bases"))


def test_damaged_artifacts_work_or_are_one_sentence(runner, bases, tmp_path_factory):
    work = tmp_path_factory.mktemp("fuzz") / "case"

    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck), print_blob=False)
    @given(examples_strategy(bases, quick=True))
    def damaged(example):
        kind, damage, args = example
        outcome = check_command(runner, bases, work, kind, damage, args)
        assert outcome.problem is None, (f"{outcome.problem}: fercli {' '.join(outcome.args)} on {kind} damaged by "
                                         f"{[m.label for m in damage]}: exit {outcome.rc}, stderr:\n{outcome.stderr}")

    damaged()
