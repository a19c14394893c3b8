"""Data larger than the device: where a run's samples live, and streaming them in loads.

**The choice** (:func:`place_data`): a run's samples (train + val + test, uint8)
are held whole on the device (*resident*, :class:`~fercli.train.engine.DeviceData`)
when they fit its memory budget, else *streamed* from the HDF5 artifacts
(:class:`StreamedData`).  The budget is ``--device-memory SIZE`` when given,
else half of what the device has free when training starts: CUDA's free memory
(``torch.cuda.mem_get_info``), on the CPU the available RAM (``MemAvailable``)
shared by the ranks of this host.  The other half is left to the model,
activations and everything else.  The choice is printed and recorded in the model
(``extra.run.data_mode``).

**Streaming**: the epoch's batches (:func:`~fercli.train.engine.sample_order`,
the same as resident) are grouped into *loads* of consecutive batches whose
samples fit half the budget; a load's samples are read from the artifact
(:class:`~fercli.protocol.samples.SampleReader`: only those samples, rows read
in sorted runs) by a background thread while the previous load trains, moved to
the device, and its batches are indexed there exactly as a resident set's.  A
rank of a torchrun job reads only the samples of its own slices of the batches.

**Equality**: each step sees the same samples in the same order with the same
augmentation parameters (drawn from the epoch's generator in batch order, never
by the reader), and the same uint8 values (one sample builder), so on the CPU
streaming reaches bit-identical weights and history to resident training.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterable, Iterator, Optional

import numpy as np
import torch

from fercli.device import free_memory
from fercli.untrusted import human_bytes
from fercli.protocol.samples import SampleReader, Samples
from fercli.train.engine import Batch, DeviceData, Dist

RESIDENT, STREAMING = "resident", "streaming"
#: Share of the device's free memory the data may take when --device-memory is not given.
DATA_SHARE = 0.5


@dataclass
class Placement:
    """Where one experiment's samples live (recorded as ``extra.run.data_mode``)."""

    mode: str  # resident | streaming
    budget: int  # bytes the data may take on the device
    budget_from: str  # what set the budget
    needed: int  # bytes of the largest run's samples (train + val + test)
    sample_bytes: int
    batch_size: int
    world: int = 1

    @property
    def load_samples(self) -> int:
        """Samples per streamed load: two loads (training, being read) fit the budget;
        at least this rank's share of one batch."""
        per_rank_batch = -(-self.batch_size // self.world)
        return max(per_rank_batch, self.budget // (2 * self.sample_bytes))

    def as_json(self) -> dict:
        out = {"mode": self.mode, "budget_bytes": int(self.budget), "budget_from": self.budget_from,
               "needed_bytes": int(self.needed), "sample_bytes": int(self.sample_bytes)}
        if self.mode == STREAMING:
            out["load_samples"] = int(self.load_samples)
        return out

    def describe(self) -> str:
        """The one line the CLI prints."""
        if self.mode == RESIDENT:
            return (f"data: resident on the device ({human_bytes(self.needed)} of samples within the "
                    f"{human_bytes(self.budget)} budget, {self.budget_from})")
        return (f"data: streaming from the artifacts ({human_bytes(self.needed)} of samples exceed the "
                f"{human_bytes(self.budget)} budget, {self.budget_from}): loads of {self.load_samples} samples")

    def put(self, reader: SampleReader, device: torch.device) -> "DeviceData | StreamedData":
        if self.mode == RESIDENT:
            return DeviceData.put(reader.read_all(), device)
        return StreamedData(reader, device, self.load_samples)


def data_budget(device: torch.device, cap: Optional[int], dist: Dist) -> tuple[int, str]:
    """(bytes the samples may take on ``device``, what set it)."""
    if cap is not None:
        return int(cap), "--device-memory"
    free, what = free_memory(device)
    if device.type == "cuda":
        return int(free * DATA_SHARE), f"half the free memory of {what}"
    # The CPU's RAM is shared by the ranks of this host.
    local = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)) if dist.world > 1 else 1
    share = f" / {local} ranks" if local > 1 else ""
    return int(free * DATA_SHARE / local), f"half the {what}{share}"


def place_data(needed: int, sample_bytes: int, batch_size: int, device: torch.device, cap: Optional[int],
               dist: Dist) -> Placement:
    """Resident when ``needed`` bytes fit the budget, else streaming."""
    budget, source = data_budget(device, cap, dist)
    mode = RESIDENT if needed <= budget else STREAMING
    return Placement(mode, budget, source, needed, max(1, sample_bytes), batch_size, dist.world)


class StreamedData:
    """A sample set left in the artifacts, fed to the engine in loads (see the module docstring)."""

    def __init__(self, reader: SampleReader, device: torch.device, load_samples: int):
        self.reader, self.device, self.load_samples = reader, device, max(1, int(load_samples))
        self.n = len(reader)

    def _loads(self, batches: Iterable[Batch]) -> Iterator[tuple[list[Batch], np.ndarray]]:
        """Consecutive batches grouped so each group's distinct samples fit one load
        (a batch larger than a load is a load of its own); with the group's samples, sorted."""
        taken = np.zeros(self.n, bool)
        group: list[Batch] = []
        count = 0
        for batch in batches:
            idx = batch.index.numpy()
            new = np.unique(idx[~taken[idx]])
            if group and count + len(new) > self.load_samples:
                want = np.flatnonzero(taken)
                yield group, want
                taken[want] = False
                group, count = [], 0
                new = np.unique(idx)
            group.append(batch)
            taken[new] = True
            count += len(new)
        if group:
            yield group, np.flatnonzero(taken)

    def feed(self, batches: Iterable[Batch]) -> Iterator[tuple[DeviceData, Batch]]:
        """Each batch with the load holding its samples (index renumbered into the load);
        the next load is read by a background thread while this one trains."""
        loads = self._loads(batches)
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fercli-stream")
        try:
            upcoming = self._submit(pool, loads)
            while upcoming is not None:
                group, want, reading = upcoming
                samples: Optional[Samples] = reading.result()
                upcoming = self._submit(pool, loads)  # read ahead while this load trains
                load = DeviceData.put(samples, self.device)
                samples = None
                for batch in group:
                    yield load, batch._replace(index=torch.from_numpy(np.searchsorted(want, batch.index.numpy())))
                load = None  # noqa: F841 - drop this load before the next one is moved to the device
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _submit(self, pool: ThreadPoolExecutor, loads: Iterator[tuple[list[Batch], np.ndarray]]
                ) -> Optional[tuple[list[Batch], np.ndarray, "Future[Samples]"]]:
        nxt = next(loads, None)
        if nxt is None:
            return None
        group, want = nxt
        return group, want, pool.submit(self.reader.read, want)
