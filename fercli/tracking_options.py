"""The detector/tracker options, declared once for ``align`` and ``live``.

Each :class:`OptionSpec` is one option: the field of :class:`fercli.align.AlignOptions`
/ :class:`fercli.live.LiveOptions` it fills, the flag users type, its default,
help, and its limits (a number range or a list of choices).  The stages check
their options with :func:`check` and both CLIs build their typer options from
the same specs (:mod:`fercli.cli.tracker_options`), so a limit cannot drift
between the two commands or between a command and its stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

from fercli.errors import FercliError
from fercli.faces import DETECTORS


@dataclass(frozen=True)
class OptionSpec:
    field: str                              # attribute of the stage's options dataclass
    flag: str                               # what users type
    default: Any
    help: str
    kind: type = int                        # int, str (text or a choice), or a file name (str, default None)
    min: Optional[int] = None
    max: Optional[int] = None
    choices: Optional[Sequence[str]] = None
    unit: str = ""                          # said after a range in the error sentence (" pixels")
    reads: bool = False                     # a file the command reads (checked by the CLI's path guard)

    def check(self, value: Any) -> None:
        """One sentence naming the flag when ``value`` is outside the limits."""
        if self.choices is not None and value not in self.choices:
            raise FercliError(f"{self.flag} must be one of {', '.join(self.choices)} (got '{value}')")
        if value is None or self.kind is not int:
            return
        if self.min is not None and self.max is not None and not self.min <= value <= self.max:
            raise FercliError(f"{self.flag} must be between {self.min} and {self.max}{self.unit} (got {value})")
        if self.min is not None and value < self.min:
            raise FercliError(f"{self.flag} must be at least {self.min}{self.unit} (got {value})")
        if self.max is not None and value > self.max:
            raise FercliError(f"{self.flag} must be at most {self.max}{self.unit} (got {value})")


#: The crop side (``align --size``; live crops at its model's input size unless told).
SIZE = OptionSpec("size", "--size", 64, "Output crop side in pixels (64 for chapter 3, 96 for chapter 4).",
                  min=8, max=1024, unit=" pixels")

#: Shared by ``align`` and ``live``, in the order the help lists them.
TRACKER_OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec("detector", "--detector", "hog", "hog (dlib, default), mmod (dlib CNN), opencv-dnn or yunet (need --detector-model).",
               kind=str, choices=DETECTORS),
    OptionSpec("detector_model", "--detector-model", None, "Model file for opencv-dnn (e.g. res10 .caffemodel, .onnx, .pb) or yunet (.onnx).", kind=str, reads=True),
    OptionSpec("detector_config", "--detector-config", None, "Config file for opencv-dnn models that need one (e.g. deploy.prototxt).", kind=str, reads=True),
    OptionSpec("predictor", "--predictor", None, "dlib 68-point shape predictor .dat (default: face_recognition_models').", kind=str, reads=True),
    OptionSpec("upsample", "--upsample", 0, "dlib detectors: upsample the detection image this many times (finds smaller faces, slower).",
               min=0, max=3),
    OptionSpec("detect_width", "--detect-width", 320, "Detect on a copy downscaled to at most this width; landmarks use full resolution.",
               min=32, max=16384, unit=" pixels"),
    OptionSpec("redetect_every", "--redetect-every", 10, "Run the detector every K frames (and whenever tracking is lost); 1 = every frame.",
               min=1, max=1_000_000),
    OptionSpec("predict_every", "--predict-every", 3, "Fit the 68 landmarks at least every K frames; in between, optical flow carries "
               "them while the face only moves rigidly. 1 = every frame.", min=1, max=1000),
)


def check(options: Any, specs: Sequence[OptionSpec] = TRACKER_OPTIONS) -> None:
    """Check ``options``' fields named by ``specs`` against their declared limits."""
    for spec in specs:
        spec.check(getattr(options, spec.field))


def values(options: Any) -> dict[str, Any]:
    """The tracker fields of ``options`` (to build another stage's options from)."""
    return {spec.field: getattr(options, spec.field) for spec in TRACKER_OPTIONS}
