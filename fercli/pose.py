"""Head pose from the 68 landmarks, in OpenFace 2.0's columns and units.

OpenFace's ``FeatureExtraction`` writes per frame ``pose_Tx, pose_Ty, pose_Tz``
(the head's position, millimetres) and ``pose_Rx, pose_Ry, pose_Rz`` (its rotation,
radians); researchers use them as covariates, to filter frames and to choose the
registration.  Here the pose is the perspective-n-point fit (``cv2.solvePnP``,
iterative Levenberg-Marquardt from a frontal start) of a 3-D mean face to the
landmarks, with the camera OpenFace assumes when it is not calibrated.

Conventions (the same as OpenFace's):

* **camera coordinates**: origin at the camera centre, x to the image's right,
  y down the image, z forward along the optical axis (away from the camera);
* **intrinsics**: fx = 500 * width / 640, fy = 500 * height / 480 (``focal``
  overrides both), principal point at the image centre, no lens distortion;
* **translation** ``(Tx, Ty, Tz)``: where the centroid of the 3-D mean face's 68
  points is, in mm (Tz > 0: in front of the camera);
* **rotation** ``R`` maps the model's axes (which equal the camera's for a face
  looking straight into it) to the camera's: ``X_cam = R X_model + T``.  The
  angles are OpenFace's XYZ Euler angles, ``R = Rx(pose_Rx) Ry(pose_Ry) Rz(pose_Rz)``
  (right-handed rotations about the camera's axes):
  ``pose_Rx`` pitch (> 0: the head tips forward, chin down, the nose moves down
  the image), ``pose_Ry`` yaw (> 0: the nose moves towards the image's left, the
  subject turns to their own right), ``pose_Rz`` roll (> 0: the face turns
  clockwise in the image).

The 3-D mean face (:data:`MEAN_FACE_3D_MM`) is :data:`fercli.faces.MEAN_FACE_68`
(dlib's landmarks on scikit-image's astronaut photograph, made symmetric) for x
and y and :data:`fercli.faces.MEAN_DEPTH_68` (the hand-made depth ``synth``
rotates faces with) for z, scaled by :data:`IOD_MM`, the mean adult
interpupillary distance (63 mm; Dodgson 2004, "Variation and extrema of human
interpupillary distance", 63.4 mm over ~4000 adults) standing in for the distance
of the eye centres.  The fit uses the points that expressions move least
(:data:`POSE_POINTS`: nose, eyes, and the upper face contour), so a smile or an
open jaw does not tilt the head.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from fercli import faces

#: OpenFace's pose columns, in its order: translation (mm), then rotation (radians).
POSE_COLUMNS = ["pose_Tx", "pose_Ty", "pose_Tz", "pose_Rx", "pose_Ry", "pose_Rz"]
#: Millimetres per mean-face unit (the eye centres' distance).
IOD_MM = 63.0
#: OpenFace's uncalibrated camera: fx = FOCAL * width / 640, fy = FOCAL * height / 480.
FOCAL = 500.0


def _mean_face_3d() -> np.ndarray:
    pts = np.column_stack([faces.MEAN_FACE_68, -faces.MEAN_DEPTH_68]) * IOD_MM  # z forward: depth towards the camera is -z
    return pts - pts.mean(0)


#: The 3-D mean face, 68 points in mm, camera axes of a frontal face (x right, y down,
#: z away from the camera), centred on its centroid.
MEAN_FACE_3D_MM = _mean_face_3d()
#: Landmarks fitted: the upper face contour (0-3, 13-16), nose (27-35) and eyes (36-47).
POSE_POINTS = np.r_[0:4, 13:17, 27:48]


def intrinsics(width: float, height: float, focal: Optional[float] = None) -> np.ndarray:
    """3x3 camera matrix: OpenFace's default focal lengths unless ``focal`` is given,
    principal point at the image centre."""
    fx = float(focal) if focal else FOCAL * width / 640.0
    fy = float(focal) if focal else FOCAL * height / 480.0
    return np.array([[fx, 0.0, width / 2.0], [0.0, fy, height / 2.0], [0.0, 0.0, 1.0]])


def euler_xyz(r: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotations -> (..., 3) angles (rx, ry, rz) with R = Rx(rx) Ry(ry) Rz(rz)."""
    ry = np.arcsin(np.clip(r[..., 0, 2], -1.0, 1.0))
    rx = np.arctan2(-r[..., 1, 2], r[..., 2, 2])
    rz = np.arctan2(-r[..., 0, 1], r[..., 0, 0])
    return np.stack([rx, ry, rz], axis=-1)


