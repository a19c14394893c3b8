"""Crash safety (issue 7): SIGKILL at random moments never leaves a partial artifact.

A stage killed outright runs no cleanup at all, so the only protection is the
write protocol (temporary file in the destination folder, fsync, rename): the
destination must afterwards hold either what it held before (nothing, or the
previous good output byte for byte) or a complete artifact equal to an
uninterrupted run's.  Killed runs may leave a ``.fercli-tmp-*`` file beside it
(nothing can remove it after SIGKILL); it is never at the destination path.
"""

from __future__ import annotations

import numpy as np
import h5py

from fault_harness import OLD, clips, save, temp_leftovers  # noqa: F401

TRIALS = 20

STAGES = {
    "lbptop": ["lbptop", "in.h5", "--planes", "xy,xt,yt", "--histogram", "-o", "out.h5"],
    "merge": ["merge", "in.h5", "in2.h5", "-o", "out.h5"],
    "resample": ["resample", "in.h5", "-n", "8", "-o", "out.h5"],
    "split": ["split", "in.h5", "--folds", "5", "--by", "clip", "-o", "out.h5"],
}


def arrays(path):
    out = {}
    with h5py.File(path) as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def same_arrays(a, b) -> bool:
    if sorted(a) != sorted(b):
        return False
    for key in a:
        x, y = a[key], b[key]
        if x.dtype.kind == "O":
            if list(x) != list(y):
                return False
        elif x.shape != y.shape or x.tobytes() != y.tobytes():
            return False
    return True


def test_sigkill_never_leaves_a_partial_artifact(tmp_path, runner):
    save(tmp_path / "in.h5", clips(n=100, frames=10, size=(64, 64), seed=1))
    save(tmp_path / "in2.h5", clips(n=100, frames=10, size=(64, 64), seed=2))
    reference, duration = {}, {}
    for name, args in STAGES.items():
        proc = runner.run(*args, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr.decode()
        duration[name] = proc.seconds
        reference[name] = arrays(tmp_path / "out.h5")
        (tmp_path / "out.h5").unlink()

    rng = np.random.default_rng(0)
    killed, completed, leftovers = 0, 0, 0
    names = list(STAGES)
    for trial in range(TRIALS):
        name = names[trial % len(names)]
        out = tmp_path / "out.h5"
        had_old = trial % 2 == 0
        if had_old:
            out.write_bytes(OLD)
        elif out.exists():
            out.unlink()
        proc = runner.run(*STAGES[name], cwd=tmp_path, kill_after=float(rng.uniform(0.0, 0.95) * duration[name]))
        killed += proc.killed
        if not proc.killed:
            assert proc.returncode == 0, proc.stderr.decode()
        if out.exists() and out.read_bytes() != OLD:
            # The rename happened: then the artifact is complete and correct.
            assert same_arrays(arrays(out), reference[name]), f"trial {trial} ({name}): a partial artifact at the destination"
            completed += 1
        elif had_old:
            assert out.read_bytes() == OLD
        else:
            assert not out.exists()
        left = temp_leftovers(tmp_path)
        leftovers += len(left)
        for tmp in left:
            (tmp_path / tmp).unlink()
    # Most kills must land while the stage runs, or the test shows nothing.
    assert killed >= TRIALS // 2, f"only {killed} of {TRIALS} runs were killed before they finished"
    print(f"crash safety: {killed} of {TRIALS} runs killed mid-way, {completed} complete outputs, {leftovers} temporary files left beside the destination")
