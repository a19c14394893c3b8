"""`ingest`: real datasets in their published layouts -> a 'clips' artifact (thesis 2.1).

One module per dataset; each exposes ``<dataset>_plan(...)``, what its folder
walk found and a generator of one decoded clip at a time, which
:func:`fercli.ingest.stream.run` writes into an artifact clip by clip (memory: one
run of frames, whatever the data set's size), and ``ingest_<dataset>(...)``
returning ``(Clips, Report)`` in memory: the clips, and what was skipped (count +
first examples per reason) so the CLI can say it.  See ``docs/ingest.md`` for
the layouts.
"""

from fercli.ingest.cifar10 import cifar10_plan, ingest_cifar10
from fercli.ingest.ckplus import ckplus_plan, ingest_ckplus
from fercli.ingest.common import CANONICAL, FrameOptions, Report
from fercli.ingest.fer2013 import fer2013_plan, ingest_fer2013
from fercli.ingest.folders import emotiw_plan, ingest_emotiw
from fercli.ingest.generic import images_plan, ingest_images, ingest_video, video_plan
from fercli.ingest.oulu import ingest_oulu, oulu_plan

DATASETS = ("ckplus", "oulu", "fer2013", "sfew", "afew", "cifar10", "video", "images")

__all__ = [
    "CANONICAL", "DATASETS", "FrameOptions", "Report", "cifar10_plan", "ckplus_plan", "emotiw_plan", "fer2013_plan", "images_plan",
    "ingest_cifar10", "ingest_ckplus", "ingest_emotiw", "ingest_fer2013", "ingest_images", "ingest_oulu", "ingest_video", "oulu_plan",
    "video_plan",
]
