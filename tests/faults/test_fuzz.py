"""The short profile of the artifact fuzzer (fuzz_artifacts.py): every mutation family, every kind.

One property per mutation family (fuzz_artifacts.FAMILIES: 15 dataset
damages, 3 attribute damages), each on one artifact kind, the kinds taken in
turn so that every kind meets several families; the first damage of each
example is of the property's family, up to two more are random.  A few
examples per property keep the profile at about half a minute on a two-core
machine; deterministic (derandomized, no example database) so CI runs the
same examples every time.  Cheap commands only (fuzz_artifacts.QUICK);
``bench/fuzz.py --examples N`` runs the long, random profile over every
command.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from fuzz_artifacts import FAMILIES, KINDS, build_bases, check_command, examples_strategy

EXAMPLES_PER_FAMILY = 3
CASES = [(family, KINDS[i % len(KINDS)]) for i, family in enumerate(FAMILIES)]


@pytest.fixture(scope="module")
def bases(runner, tmp_path_factory) -> dict[str, Path]:
    return build_bases(runner, tmp_path_factory.mktemp("fuzz-bases"))


def test_every_kind_meets_several_families():
    assert sorted({kind for _, kind in CASES}) == sorted(KINDS)
    assert all(sum(kind == k for _, kind in CASES) >= 3 for k in KINDS)


@pytest.mark.parametrize("family,kind", CASES, ids=[f"{f.replace(' ', '-')}-{k}" for f, k in CASES])
def test_damaged_artifacts_work_or_are_one_sentence(family, kind, runner, bases, tmp_path_factory):
    work = tmp_path_factory.mktemp("fuzz") / "case"

    @settings(max_examples=EXAMPLES_PER_FAMILY, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck), print_blob=False)
    @given(examples_strategy(bases, quick=True, kind=kind, family=family))
    def damaged(example):
        kind, damage, args = example
        outcome = check_command(runner, bases, work, kind, damage, args)
        assert outcome.problem is None, (f"{outcome.problem}: fercli {' '.join(outcome.args)} on {kind} damaged by "
                                         f"{[m.label for m in damage]}: exit {outcome.rc}, stderr:\n{outcome.stderr}")

    damaged()
