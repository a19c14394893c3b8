"""The detector/tracker options are declared once (fercli.tracking_options): align and
live accept the same limits, and what a command accepts its stage accepts."""

import pytest

from fercli.align import AlignOptions
from fercli.errors import FercliError
from fercli.live import LiveOptions
from fercli.tracking_options import SIZE, TRACKER_OPTIONS
from tests.conftest import assert_user_error, fercli

NUMERIC = [spec for spec in TRACKER_OPTIONS if spec.kind is int]


@pytest.mark.parametrize("spec", NUMERIC, ids=lambda s: s.flag)
def test_both_stages_accept_the_limits_and_refuse_past_them(spec):
    for options in (AlignOptions, LiveOptions):
        for edge in (spec.min, spec.max):
            options(**{spec.field: edge}).check()
        for outside in (spec.min - 1, spec.max + 1):
            with pytest.raises(FercliError, match=spec.flag):
                options(**{spec.field: outside}).check()


def test_align_size_limit_is_the_stages():
    AlignOptions(size=SIZE.max).check()
    with pytest.raises(FercliError, match="--size"):
        AlignOptions(size=SIZE.max + 1).check()


def test_both_commands_refuse_the_same_values_with_the_same_sentence(tmp_path):
    """Before the shared declaration align took --upsample 4 and live refused it only
    in its stage, with another sentence; align --size took 4096 and the stage refused it."""
    model, clips = tmp_path / "m.h5", tmp_path / "c.h5"
    for flag, value in (("--upsample", 4), ("--predict-every", 0)):
        a = assert_user_error(fercli("align", clips, flag, str(value), "-o", tmp_path / "o.h5"), flag)
        b = assert_user_error(fercli("live", model, flag, str(value), "--headless"), flag)
        assert a == b
    assert_user_error(fercli("align", clips, "--size", "4096", "-o", tmp_path / "o.h5"), "--size must be at most 1024")


def test_the_commands_list_every_tracker_option():
    for command in ("align", "live"):
        text = fercli(command, "--help", env={"COLUMNS": "300"}, check=True).stdout.decode()
        for spec in TRACKER_OPTIONS:
            assert spec.flag in text, (command, spec.flag)
