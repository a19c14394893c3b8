"""`synth`: the embedded default dataset — a real photograph, warped into expressive clips.

The thesis evaluates on CK+ (section 3.3.1): posed sequences that ramp from a
neutral face to the apex of one of seven expressions, full 640x490 gray frames,
123 subjects.  No dataset may be downloaded at run time, so this stage makes a
CK+-like set from a public-domain photograph that scikit-image ships
(``skimage.data.astronaut()``), or from face photographs the user gives
(``faces=DIR``).

How a frame is made (all randomness from numpy Generators seeded by
``[seed, ...]``, so the same seed gives byte-identical arrays):

* **Face model.** 68 landmarks in a canonical frame (inter-ocular distance 1,
  origin at the eye midpoint, as :data:`fercli.faces.MEAN_FACE_68`).  The base
  shape is dlib's 68 landmarks on the photograph, "neutralised" (lips closed,
  smiling lip corners lowered to the lip line) so clips start from a neutral face.
* **Identity** (per subject): shape variation (face width, chin length, eye
  spacing and size, brow height, nose length/width, mouth width and position,
  lip thickness, small asymmetry), skin tone / gamma / illumination direction,
  head pose (yaw through a per-landmark depth, roll, scale, translation), a
  mirrored or unmirrored photograph, and a background.  Its size is comparable
  to the expression displacements, so a classifier has to learn expression, not
  identity.
* **Expression**: FACS action-unit displacement fields (section 2.1's AU
  description of emotions) combined per prototype — happiness AU6+12, sadness
  AU1+4+15, surprise AU1+2+5+26, fear AU1+2+4+5+20+26, anger AU4+5+7+23,
  disgust AU9+15+16, contempt unilateral AU12+14 — with per-clip intensities,
  ramped neutral -> apex (smoothstep with varied onset, per-AU lag, optional
  apex plateau) over a variable number of frames.  Class-specific cues come from
  the AU deformation only: everything else is drawn independently of the label.
* **Rendering**: a piecewise-affine warp (fixed, lip-aware triangles over the
  68 landmarks plus a ring of anchors that follow the head's similarity transform;
  outside the ring the whole image follows that similarity), rasterised into a
  dense map with OpenCV and applied with one ``cv2.remap``.  An opening mouth
  (AU26, AU16) shows a dark cavity with a hint of upper teeth; a little sensor
  noise and small head drift per frame make consecutive frames realistic.
* **Motion** (``motion=``): the head moves along smooth paths (``mild``,
  ``strong``); ``speech`` adds a talking mouth (jaw drop, lip rounding and
  spreading per syllable at 3-6 Hz) on mild's head movement.

Ground-truth landmarks (the warped model points, frame pixels) are stored per
frame; dlib's detector finds the synthetic faces and its predicted landmarks
agree with them (tested).
"""

from fercli.expressions import CK_CLASSES
from fercli.synth.clip import true_pose
from fercli.synth.dataset import Synthesis, synthesize
from fercli.synth.facs import AU_FIELDS, AU_NAMES, PROTOTYPES, UNILATERAL, expression_field
from fercli.synth.motion import MAX_YAW, MOTION_FPS, MOTIONS, Motion, _blur_kernel
from fercli.synth.speech import SPEECH_HZ, VISEMES, SpeechTrack, speech_track
from fercli.synth.textures import ASTRONAUT_68, ASTRONAUT_PERSON, Texture, astronaut, detect_landmarks, load_faces, segment_person
from fercli.synth.video import VideoFrames, record_video_trace, render_video, video_writer
from fercli.synth.warp import FACE_CENTRE, RING, triangulate

__all__ = [
    "ASTRONAUT_68", "ASTRONAUT_PERSON", "AU_FIELDS", "AU_NAMES", "CK_CLASSES", "FACE_CENTRE", "MAX_YAW", "MOTIONS", "MOTION_FPS",
    "Motion", "PROTOTYPES", "RING", "SPEECH_HZ", "SpeechTrack", "Synthesis", "Texture", "UNILATERAL", "VISEMES", "VideoFrames",
    "astronaut", "detect_landmarks", "expression_field", "load_faces", "record_video_trace", "render_video", "segment_person",
    "speech_track", "synthesize", "triangulate", "true_pose", "video_writer", "_blur_kernel",
]
