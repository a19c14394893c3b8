"""The one training loop for every model of every chapter (thesis 3.3.1, 4.3.1, 5.3.1).

Design (why it looks like this):

- The thesis's data sets are small (CK+ 327 clips, Oulu-CASIA 480, FER2013 35k
  48x48 faces, CIFAR-10 60k 32x32), so the whole training set is moved ONCE to
  the device as uint8 and every batch is indexed, converted to float and
  augmented there (:mod:`fercli.train.augment`).  No DataLoader workers, no
  host->device copy per step: the GPU never waits for a loader.  Data larger
  than the device's memory budget is streamed instead (:mod:`fercli.train.stream`):
  the same batches, in loads of consecutive batches; the epoch loop only asks its
  data to ``feed`` it the batches, each with the device data holding it.
- The epoch's sample order (:func:`sample_order`) does not depend on where the
  data lives: a permutation of the whole set up to ``--shuffle-window`` samples,
  beyond that whole blocks of samples shuffled, then samples shuffled within
  windows of blocks (so a streamed epoch reads the artifact in runs, not at random).
- Repeatability without saving RNG streams: every epoch reseeds from
  ``(seed, fold, epoch)`` -- the batch order and augmentation parameters come from
  a CPU ``torch.Generator`` seeded that way, and the global torch RNG (dropout) is
  reseeded too.  A run resumed at epoch e therefore draws exactly what the
  uninterrupted run drew, and on CPU reaches bit-identical weights.
- The optimizer's state (momentum buffers, Adam moments, step counts) is
  serialised to plain arrays + JSON (:func:`optimizer_arrays`) so a checkpoint is a
  model artifact without pickle.
- DistributedDataParallel when launched by ``torchrun`` (WORLD_SIZE > 1): each
  rank takes a slice of every GLOBAL batch (``--batch-size`` is global), the loss
  is scaled so DDP's gradient average equals the single-process mean over the
  global batch, metrics are summed over ranks, and only rank 0 saves.
- bf16 autocast and channels-last on CUDA; float32 on CPU (exact resume).
- ``--compile``: only the training forward/backward goes through ``torch.compile``
  (``self.net``); ``self.model`` stays the plain module, so checkpoints, evaluation and
  the optimizer see the usual parameter names (no ``_orig_mod.`` prefix).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Iterator, NamedTuple, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fercli.device import resolve_device as _resolve_device
from fercli.errors import FercliError
from fercli.models.recipe import TrainingRecipe
from fercli.protocol.samples import PLANE_INPUTS, Samples, to_float
from fercli.train import augment as aug

SEED_STRIDE_FOLD = 1_000_003
SEED_STRIDE_EPOCH = 7_919
#: Default --shuffle-window: every data set of the thesis (CIFAR-10's 50k training
#: images, FER2013's 29k) is one window, i.e. a plain permutation.
SHUFFLE_WINDOW = 65_536
#: Blocks per window when the data is larger than one window.
BLOCKS_PER_WINDOW = 64


# --------------------------------------------------------------------------- options


@dataclass
class FitOptions:
    """How one model is fitted.  Fields left ``None`` (and the augmentation's) come from
    the architecture's training recipe (:meth:`with_recipe`; :func:`fercli.train.resolve_options`
    does it for every run), so ``fercli train`` and a library caller get the same defaults."""

    epochs: Optional[int] = None
    batch_size: Optional[int] = None  # the GLOBAL batch under torchrun
    lr: Optional[float] = None
    optimizer: Optional[str] = None  # sgd | adam
    momentum: Optional[float] = None
    weight_decay: Optional[float] = None
    schedule: Optional[str] = None  # constant | cosine | step:E1,E2,...[@gamma]
    seed: int = 0
    augment: aug.AugmentConfig = field(default_factory=aug.AugmentConfig)
    eval_batch_size: int = 256
    compile: bool = False  # torch.compile the training forward/backward (--compile)
    shuffle_window: int = SHUFFLE_WINDOW  # samples shuffled together (0: the whole set; see sample_order)

    def with_recipe(self, recipe: TrainingRecipe) -> "FitOptions":
        """Every field left ``None`` (or an empty optimizer/schedule) taken from ``recipe``; a
        relative schedule (5.3.1's 40/70/90 % of the epochs) made absolute for these epochs."""
        epochs = recipe.epochs if self.epochs is None else self.epochs
        given = {k: getattr(self, k) for k in ("batch_size", "lr", "momentum", "weight_decay")}
        return replace(self, epochs=epochs, **{k: getattr(recipe, k) if v is None else v for k, v in given.items()},
                       optimizer=(self.optimizer or recipe.optimizer).lower(), schedule=self.schedule or recipe.schedule_for(epochs),
                       augment=self.augment.with_recipe(recipe))

    @property
    def resolved(self) -> bool:
        return None not in (self.epochs, self.batch_size, self.lr, self.optimizer, self.momentum, self.weight_decay, self.schedule,
                            self.augment.rotation, self.augment.flip, self.augment.shift)


def parse_schedule(text: str) -> tuple[str, list[int], float]:
    """'step:80,140,180' (x0.1 each, 5.3.1), 'step:30,60@0.5', 'cosine', 'constant'."""
    text = (text or "constant").strip().lower()
    if text in ("constant", "cosine"):
        return text, [], 1.0
    if text.startswith("step:"):
        body = text[5:]
        gamma = 0.1
        if "@" in body:
            body, g = body.split("@", 1)
            try:
                gamma = float(g)
            except ValueError:
                raise FercliError(f"--schedule step factor must be a number (got '{g}')") from None
            if not math.isfinite(gamma) or gamma <= 0:
                raise FercliError(f"--schedule step factor must be a finite positive number (got '{g}')")
        try:
            milestones = sorted(int(x) for x in body.split(",") if x.strip())
        except ValueError:
            raise FercliError(f"--schedule step:E1,E2,... needs whole epochs (got '{text}')") from None
        if not milestones or milestones[0] <= 0:
            raise FercliError(f"--schedule step: needs positive epochs (got '{text}')")
        return "step", milestones, gamma
    raise FercliError(f"--schedule must be constant, cosine or step:E1,E2,... (got '{text}')")


def lr_at(schedule: str, base: float, epoch: int, epochs: int) -> float:
    """Learning rate of (0-based) ``epoch``; a schedule is a pure function of the epoch,
    so resuming needs no scheduler object."""
    kind, milestones, gamma = parse_schedule(schedule)
    if kind == "constant":
        return base
    if kind == "cosine":
        return base * 0.5 * (1 + math.cos(math.pi * epoch / max(1, epochs)))
    return base * gamma ** sum(epoch >= m for m in milestones)


# --------------------------------------------------------------------------- devices, DDP


@dataclass
class Dist:
    world: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def dist_from_env() -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return Dist()
    return Dist(world, int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0")))


def resolve_device(name: str, dist: Dist) -> torch.device:
    """The device of this process: :func:`fercli.device.resolve_device` on its own GPU under torchrun."""
    return _resolve_device(name, dist.local_rank if dist.world > 1 else None)


def init_distributed(dist: Dist, device: torch.device) -> None:
    """Join the torchrun process group (NCCL on GPUs, gloo on CPUs)."""
    import torch.distributed as tdist

    if dist.world <= 1 or tdist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    tdist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def _allreduce(values: list[float], dist: Dist, device: torch.device) -> list[float]:
    if dist.world <= 1:
        return values
    import torch.distributed as tdist

    t = torch.tensor(values, dtype=torch.float64, device=device)
    tdist.all_reduce(t)
    return t.tolist()


# --------------------------------------------------------------------------- optimizer state


def make_optimizer(params: list[nn.Parameter], opts: FitOptions) -> torch.optim.Optimizer:
    if opts.optimizer == "sgd":
        return torch.optim.SGD(params, lr=opts.lr, momentum=opts.momentum, weight_decay=opts.weight_decay)
    if opts.optimizer == "adam":
        return torch.optim.Adam(params, lr=opts.lr, weight_decay=opts.weight_decay)
    raise FercliError(f"--optimizer must be sgd or adam (got '{opts.optimizer}')")


def optimizer_arrays(optimizer: Optional[torch.optim.Optimizer]) -> tuple[dict[str, np.ndarray], list[dict]]:
    """Optimizer state as flat arrays ('<param index>.<name>') + JSON param groups."""
    if optimizer is None:
        return {}, []
    sd = optimizer.state_dict()
    arrays: dict[str, np.ndarray] = {}
    for idx, state in sd["state"].items():
        for name, value in state.items():
            if torch.is_tensor(value):
                arrays[f"{idx}.{name}"] = value.detach().cpu().numpy().copy()
            else:
                arrays[f"{idx}.{name}"] = np.asarray(value)
    groups = [{k: v for k, v in g.items()} for g in sd["param_groups"]]
    return arrays, groups


def load_optimizer(optimizer: torch.optim.Optimizer, arrays: dict[str, np.ndarray], groups: list[dict], device: torch.device) -> None:
    from fercli.train.checkpoint import check_optimizer_state

    check_optimizer_state(optimizer, arrays, groups)  # the whole state, before any of it is applied
    state: dict[int, dict] = {}
    for key, value in arrays.items():
        idx, name = key.split(".", 1)
        t = torch.from_numpy(np.array(value))
        # Adam keeps 'step' on the CPU (unless capturable); moments live with the params.
        state.setdefault(int(idx), {})[name] = t if name == "step" else t.to(device)
    try:
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError) as exc:
        raise FercliError(f"the checkpoint's optimizer state does not fit this model/options ({exc})") from exc


# --------------------------------------------------------------------------- the loop


class Stopped(Exception):
    """SIGTERM during training: the last completed epoch is saved; resume later."""

    def __init__(self, epoch: int, signum: int):
        super().__init__(f"stopped at epoch {epoch}")
        self.epoch = epoch
        self.signum = signum


class Diverged(FercliError):
    """Training produced nan/inf (too high --lr, say): the epoch is not saved.

    ``epoch`` is 1-based; checkpoints are written after every finite epoch, so
    what -o holds is epoch ``epoch - 1`` of this run (or what --resume started
    from).  The CLI says which, and exits 2.
    """

    def __init__(self, epoch: int, what: str):
        super().__init__(f"training diverged in epoch {epoch} ({what}); that epoch was not saved: lower --lr")
        self.epoch = epoch
        self.what = what


def _to_float(name: str, x: torch.Tensor) -> torch.Tensor:
    # Images/clips are pixel values, code maps are codes: both / 255 to [0, 1].
    return x.float().div_(255.0)


class Batch(NamedTuple):
    """One step's samples as this rank takes them."""

    index: torch.Tensor  # sample numbers (in the set; after ``feed``, in the device data fed with it)
    params: Optional[torch.Tensor]  # augmentation parameters of those samples
    n_global: int  # samples in the global batch (all ranks)
    weight: float  # 0: a stand-in sample of a rank with none in a tiny last batch


@dataclass
class DeviceData:
    """A sample set held whole on the device as uint8."""

    inputs: dict[str, torch.Tensor]
    labels: torch.Tensor
    n: int

    @classmethod
    def put(cls, samples: Samples, device: torch.device) -> "DeviceData":
        return cls({k: torch.from_numpy(np.ascontiguousarray(v)).to(device) for k, v in samples.inputs.items()},
                   torch.from_numpy(samples.labels.astype(np.int64)).to(device), len(samples))

    def feed(self, batches: Iterable[Batch]) -> Iterator[tuple["DeviceData", Batch]]:
        """Each batch with the device data holding its samples: all of them are here
        (:class:`fercli.train.stream.StreamedData` feeds loads instead)."""
        for batch in batches:
            yield self, batch


def sample_order(n: int, window: int, gen: torch.Generator) -> torch.Tensor:
    """The epoch's order of ``n`` samples, the same wherever the data lives.

    ``n <= window`` (or ``window`` 0): a random permutation.  Larger sets: blocks of
    ``window / 64`` consecutive samples in random order, taken 64 blocks (one window)
    at a time, and the samples of each window permuted -- a shuffle buffer, so a
    streamed epoch reads the artifact in runs of whole blocks.
    """
    if window <= 0 or n <= window:
        return torch.randperm(n, generator=gen)
    block = max(1, window // BLOCKS_PER_WINDOW)
    blocks = torch.randperm(-(-n // block), generator=gen).tolist()
    per_window = max(1, window // block)
    out = []
    for w in range(0, len(blocks), per_window):
        idx = torch.cat([torch.arange(b * block, min(n, (b + 1) * block)) for b in blocks[w:w + per_window]])
        out.append(idx[torch.randperm(len(idx), generator=gen)])
    return torch.cat(out)


def global_batches(order: torch.Tensor, batch_size: int, augment: aug.AugmentConfig, gen: torch.Generator,
                   dist: Dist) -> Iterator[Batch]:
    """The epoch's global batches of ``order``, as this rank takes them: its slice of each
    (DDP), with augmentation parameters drawn from ``gen`` for the whole global batch."""
    for start in range(0, len(order), batch_size):
        gidx = order[start:start + batch_size]
        n_global = len(gidx)
        params = aug.draw(n_global, augment, gen) if augment.active else None
        if dist.world > 1:
            mine = gidx[dist.rank::dist.world]
            if len(mine) == 0:  # a tiny last global batch; still join the all-reduce
                yield Batch(gidx[:1], params[:1] if params is not None else None, n_global, 0.0)
                continue
            gidx, params = mine, params[dist.rank::dist.world] if params is not None else None
        yield Batch(gidx, params, n_global, 1.0)


def epoch_seed(seed: int, fold: int, epoch: int) -> int:
    return (seed * 2_654_435_761 + (fold + 1) * SEED_STRIDE_FOLD + epoch * SEED_STRIDE_EPOCH) % (2**63 - 1)


class Engine:
    """Train one model on one partition; owns model, optimizer and device data."""

    def __init__(self, model: nn.Module, input_names: tuple[str, ...], opts: FitOptions, device: torch.device,
                 dist: Dist, fold_id: int = 0):
        if not opts.resolved:
            raise ValueError("FitOptions has fields left to the recipe: resolve them first (FitOptions.with_recipe)")
        self.opts = opts
        self.device = device
        self.dist = dist
        self.fold_id = fold_id
        self.input_names = input_names
        self.cuda = device.type == "cuda"
        if dist.world > 1 and device.type == "cuda":
            # Per-rank BatchNorm statistics would differ from one process's; SyncBN
            # (CUDA only) reduces them.  On CPU/gloo BN stays per rank (documented).
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.model = model.to(device)
        if self.cuda:
            self.model = self.model.to(memory_format=torch.channels_last)
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        if not trainable and opts.epochs > 0:
            raise FercliError("every weight of this model is frozen: nothing to train (drop --freeze)")
        # None: nothing trains (an --epochs 0 model such as the averaged-outputs fusion)
        self.optimizer = make_optimizer(trainable, opts) if trainable else None
        # Modules whose weights are all frozen run in eval mode during training:
        # fixed BatchNorm statistics, no dropout (they are feature extractors).
        self.frozen_modules = [m for m in self.model.modules()
                               if list(m.parameters(recurse=False)) and not any(p.requires_grad for p in m.parameters(recurse=False))]
        self.net: nn.Module = self.model
        if dist.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            self.net = DDP(self.model, device_ids=[device.index] if self.cuda else None)
        if opts.compile:
            from fercli.train.compile import check_compile, compile_deterministic  # torch._dynamo loads only when asked for

            check_compile(device)
            compile_deterministic()
            self.net = torch.compile(self.net)  # wraps, shares the parameters of self.model

    # -- helpers -----------------------------------------------------------------
    def _autocast(self):
        if self.cuda:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        import contextlib

        return contextlib.nullcontext()

    def _batch_inputs(self, data: DeviceData, idx: torch.Tensor, params: Optional[torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for name in self.input_names:
            x = to_float(data.inputs[name].index_select(0, idx))
            if params is not None and name not in PLANE_INPUTS:
                x = aug.apply(x, params)
            if self.cuda and x.ndim == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            out.append(x)
        return out

    def set_train_mode(self) -> None:
        self.net.train()
        for m in self.frozen_modules:
            m.eval()

    # -- one epoch ---------------------------------------------------------------
    def train_epoch(self, data: DeviceData, epoch: int, step_cb: Optional[Callable[[], None]] = None) -> dict:
        from fercli.train.compile import compile_errors  # passes everything through unless --compile

        opts, dist = self.opts, self.dist
        lr = lr_at(opts.schedule, opts.lr, epoch, opts.epochs)
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        seed = epoch_seed(opts.seed, self.fold_id, epoch)
        gen = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed + dist.rank)  # dropout; per rank so ranks don't share masks
        order = sample_order(data.n, opts.shuffle_window, gen)
        self.set_train_mode()
        t0 = time.perf_counter()
        loss_sum = correct = seen = 0.0
        loss_t = torch.zeros((), dtype=torch.float64, device=self.device)
        correct_t = torch.zeros((), dtype=torch.float64, device=self.device)
        # ``data`` becomes, batch by batch, the device data holding the batch (the whole set or a streamed load)
        for data, (gidx, params, n_global, weight) in data.feed(global_batches(order, opts.batch_size, opts.augment, gen, dist)):
            idx = gidx.to(self.device)
            inputs = self._batch_inputs(data, idx, params if opts.augment.active else None)
            y = data.labels.index_select(0, idx)
            with compile_errors(opts.compile):
                with self._autocast():
                    logits = self.net(*inputs)
                losses = F.cross_entropy(logits.float(), y, reduction="none")
                # Sum over the local slice / global batch size; DDP averages over ranks,
                # hence * world: the gradient equals the mean over the global batch.
                loss = losses.sum() * (weight * dist.world / n_global)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()  # (the compiled backward is built here, at the first step)
            self.optimizer.step()
            with torch.no_grad():
                loss_t += losses.detach().double().sum() * weight
                correct_t += (logits.argmax(1) == y).double().sum() * weight
            seen += len(gidx) * weight
            if step_cb is not None:
                step_cb()
        if self.cuda:
            torch.cuda.synchronize(self.device)
        seconds = time.perf_counter() - t0
        loss_sum, correct, seen = _allreduce([float(loss_t), float(correct_t), seen], dist, self.device)
        self.check_finite(epoch, loss_sum)
        return {"epoch": epoch + 1, "loss": loss_sum / max(seen, 1), "train_acc": correct / max(seen, 1), "lr": lr,
                "seconds": round(seconds, 4), "img_per_s": round(seen / seconds, 2) if seconds > 0 else None}

    # -- divergence ----------------------------------------------------------------
    @torch.no_grad()
    def check_finite(self, epoch: int, loss_sum: float) -> None:
        """Raise :class:`Diverged` before a non-finite epoch can be saved.

        A loss can stay finite while the last step already wrote nan into the
        weights (e.g. one batch per epoch), so the parameters and buffers are
        checked too; the epoch's checkpoint is then never written, and the one
        on disk is the last finite epoch's.
        """
        if not math.isfinite(loss_sum):
            raise Diverged(epoch + 1, "the loss became non-finite")
        for name, tensor in self.model.state_dict().items():
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise Diverged(epoch + 1, f"the weights became non-finite (e.g. '{name}')")

    @torch.no_grad()
    def evaluate(self, data: DeviceData) -> dict:
        """Loss and accuracy on a held-out set (no augmentation), summed over ranks."""
        self.model.eval()
        dist = self.dist
        idx_all = torch.arange(data.n)[dist.rank::dist.world] if dist.world > 1 else torch.arange(data.n)
        loss = correct = 0.0
        ebs = self.opts.eval_batch_size
        batches = (Batch(idx_all[start:start + ebs], None, 0, 1.0) for start in range(0, len(idx_all), ebs))
        for data, batch in data.feed(batches):
            idx = batch.index.to(self.device)
            with self._autocast():
                logits = self.model(*self._batch_inputs(data, idx, None))
            y = data.labels.index_select(0, idx)
            loss += float(F.cross_entropy(logits.float(), y, reduction="sum"))
            correct += float((logits.argmax(1) == y).sum())
        loss, correct, n = _allreduce([loss, correct, float(len(idx_all))], dist, self.device)
        return {"loss": loss / max(n, 1), "acc": correct / max(n, 1), "n": int(n)}