def rotation_xyz(angles: np.ndarray) -> np.ndarray:
    """(..., 3) angles (rx, ry, rz) -> (..., 3, 3) rotations Rx(rx) Ry(ry) Rz(rz)."""
    a = np.asarray(angles, np.float64)
    (cx, cy, cz), (sx, sy, sz) = np.moveaxis(np.cos(a), -1, 0), np.moveaxis(np.sin(a), -1, 0)
    one, zero = np.ones_like(cx), np.zeros_like(cx)
    rx = np.stack([one, zero, zero, zero, cx, -sx, zero, sx, cx], -1).reshape(*a.shape[:-1], 3, 3)
    ry = np.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).reshape(*a.shape[:-1], 3, 3)
    rz = np.stack([cz, -sz, zero, sz, cz, zero, zero, zero, one], -1).reshape(*a.shape[:-1], 3, 3)
    return rx @ ry @ rz


def angle_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Geodesic angle (radians) between rotations given as (..., 3) XYZ Euler angles:
    the one rotation that takes one head pose to the other."""
    ra, rb = rotation_xyz(a), rotation_xyz(b)
    trace = np.einsum("...ij,...ij->...", ra, rb)  # trace(ra^T rb)
    return np.arccos(np.clip((trace - 1.0) / 2.0, -1.0, 1.0))


def head_pose(landmarks: np.ndarray, width: float, height: float, focal: Optional[float] = None) -> np.ndarray:
    """(6,) ``Tx, Ty, Tz`` (mm), ``Rx, Ry, Rz`` (radians) of one face's (68, 2)
    landmarks in an image of ``width`` x ``height`` pixels (module docstring);
    NaN when the landmarks are not finite or the fit fails."""
    import cv2

    pts = np.asarray(landmarks, np.float64)
    if pts.shape != (68, 2) or not np.isfinite(pts).all() or not np.isfinite([width, height]).all() or min(width, height) <= 0:
        return np.full(6, np.nan)
    k = intrinsics(width, height, focal)
    iod = float(faces.interocular(pts))
    if iod <= 1e-6:
        return np.full(6, np.nan)
    # Frontal start, at the distance that gives the face its size, on the ray through its eyes.
    z = k[0, 0] * IOD_MM / iod
    centre = pts[faces.LEFT_EYE].mean(0) / 2 + pts[faces.RIGHT_EYE].mean(0) / 2
    t0 = np.array([(centre[0] - k[0, 2]) * z / k[0, 0], (centre[1] - k[1, 2]) * z / k[1, 1], z])
    t0 -= MEAN_FACE_3D_MM[36:48].mean(0)
    ok, rvec, tvec = cv2.solvePnP(MEAN_FACE_3D_MM[POSE_POINTS], pts[POSE_POINTS], k, None,
                                  np.zeros((3, 1)), t0.reshape(3, 1), useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok or not np.isfinite(tvec).all() or float(tvec[2, 0]) <= 0:
        return np.full(6, np.nan)
    rot, _ = cv2.Rodrigues(rvec)
    return np.concatenate([tvec.ravel(), euler_xyz(rot)])


def head_poses(landmarks: np.ndarray, width: float, height: float, focal: Optional[float] = None) -> np.ndarray:
    """(F, 6) :func:`head_pose` of (F, 68, 2) landmarks (float32, NaN where unknown)."""
    out = np.full((len(landmarks), 6), np.nan, np.float32)
    for t, pts in enumerate(landmarks):
        out[t] = head_pose(pts, width, height, focal)
    return out


def project(pose: np.ndarray, width: float, height: float, focal: Optional[float] = None,
            model: Optional[np.ndarray] = None) -> np.ndarray:
    """The (68, 2) image points of the 3-D mean face (or ``model``) at ``pose``: the
    inverse of :func:`head_pose` for an exact face (tests, figures)."""
    k = intrinsics(width, height, focal)
    model = MEAN_FACE_3D_MM if model is None else model
    cam = model @ rotation_xyz(np.asarray(pose[3:], np.float64)).T + np.asarray(pose[:3], np.float64)
    uv = cam @ k.T
    return uv[:, :2] / uv[:, 2:3]


def from_yaw_pitch_roll(yaw_deg: np.ndarray, pitch_deg: np.ndarray, roll_deg: np.ndarray) -> np.ndarray:
    """(..., 3) XYZ Euler angles (radians, this module's convention) of ``synth``'s
    head rotation: yaw about the vertical axis (> 0: the nose moves to the image's
    right), then pitch about the horizontal one (> 0: chin up), then roll in the
    image plane (> 0: clockwise), i.e. R = Rz(roll) Rx(-pitch) Ry(-yaw)."""
    y, p, r = (np.radians(np.asarray(v, np.float64)) for v in (yaw_deg, pitch_deg, roll_deg))
    zero = np.zeros_like(y)
    rot = (rotation_xyz(np.stack([zero, zero, r], -1)) @ rotation_xyz(np.stack([-p, zero, zero], -1))
           @ rotation_xyz(np.stack([zero, -y, zero], -1)))
    return euler_xyz(rot)
