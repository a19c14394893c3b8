"""torchrun-style ranks + DistributedDataParallel (gloo on CPU) matches a single process with the same global batch.

What makes the two runs comparable: the model has no BatchNorm (per-rank batch
statistics would differ; on CUDA the engine converts to SyncBatchNorm) and no
dropout (ranks draw different masks); the batch order and augmentation
parameters are drawn for the GLOBAL batch and sliced per rank; the loss is the
sum over the rank's slice / global batch size x world, so DDP's gradient mean is
the single-process mean even when the last batch splits unevenly (7 = 4 + 3).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import h5py
import pytest

from conftest import ROOT
from train_helpers import fit, max_diff, tiny_clips, train_to, weights, write


def test_torchrun_two_cpu_ranks_match_single_process(tmp_path):
    from fercli import artifacts
    from fercli.train import RunOptions

    data = write(tmp_path / "ck.h5", tiny_clips())
    clips, ident, _ = artifacts.load_clips(data, "test")
    single = tmp_path / "single.h5"
    cfg = {"dropout": 0, "batch_norm": False, "width": 0.25}
    ref = RunOptions("plain-cnn", config=cfg, size=(8, 8), fold=0, fit=fit(2))
    ref.fit.batch_size = 7
    train_to(single, ref, [(clips, ident)])

    ddp = tmp_path / "ddp.h5"
    # Two ranks started the way torchrun starts them (its env contract: RANK, WORLD_SIZE,
    # LOCAL_RANK, MASTER_ADDR/PORT) -- the same code path as `torchrun --nproc_per_node 2
    # -m fercli train ...` without the launcher's own torch import on 2 busy cores.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "WORLD_SIZE": "2",
            "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    cmd = [sys.executable, "-m", "fercli", "train",
           "plain-cnn", data, "--fold", "0", "--size", "8", "--config", "dropout=0", "--config", "batch_norm=false", "--config", "width=0.25",
           "--batch-size", "7", "--epochs", "2", "--optimizer", "sgd", "--lr", "0.05", "--device", "cpu", "-q", "-o", str(ddp)]
    # Rank 0 streams its share of every batch from the artifact (a 1 KiB --device-memory cap), rank 1
    # holds the data: where the data lives changes nothing, and each rank reads only its own slices.
    streamed = ["--device-memory", "1K"]
    procs = [subprocess.Popen(cmd + (streamed if r == 0 else []), env={**base, "RANK": str(r), "LOCAL_RANK": str(r)}, stderr=subprocess.PIPE)
             for r in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()[-3000:]
    assert max_diff(weights(ddp), weights(single)) < 1e-5
    with h5py.File(ddp) as f:
        extra = json.loads(f.attrs["extra"])
        hist = json.loads(f.attrs["history"])
    assert extra["run"]["world_size"] == 2
    assert extra["run"]["data_mode"]["mode"] == "streaming"  # rank 0's, which wrote the model
    ref_hist = json.loads(h5py.File(single)["/"].attrs["history"])
    # metrics are reduced over the ranks: the whole training set and test fold, not one shard
    assert hist[-1]["loss"] == pytest.approx(ref_hist[-1]["loss"], abs=1e-4)
    assert hist[-1]["test_acc"] == pytest.approx(ref_hist[-1]["test_acc"])
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".fercli-tmp")]  # rank 1 wrote nothing
