"""One comparison of two Clips, field by field over the schema table (streamed vs in memory)."""

from __future__ import annotations

import numpy as np

from fercli import artifacts


def assert_same_clips(a: artifacts.Clips, b: artifacts.Clips, meta: bool = True) -> None:
    """Every field of :data:`fercli.artifacts.CLIP_FIELDS`, the offsets, class names, code maps
    (and meta) equal: the same values, shapes and dtypes."""
    for spec in artifacts.CLIP_FIELDS:
        x, y = getattr(a, spec.name), getattr(b, spec.name)
        assert (x is None) == (y is None), spec.name
        if x is not None:
            x, y = np.asarray(x), np.asarray(y)
            # NaN is a value here (a head pose synth or align does not know): equal to NaN
            assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y, equal_nan=x.dtype.kind in "fc"), spec.name
    assert np.array_equal(a.offsets, b.offsets)
    assert a.class_names == b.class_names
    assert sorted(a.planes) == sorted(b.planes) and all(np.array_equal(a.planes[k], b.planes[k]) for k in a.planes)
    if a.planes:
        assert np.array_equal(a.plane_offsets, b.plane_offsets)
    if meta:
        assert a.meta == b.meta
