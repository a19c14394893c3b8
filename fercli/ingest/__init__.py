"""`ingest`: real datasets in their published layouts -> a 'clips' artifact (thesis 2.1).

One module per dataset; each exposes a plain function returning
``(Clips, Report)``: the clips, and what was skipped (count + first examples
per reason) so the CLI can say it.  See ``docs/ingest.md`` for the layouts.
"""

from fercli.ingest.cifar10 import ingest_cifar10
from fercli.ingest.ckplus import ingest_ckplus
from fercli.ingest.common import CANONICAL, FrameOptions, Report
from fercli.ingest.fer2013 import ingest_fer2013
from fercli.ingest.folders import ingest_emotiw
from fercli.ingest.generic import ingest_images, ingest_video
from fercli.ingest.oulu import ingest_oulu

DATASETS = ("ckplus", "oulu", "fer2013", "sfew", "afew", "cifar10", "video", "images")

__all__ = [
    "CANONICAL", "DATASETS", "FrameOptions", "Report", "ingest_cifar10", "ingest_ckplus", "ingest_emotiw",
    "ingest_fer2013", "ingest_images", "ingest_oulu", "ingest_video",
]
