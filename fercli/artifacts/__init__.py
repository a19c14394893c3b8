"""The HDF5 artifact schema: typed readers and writers, validation, lineage.

Every stage reads and writes one of a few *kinds* of artifact.  An artifact says
what it is in root attributes::

    fercli_kind      'clips' | 'model' | 'report' | 'pruning'
    fercli_schema    integer schema version of that kind
    fercli_id        a fresh UUID for every file written (its identity in lineage)
    fercli_version   the fercli that wrote it
    fercli_lineage   JSON list: one entry per stage that touched the data
    fercli_meta      JSON object: kind-specific metadata (e.g. alignment size)

Writes are atomic (temporary file in the destination folder, fsync, rename), so
an interrupted stage never leaves a half-written artifact where a later stage
would trust it, and a failed rerun never destroys the previous good output.
``-`` means standard input / standard output so stages chain as Unix pipes.

This module is the bottom layer: it imports neither torch nor any stage.

The package, one concept per module (imports point down this list)::

    base        kinds and schema versions, names in sentences
    attributes  JSON attributes
    validation  untrusted files: links, external storage, declared sizes, each kind's layout
    opening     opening for reading: paths, standard input (spooled to a file), kind checks
    lineage     lineage entries and input identities
    output      atomic writes: output checks, temporary files, full disks, standard output
    arrays      chunked, compressed datasets
    clips       the 'clips' kind: the Clips dataclass, its schema table, whole reads/writes
    lazy        bulk arrays left in the file (LazyRows)
    clipio      load/save whole, and the streaming ClipReader/ClipWriter
    models, reports, pruning   the other kinds
    summary     what ``fercli info`` shows

``from fercli import artifacts`` is the one public face: every name is re-exported here.
"""

from fercli.artifacts.base import SCHEMA, STR, display_name  # noqa: F401
from fercli.artifacts.attributes import read_json_attr, write_json_attr  # noqa: F401
from fercli.artifacts.validation import MAX_OBJECTS, STRING_ELEMENT_BYTES, stored_datasets, declared_bytes, validate, LAYOUTS  # noqa: F401
from fercli.artifacts.opening import open_h5, check_kind, open_artifact  # noqa: F401
from fercli.artifacts.lineage import artifact_identity, read_lineage, lineage_entry, combine_lineage  # noqa: F401
from fercli.artifacts.output import check_output_path, check_outputs, TEMP_PREFIX, _HOST, STALE_SECONDS, remove_stale_temps, committed_outputs, atomic_path, WRITE_ERRNOS, write_error, write_failure, create_artifact  # noqa: F401
from fercli.artifacts.arrays import write_array, read_strings  # noqa: F401
from fercli.artifacts.clips import ClipField, CLIP_FIELDS, FIELDS_BY_NAME, TRACE_FIELDS, CLIP_TRACE_FIELDS, OPTIONAL_FIELDS, check_finite, Clips, shard_indices, concat_ranges, write_clips, read_clips  # noqa: F401
from fercli.artifacts.lazy import LAZY_CLIP_DATASETS, LAZY_PIECE_BYTES, LazyRows, read_clips_lazy, read_clip_subset, HeldArtifact  # noqa: F401
from fercli.artifacts.clipio import load_clips, save_clips, BATCH_BYTES, CHUNK_BYTES, FLUSH_BYTES, batch_bytes, ClipReader, open_clips, ClipWriter, clip_writer  # noqa: F401
from fercli.artifacts.models import ModelRecord, write_model, read_model, read_array_group, read_model_arrays, MODEL_LAYOUT, load_model, save_model, fold_runs, read_model_header  # noqa: F401
from fercli.artifacts.reports import PREDICTION_FIELDS, write_report, save_report, read_report  # noqa: F401
from fercli.artifacts.pruning import BlockStats, Pruning, save_pruning, load_pruning, read_pruning  # noqa: F401
from fercli.artifacts.summary import summarize  # noqa: F401
