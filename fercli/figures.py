"""Every figure fercli draws, with matplotlib (``fercli show``, ``evaluate --figure``,
``prune --plot``).

* clips: a contact sheet, frames with their 68 landmarks and the detector's face
  box (mapped into the frame through the recorded transform); a frame whose face
  ``--missing`` filled in is marked;
* LBP-TOP planes: the XT / YT (/ XY) code maps of one clip under its frames,
  as thesis Fig 3.4;
* model: loss and accuracy per epoch of every fold (training history);
* report: the row-normalised confusion matrix, as thesis Fig 3.7 (counts on
  request);
* pruning: per prunable block the distribution of per-kernel mean SE weights
  with the cut of a schedule step, as thesis Fig 5.4.

Figures are built on :class:`matplotlib.figure.Figure` (no pyplot, no global
state, no display: the Agg renderer) and saved by extension: PNG, PDF or SVG,
with text kept as text in PDF (TrueType) and SVG.
"""

from __future__ import annotations

import os
from typing import Optional

import numpy as np

from fercli import artifacts
from fercli.artifacts import Clips, ModelRecord
from fercli.errors import FercliError

FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg"}
#: Vector text: TrueType fonts embedded in PDF, <text> elements in SVG.
VECTOR_TEXT = {"pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "none"}
FOUND, FILLED = "#2ca02c", "#ff7f0e"


def check_figure_path(path: str, option: str = "-o") -> str:
    """The figure format from ``path``'s extension; refuses others (and '-') with a sentence."""
    ext = os.path.splitext(path)[1].lower()
    if path == "-" or ext not in FORMATS:
        raise FercliError(f"{option} names a figure file ending in .png, .pdf or .svg (got '{path}')")
    artifacts.check_output_path(path)
    return FORMATS[ext]


def save(fig, path: str, dpi: int = 100) -> None:
    """Write ``fig`` atomically in the format its extension names."""
    import matplotlib

    fmt = check_figure_path(path)
    with artifacts.atomic_path(path, suffix="." + fmt) as tmp, matplotlib.rc_context(VECTOR_TEXT):
        fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight", metadata=_metadata(fmt))


def _metadata(fmt: str) -> dict:
    # Reproducible files: no creation date in PDF/SVG.
    return {"pdf": {"CreationDate": None}, "svg": {"Date": None}}.get(fmt, {})


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


# --------------------------------------------------------------------------- clips


def pick_clips(clips: Clips, clip: Optional[str], limit: int) -> list[int]:
    if clip is not None:
        hits = np.flatnonzero(clips.clip_ids.astype(str) == clip)
        if not len(hits):
            raise FercliError(f"no clip with id '{clip}' (first ids: {', '.join(map(str, clips.clip_ids[:3]))})")
        return [int(hits[0])]
    return list(range(min(limit, len(clips))))


def contact_sheet(clips: Clips, clip: Optional[str] = None, max_clips: int = 6, frames: int = 8):
    """Frames of the first clips (or ``clip``): landmarks, face box, source frame, status.
    Only the frames drawn are read (``clips`` may be lazy, of any size)."""
    from fercli.tables import frame_rows, frame_status

    if not len(clips):
        raise FercliError("the artifact has no clips to draw")
    chosen = pick_clips(clips, clip, max_clips)
    columns = max(1, min(frames, int(max(clips.lengths[chosen]))))
    h, w = clips.frame_shape[:2]
    cell = 1.9
    fig = _figure(columns * cell * max(0.6, w / max(h, 1)), len(chosen) * (cell + 0.25))
    axes = fig.subplots(len(chosen), columns, squeeze=False)
    picks = [np.unique(np.linspace(0, int(clips.lengths[c]) - 1, min(columns, int(clips.lengths[c]))).round().astype(int)) for c in chosen]
    rows = np.concatenate([int(clips.offsets[c]) + p for c, p in zip(chosen, picks)]).astype(np.int64)
    shown = frame_rows(clips, rows)  # the drawn frames' landmarks, boxes, trace
    pixels = clips.frames[rows]
    status = frame_status(shown)
    to_frame = shown.source_transform()
    names = list(clips.class_names)
    t = 0  # position in rows
    for row, c in enumerate(chosen):
        label = names[clips.labels[c]] if 0 <= clips.labels[c] < len(names) else "unlabelled"
        for col in range(columns):
            ax = axes[row, col]
            ax.set_axis_off()
            if col >= len(picks[row]):
                continue
            _image(ax, pixels[t])
            colour = FOUND if status[t] in ("detected", "") else FILLED
            if shown.landmarks is not None:
                ax.scatter(shown.landmarks[t, :, 0], shown.landmarks[t, :, 1], s=5, c=colour, linewidths=0)
            if shown.face_box is not None:
                _box(ax, shown.face_box[t], to_frame[t], colour)
            source = int(shown.source_frame[t]) if shown.source_frame is not None else int(picks[row][col])
            tag = f"source frame {source}" + (f" {status[t]}" if status[t] not in ("", "detected") else "")
            ax.set_title(f"{clips.clip_ids[c]} ({label})\n{tag}" if col == 0 else tag, fontsize=7, loc="left")
            t += 1
    return fig


def _image(ax, frame: np.ndarray) -> None:
    if frame.ndim == 2 or frame.shape[-1] == 1:
        ax.imshow(frame.reshape(frame.shape[:2]), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    else:
        ax.imshow(frame, interpolation="nearest")


def _box(ax, box: np.ndarray, to_frame: np.ndarray, colour: str) -> None:
    """The source-pixel box drawn in frame pixels (a rotated quadrilateral after registration)."""
    from fercli.geometry import map_points

    x0, y0, x1, y1 = (float(v) for v in box)
    corners = np.array([[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]])
    quad = map_points(to_frame[None].astype(np.float64), corners)[0]
    if np.isfinite(quad).all():
        ax.plot(quad[:, 0], quad[:, 1], color=colour, linewidth=0.8)


def planes_figure(clips: Clips, clip: Optional[str] = None, frames: int = 8):
    """LBP-TOP code maps of one clip under the frames they are centred on (thesis Fig 3.4)."""
    if not clips.planes or clips.plane_offsets is None:
        raise FercliError("the artifact has no LBP-TOP planes: run `fercli lbptop` first")
    c = pick_clips(clips, clip, 1)[0]
    names = sorted(clips.planes, key=lambda k: ("xt", "yt", "xy").index(k) if k in ("xt", "yt", "xy") else 9)
    m = int((clips.meta.get("lbp") or {}).get("margin", 1))
    first = int(clips.plane_offsets[c])
    count = int(clips.plane_offsets[c + 1]) - first
    if not count:
        raise FercliError(f"clip {clips.clip_ids[c]} has no LBP-TOP maps (too few frames)")
    picks = np.unique(np.linspace(0, count - 1, min(frames, count)).round().astype(int))
    # Only the maps and frames drawn are read (``clips`` may be lazy, of any size).
    maps = {k: clips.planes[k][first + picks] for k in names}
    pixels = clips.frames[int(clips.offsets[c]) + m + picks]
    fig = _figure(1.6 * len(picks) + 0.6, 1.7 * (len(names) + 1))
    axes = fig.subplots(len(names) + 1, len(picks), squeeze=False)
    for col, j in enumerate(picks):
        ax = axes[0, col]
        _image(ax, pixels[col])
        ax.set_title(f"t = {j + m}", fontsize=8)
        for row, name in enumerate(names, start=1):
            axes[row, col].imshow(maps[name][col], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    for row, name in enumerate(["frame", *[f"LBP-{k.upper()}" for k in names]]):
        axes[row, 0].set_ylabel(name, fontsize=9)
        for ax in axes[row]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(f"LBP-TOP of {clips.clip_ids[c]} (Fig 3.4)", fontsize=10)
    return fig


# --------------------------------------------------------------------------- model


def history_figure(record: ModelRecord, title: str = ""):
    """Loss and accuracy per epoch, one colour per fold (train solid, val dotted, test dashed)."""
    runs = [r for r in artifacts.fold_runs(record.extra, record.history) if r["history"]]
    if not runs:
        raise FercliError("the model has no training history (trained for 0 epochs?)")
    fig = _figure(10, 3.8)
    loss_ax, acc_ax = fig.subplots(1, 2)
    colours = _colours(len(runs))
    for run, colour in zip(runs, colours):
        history, part = run["history"], run["part"] or run["fold"]
        epochs = [h.get("epoch", i + 1) for i, h in enumerate(history)]
        for key, style, ax in (("loss", "-", loss_ax), ("val_loss", ":", loss_ax), ("test_loss", "--", loss_ax),
                               ("train_acc", "-", acc_ax), ("val_acc", ":", acc_ax), ("test_acc", "--", acc_ax)):
            values = [h.get(key) for h in history]
            if any(v is not None for v in values):
                y = [np.nan if v is None else v for v in values]
                ax.plot(epochs, y, style, color=colour, linewidth=1.2, label=f"{part} {key.replace('_', ' ')}")
    from matplotlib.ticker import MaxNLocator

    for ax, name in ((loss_ax, "loss"), (acc_ax, "accuracy")):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    acc_ax.set_ylim(0, 1.02)
    handles = len(acc_ax.get_lines()) + len(loss_ax.get_lines())
    if handles <= 24:
        acc_ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(title or f"{record.arch}: training history ({len(runs)} fold run{'s' if len(runs) > 1 else ''})", fontsize=10)
    return fig


def _colours(n: int) -> list:
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if n <= 10 else "viridis"]
    return [cmap(i if n <= 10 else i / max(1, n - 1)) for i in range(n)]


# --------------------------------------------------------------------------- report


def confusion_figure(report: dict, counts: bool = False):
    """Row-normalised confusion matrix (rows: truth) of the pooled folds, thesis Fig 3.7."""
    pooled = report.get("pooled") or {}
    names = list(report.get("class_names") or [])
    norm = np.asarray(pooled.get("confusion_normalised") or np.zeros((len(names), len(names))), np.float64)
    raw = np.asarray(pooled.get("confusion") or np.zeros_like(norm), np.int64)
    k = len(names)
    side = 1.2 + 0.62 * max(k, 2)
    fig = _figure(side + 1.0, side)
    ax = fig.subplots()
    image = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(k):
        for j in range(k):
            text = f"{norm[i, j]:.2f}" + (f"\n({raw[i, j]})" if counts else "")
            ax.text(j, i, text, ha="center", va="center", fontsize=8 if k <= 8 else 6,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(k), names, rotation=45, ha="right")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    accuracy = pooled.get("accuracy")
    folds = len(report.get("folds") or [])
    bits = [str(report.get("arch", ""))]
    if accuracy is not None:
        bits.append(f"accuracy {accuracy:.3f}" + (f" (mean {report['accuracy_mean']:.3f} ± {report['accuracy_std']:.3f} over {folds} folds)"
                                                   if folds > 1 and report.get("accuracy_mean") is not None else ""))
    ax.set_title("  ".join(b for b in bits if b), fontsize=9)
    return fig


# --------------------------------------------------------------------------- pruning


def se_histograms(pruning, step: int = 0, bins: int = 20):
    """Per prunable block, the distribution of per-kernel mean SE weights (thesis Fig 5.4);
    the red line is the smallest mean that schedule step ``step`` keeps."""
    if not pruning.blocks:
        raise FercliError("the pruning artifact has no blocks")
    if not 0 <= step < len(pruning.schedule):
        raise FercliError(f"--step must be between 0 and {len(pruning.schedule) - 1} (the schedule is {pruning.schedule})")
    n = len(pruning.blocks)
    cols = max(1, min(6, n))
    rows = (n + cols - 1) // cols
    fig = _figure(2.3 * cols, 1.9 * rows + 0.4)
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        if i >= n:
            ax.set_axis_off()
            continue
        s = pruning.blocks[i]
        means = np.clip(np.asarray(s.mean, np.float64), 0, 1)
        ax.hist(means, bins=bins, range=(0, 1), weights=np.full(len(means), 1.0 / max(1, len(means))), color="#1f77b4")
        kept = pruning.kept[step][i]
        if len(kept) < s.mid_chs:
            ax.axvline(float(np.min(np.asarray(s.mean)[kept])), color="red", linewidth=1)
        ax.set_xlim(0, 1)
        ax.set_title(f"{s.name} r={s.mid_chs / max(1, s.in_chs):g}: keep {len(kept)}/{s.mid_chs}", fontsize=7)
        ax.tick_params(labelsize=6)
    fig.supxlabel("mean SE weight per LBC kernel", fontsize=8)
    fig.supylabel("share of the block's kernels", fontsize=8)
    fig.suptitle(f"SE weights over {pruning.samples} samples (Fig 5.4); red: the cut for r'={pruning.schedule[step]:g}", fontsize=9)
    return fig


def for_artifact(kind: str, *, clips: Optional[Clips] = None, record: Optional[ModelRecord] = None, report: Optional[dict] = None,
                 pruning=None, clip: Optional[str] = None, frames: int = 8, counts: bool = False, step: int = 0,
                 max_clips: int = 6):
    """The figure ``fercli show`` draws for an artifact of ``kind`` (planes win over frames)."""
    if kind == "clips":
        if clips.planes:
            return planes_figure(clips, clip, frames)
        return contact_sheet(clips, clip, max_clips, frames)
    if kind == "model":
        return history_figure(record)
    if kind == "report":
        return confusion_figure(report, counts)
    if kind == "pruning":
        return se_histograms(pruning, step)
    raise FercliError(f"fercli show cannot draw a '{kind}' artifact")


def describe(kind: str, clips: Optional[Clips] = None) -> str:
    """What :func:`for_artifact` drew, for the closing line."""
    if kind == "clips":
        return "LBP-TOP code maps" if clips is not None and clips.planes else "contact sheet"
    return {"model": "training curves", "report": "confusion matrix", "pruning": "SE-weight histograms"}.get(kind, kind)

