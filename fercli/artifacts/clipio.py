"""Reading and writing whole 'clips' artifacts, and clip by clip (streaming)."""

from __future__ import annotations

from typing import Sequence


from fercli.artifacts.base import display_name
from fercli.artifacts.clips import Clips, read_clips, write_clips
from fercli.artifacts.lazy import _HeldArtifact, read_clips_lazy
from fercli.artifacts.lineage import artifact_identity, read_lineage
from fercli.artifacts.opening import open_artifact
from fercli.artifacts.output import create_artifact

def load_clips(path: str, stage: str, lazy: bool = False) -> tuple[Clips, dict, list[dict]]:
    """Open, validate and read a clips artifact: (clips, input identity, lineage).

    ``lazy``: the bulk arrays stay in the file and are read by the rows asked for
    (:func:`read_clips_lazy`); the file stays open while they are in use.
    """
    if lazy:
        held = _HeldArtifact(path, "clips", stage)
        try:
            clips = read_clips_lazy(held.file, display_name(path), held)
            return clips, artifact_identity(held.file, path), read_lineage(held.file)
        except BaseException:
            held.close()
            raise
    with open_artifact(path, "clips", stage) as f:
        clips = read_clips(f, display_name(path))
        return clips, artifact_identity(f, path), read_lineage(f)


def save_clips(path: str, clips: Clips, lineage: Sequence[dict]) -> None:
    with create_artifact(path, "clips", lineage, clips.meta) as f:
        write_clips(f, clips)
