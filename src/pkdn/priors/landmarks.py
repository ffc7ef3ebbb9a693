"""Offline landmark parser: MediaPipe face mesh + selfie segmentation -> 19 classes.

MediaPipe 0.10.14 (``pip install 'pkdn[landmarks]'``) ships its legacy face
mesh (468 landmarks) and selfie segmentation models inside the wheel, so this
parser runs on a CPU without any download. The label map is rasterised from
the landmarks:

* skin: the face oval; nose: hull of the nose landmarks; brows, eyes, upper
  and lower lip, mouth (the inner lip contour): their contours.
* The person mask of the selfie segmentation model (person vs background)
  supplies the rest: a neck column below the jaw, clothing further down,
  hair everywhere else on the person (above and beside the face). Inside the
  upper face oval, pixels that match the hair colour better than the skin
  colour (fringes) become hair.

Not produced: eyeglasses, ears, earrings, necklace, hat (the models do not
see them). ``l_*`` classes are on the image's left (the subject's right).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import warnings

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from pkdn.priors.labels import CLASS_ID

# MediaPipe face mesh indices. "R" = subject's right = image left.
FACE_OVAL = [
    10,
    338,
    297,
    332,
    284,
    251,
    389,
    356,
    454,
    323,
    361,
    288,
    397,
    365,
    379,
    378,
    400,
    377,
    152,
    148,
    176,
    149,
    150,
    136,
    172,
    58,
    132,
    93,
    234,
    127,
    162,
    21,
    54,
    103,
    67,
    109,
]
BROW_R = [70, 63, 105, 66, 107, 55, 65, 52, 53, 46]
BROW_L = [300, 293, 334, 296, 336, 285, 295, 282, 283, 276]
EYE_R = [33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7]
EYE_L = [263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249]
LIPS_OUTER_UP = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291]
LIPS_OUTER_LOW = [291, 375, 321, 405, 314, 17, 84, 181, 91, 146, 61]
LIPS_INNER_UP = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308]
LIPS_INNER_LOW = [308, 324, 318, 402, 317, 14, 87, 178, 88, 95, 78]
NOSE = [
    168,
    6,
    197,
    195,
    5,
    4,
    1,
    19,
    94,
    2,
    196,
    419,
    3,
    248,
    198,
    420,
    131,
    360,
    49,
    279,
    48,
    278,
    64,
    294,
    98,
    327,
    97,
    326,
    129,
    358,
    219,
    439,
    102,
    331,
    115,
    344,
    220,
    440,
]
JAW_R, JAW_L, CHIN, FOREHEAD = 172, 397, 152, 10
CHEEKS = [50, 280, 101, 330, 205, 425, 36, 266]

_MP_LOCK = threading.Lock()


def _import_mediapipe():
    """Import MediaPipe's legacy solutions, tolerating a newer protobuf than it pins.

    mediapipe 0.10.14 asks for protobuf < 5; other packages (onnx >= 1.23) need
    protobuf >= 6. Newer protobuf removed ``SymbolDatabase.GetPrototype``, which
    MediaPipe uses to read its outputs (and ``MessageFactory.GetPrototype``, which
    its import touches); the shim below restores both as aliases of
    ``message_factory.GetMessageClass`` (no-op on protobuf < 5). On protobuf 4.25 MediaPipe's
    every frame warns that ``GetPrototype`` is deprecated; nothing a user can act on, so it is hidden.
    """
    warnings.filterwarnings("ignore", message=r"SymbolDatabase\.GetPrototype\(\) is deprecated", category=UserWarning)
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        from google.protobuf import message_factory, symbol_database

        for cls in (symbol_database.SymbolDatabase, message_factory.MessageFactory):
            if not hasattr(cls, "GetPrototype"):
                cls.GetPrototype = lambda self, descriptor: message_factory.GetMessageClass(descriptor)
        from mediapipe.python.solution_base import SolutionBase
        from mediapipe.python.solutions import face_mesh, selfie_segmentation
    except ImportError as e:  # pragma: no cover - depends on the extra
        raise ImportError(
            "the 'landmarks' parser needs MediaPipe: pip install 'pkdn[landmarks]' "
            f"(mediapipe==0.10.14); import failed: {e}"
        ) from e
    return face_mesh, selfie_segmentation, SolutionBase


@contextlib.contextmanager
def _native_stderr_silenced():
    """Hide what MediaPipe's C++ (TFLite, absl logging) writes straight to file descriptor 2.

    Its start-up chatter ("Created TensorFlow Lite XNNPACK delegate", "Feedback manager requires
    ...") is nothing a user can act on, and absl has no switch for it. Python errors still
    propagate as exceptions and are reported by the caller.
    """
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no usable fd 2 (embedded interpreters): nothing to hide
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _hull(pts: np.ndarray) -> np.ndarray:
    """Convex hull (monotone chain) of (N, 2) points, counter-clockwise."""
    p = sorted(map(tuple, pts))
    if len(p) < 3:
        return np.asarray(p)

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower, upper = [], []
    for q in p:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], q) <= 0:
            lower.pop()
        lower.append(q)
    for q in reversed(p):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], q) <= 0:
            upper.pop()
        upper.append(q)
    return np.asarray(lower[:-1] + upper[:-1])


def _poly_mask(size: tuple[int, int], pts: np.ndarray) -> np.ndarray:
    m = Image.new("L", size, 0)
    ImageDraw.Draw(m).polygon([tuple(map(float, q)) for q in pts], fill=1, outline=1)
    return np.asarray(m, dtype=bool)


def rasterise(
    landmarks: np.ndarray, size: tuple[int, int], person: np.ndarray | None = None, image: np.ndarray | None = None
) -> np.ndarray:
    """Landmarks (468, 2) in pixels [+ person mask, RGB image] -> uint8 label map (H, W)."""
    w, h = size
    L = np.asarray(landmarks, dtype=np.float64)[:, :2]
    lab = np.zeros((h, w), dtype=np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    face = _poly_mask(size, L[FACE_OVAL])

    img = None if image is None else np.asarray(image, dtype=np.float32)
    if person is not None:
        person = person & ~face
        chin_y = L[CHIN, 1]
        face_h = max(chin_y - L[FOREHEAD, 1], 1.0)
        jaw_y = 0.5 * (L[JAW_R, 1] + L[JAW_L, 1])
        xl, xr = L[JAW_R, 0], L[JAW_L, 0]
        # neck: a column under the jaw, narrower than the jaw corners, widening a little
        inset = 0.18 * (xr - xl)
        lower_jaw = [136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365]
        neck_poly = np.vstack(
            [
                [xl + inset, jaw_y],
                L[lower_jaw],
                [xr - inset, jaw_y],
                [xr - inset + 0.15 * face_h, h + 1],
                [xl + inset - 0.15 * face_h, h + 1],
            ]
        )
        neck_col = _poly_mask(size, neck_poly)
        low = yy > jaw_y
        hair = person & ~low
        neck = person & low & neck_col & (yy < chin_y + 0.3 * face_h)
        rest = person & low & ~neck
        if img is not None and hair.sum() > 20:
            hair_mu = np.median(
                img[hair & (yy < L[FOREHEAD, 1] + 0.1 * face_h)]
                if (hair & (yy < L[FOREHEAD, 1] + 0.1 * face_h)).sum() > 20
                else img[hair],
                0,
            )
            skin_mu = _skin_colour(img, L)
            d_hair = np.linalg.norm(img - hair_mu, axis=-1)
            d_skin = np.linalg.norm(img - skin_mu, axis=-1)
            hairish = d_hair < np.minimum(0.8 * d_skin, 60.0)
            skinish = d_skin < np.minimum(0.8 * d_hair, 45.0)
            lab[rest & hairish] = CLASS_ID["hair"]
            lab[rest & ~hairish] = CLASS_ID["cloth"]
            # skin-coloured pixels just under the neck column are neck, the rest clothing
            neck_ext = person & low & neck_col & ~neck & skinish & (yy < chin_y + 0.6 * face_h)
            lab[neck_ext] = CLASS_ID["neck"]
            # under the chin, non-skin colours in the neck column are clothing (collars)
            lab[neck & ~skinish & (yy > chin_y + 0.1 * face_h) & ~hairish] = CLASS_ID["cloth"]
            lab[neck & (skinish | (yy <= chin_y + 0.1 * face_h) | hairish)] = CLASS_ID["neck"]
        else:
            lab[rest] = CLASS_ID["cloth"]
            lab[neck] = CLASS_ID["neck"]
        lab[hair] = CLASS_ID["hair"]
        lab[:] = np.asarray(Image.fromarray(lab).filter(ImageFilter.ModeFilter(3)))
        lab[~person & ~face] = 0

    lab[face] = CLASS_ID["skin"]
    if img is not None and person is not None and (lab == CLASS_ID["hair"]).sum() > 20:
        _fringe(lab, img, L, face, yy)
    lab[_poly_mask(size, _hull(L[NOSE]))] = CLASS_ID["nose"]
    lab[_poly_mask(size, L[BROW_R])] = CLASS_ID["l_brow"]
    lab[_poly_mask(size, L[BROW_L])] = CLASS_ID["r_brow"]
    lab[_poly_mask(size, L[EYE_R])] = CLASS_ID["l_eye"]
    lab[_poly_mask(size, L[EYE_L])] = CLASS_ID["r_eye"]
    lab[_poly_mask(size, L[LIPS_OUTER_UP + LIPS_INNER_UP[::-1]])] = CLASS_ID["u_lip"]
    lab[_poly_mask(size, L[LIPS_OUTER_LOW + LIPS_INNER_LOW[::-1]])] = CLASS_ID["l_lip"]
    inner = L[LIPS_INNER_UP + LIPS_INNER_LOW[1:-1]]
    if np.abs(L[13, 1] - L[14, 1]) > 0.8:  # mouth open by more than ~a pixel
        lab[_poly_mask(size, inner)] = CLASS_ID["mouth"]
    return lab


def _skin_colour(img: np.ndarray, L: np.ndarray) -> np.ndarray:
    cx = np.clip(L[CHEEKS, 0].round().astype(int), 0, img.shape[1] - 1)
    cy = np.clip(L[CHEEKS, 1].round().astype(int), 0, img.shape[0] - 1)
    return np.median(img[cy, cx], 0)


def _fringe(lab: np.ndarray, image: np.ndarray, L: np.ndarray, face: np.ndarray, yy: np.ndarray) -> None:
    """Relabel hair-coloured pixels in the forehead band of the face oval as hair."""
    img = image
    hair_mu, skin_mu = np.median(img[lab == CLASS_ID["hair"]], 0), _skin_colour(img, L)
    if np.linalg.norm(hair_mu - skin_mu) < 40:  # hair and skin alike: colour cannot tell them apart
        return
    brow_y = min(L[BROW_R + BROW_L, 1].min(), L[EYE_R + EYE_L, 1].min())
    band = face & (yy < brow_y - 1)
    d_hair = np.linalg.norm(img - hair_mu, axis=-1)
    d_skin = np.linalg.norm(img - skin_mu, axis=-1)
    lab[band & (d_hair < 0.8 * d_skin)] = CLASS_ID["hair"]


class LandmarkParser:
    """MediaPipe face mesh (468 landmarks) + selfie segmentation, rasterised to 19 classes."""

    name = "landmarks"

    def __init__(
        self, *, min_detection_confidence: float = 0.5, segmentation: bool = True, person_threshold: float = 0.5
    ):
        mp_face_mesh, mp_selfie, SolutionBase = _import_mediapipe()
        with _MP_LOCK, _native_stderr_silenced():
            self._build(mp_face_mesh, mp_selfie, SolutionBase, min_detection_confidence, segmentation)
        self.person_threshold = person_threshold

    def _build(
        self, mp_face_mesh, mp_selfie, SolutionBase, min_detection_confidence: float, segmentation: bool
    ) -> None:
        params = None
        if min_detection_confidence != 0.5:  # the graph's default; changing it needs protobuf < 5
            params = {
                "facedetectionshortrangecpu__facedetectionshortrange__facedetection__"
                "TensorsToDetectionsCalculator.min_score_thresh": min_detection_confidence
            }
        # FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=False), built
        # directly so that the graph's default thresholds need no options rewrite
        self._mesh = SolutionBase(
            binary_graph_path=mp_face_mesh._BINARYPB_FILE_PATH,
            side_inputs={"num_faces": 1, "with_attention": False, "use_prev_landmarks": False},
            calculator_params=params,
            outputs=["multi_face_landmarks"],
        )
        self._seg = mp_selfie.SelfieSegmentation(model_selection=0) if segmentation else None
        # one blank frame through each graph while stderr is hidden: their calculators open (and
        # log) on graph threads, so wait here until that has happened
        blank = np.zeros((64, 64, 3), dtype=np.uint8)
        self._mesh.process(blank)
        if self._seg is not None:
            self._seg.process(blank)

    def landmarks(self, image: Image.Image) -> np.ndarray | None:
        """(468, 2) landmark pixel coordinates, or None without a face."""
        arr = np.ascontiguousarray(np.asarray(image.convert("RGB")))
        with _MP_LOCK, _native_stderr_silenced():
            res = self._mesh.process(arr)
        if not res.multi_face_landmarks:
            return None
        w, h = image.size
        return np.array([(p.x * w, p.y * h) for p in res.multi_face_landmarks[0].landmark])

    def person_mask(self, image: Image.Image) -> np.ndarray | None:
        if self._seg is None:
            return None
        arr = np.ascontiguousarray(np.asarray(image.convert("RGB")))
        with _MP_LOCK, _native_stderr_silenced():
            res = self._seg.process(arr)
        return np.asarray(res.segmentation_mask) > self.person_threshold

    def parse(self, image: Image.Image) -> np.ndarray | None:
        pts = self.landmarks(image)
        if pts is None:
            return None
        return rasterise(pts, image.size, self.person_mask(image), np.asarray(image.convert("RGB")))

    def close(self) -> None:
        with _MP_LOCK, _native_stderr_silenced():
            self._mesh.close()
            if self._seg is not None:
                self._seg.close()
