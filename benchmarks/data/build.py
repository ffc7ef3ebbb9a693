"""How benchmarks/data/ was made from the public originals listed in SOURCES.md (a recipe; not run by tests).

    python benchmarks/data/build.py faces  --stim PATH/webmorphR.stim     # -> faces/*.jpg
    python benchmarks/data/build.py photos --originals DIR               # -> photos/*.jpg
    python benchmarks/data/build.py check                                # framing of faces/ vs CelebA's

faces: every photo of the London set (neutral and smiling) and of the Canada set, framed as the CelebA
crops are: pkdn's detector finds the 5 landmarks, a similarity takes them onto pkdn's template (the mean
landmarks of the CelebA training crops in the 128 x 128 frame, src/pkdn/faces/template.json), and that
frame is written at SIDE px (the photo is first shrunk with PIL's antialiased bicubic so the warp never
minifies by more than 2). Names: ``<person>__<photo>.jpg``.

photos: the whole photos of PHOTOS, each shrunk by its factor (so that most faces are 12-40 px in the x8
shrink the benchmark makes) and saved as JPEG.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from pkdn.faces import align
from pkdn.faces.detect import RetinaFaceDetector

HERE = Path(__file__).resolve().parent
SIDE = 160  # stored crop side: the 128 frame with 25 % more pixels, so HR = a PIL bicubic shrink as for CelebA
QUALITY = 90
#: (file in --originals, name written, shrink factor)
PHOTOS = [
    ("dlib_bald_guys.jpg", "dlib_bald_guys", 0.7),
    ("dlib_2008_001009.jpg", "voc_2008_001009", 1.0),
    ("dlib_2008_001322.jpg", "voc_2008_001322", 1.0),
    ("dlib_2008_002506.jpg", "voc_2008_002506", 1.0),
    ("dlib_2009_004587.jpg", "voc_2009_004587", 1.0),
    ("dlib_Tom_Cruise_avp_2014_4.jpg", "dlib_tom_cruise", 0.33),
    ("rf_test.jpg", "retinaface_test", 1.0),
    ("rf_1.jpg", "retinaface_1", 1.0),
    ("mtcnn_ivan.jpg", "mtcnn_ivan", 1.0),
    ("sk_astronaut.png", "skimage_astronaut", 1.0),
    ("lfd_assets_test.jpg", "libfacedetection_test", 1.0),
    ("wm_lisa_lisa1.jpg", "lisa1", 0.33),
    ("wm_lisa_lisa2.jpg", "lisa2", 0.5),
    ("wm_lisa_lisa3.jpg", "lisa3", 0.33),
    ("wm_lisa_lisa4.jpg", "lisa4", 0.4),
    ("wm_zoom_15cm.jpg", "zoom_15cm", 0.17),
    ("wm_zoom_30cm.jpg", "zoom_30cm", 0.2),
    ("wm_zoom_45cm.jpg", "zoom_45cm", 0.25),
    ("wm_zoom_60cm.jpg", "zoom_60cm", 0.3),
]


def frame_face(photo: Image.Image, detector: RetinaFaceDetector, side: int = SIDE) -> Image.Image:
    """The most confident face of ``photo`` in the CelebA framing, ``side`` x ``side``.

    Portraits of 1350 px are first shrunk to a 512 px long side (PIL antialiased bicubic) to find the face,
    then again so the warp onto the frame minifies by 2 at most."""
    photo = photo.convert("RGB")
    k0 = min(1.0, 512 / max(photo.size))
    small = photo.resize((round(photo.width * k0), round(photo.height * k0)), Image.BICUBIC)
    found = detector(np.asarray(small))
    if not found:
        raise ValueError("no face found")
    d = max(found, key=lambda d: d.score)
    m = align.to_template(d.landmarks / k0)  # photo -> frame
    k = min(1.0, 2 * side / align.crop_side(m))
    if k < 1.0:
        photo = photo.resize((round(photo.width * k), round(photo.height * k)), Image.BICUBIC)
        m = align.compose(m, np.array([[1 / k, 0, 0], [0, 1 / k, 0]]))  # shrunk photo -> photo -> frame
    return Image.fromarray(align.warp(np.asarray(photo), align.aligned_crop_matrix(m, side), (side, side)))


def build_faces(stim: Path, out: Path) -> int:
    det = RetinaFaceDetector(upscales=())  # portraits: no small faces to look for
    sets = [("neutral_front", "london", "neutral"), ("smiling_front", "london", "smiling"), ("canada", "canada", "")]
    n = 0
    for folder, prefix, kind in sets:
        for p in sorted((stim / "inst" / folder).glob("[!._]*.jpg")):
            person = f"{prefix}{p.stem.split('_')[0]}"
            name = f"{person}__{kind or 'front'}.jpg"
            frame_face(Image.open(p), det).save(out / name, quality=QUALITY)
            n += 1
            print(f"{p} -> {name}", file=sys.stderr)
    return n


def build_photos(originals: Path, out: Path) -> int:
    for src, name, k in PHOTOS:
        img = Image.open(originals / src).convert("RGB")
        if k != 1.0:
            img = img.resize((round(img.width * k), round(img.height * k)), Image.LANCZOS)
        img.save(out / f"{name}.jpg", quality=QUALITY)
    return len(PHOTOS)


def check(celeba: Path, n: int = 200) -> None:
    """Print how far the landmarks of faces/ (as HR: centre square at 128) and of n CelebA test crops lie from
    pkdn's template: the mean offset (x, y) and the mean eye distance, in 128-frame pixels."""
    from pkdn.data.degrade import hr_from_image
    from pkdn.imageio import list_images, load_rgb

    det = RetinaFaceDetector()
    tpl = align.template()
    for label, files in (("faces/", list_images(HERE / "faces")), (f"CelebA test ({n})", list_images(celeba)[:n])):
        offs, eyes, missed = [], [], 0
        for p in files:
            found = det(np.asarray(hr_from_image(load_rgb(p))))
            if not found:
                missed += 1
                continue
            lm = max(found, key=lambda d: d.score).landmarks
            offs.append((lm - tpl).mean(0))
            eyes.append(np.linalg.norm(lm[1] - lm[0]))
        o = np.mean(offs, 0)
        print(
            f"{label}: {len(offs)} faces ({missed} not found): mean landmark offset from the template "
            f"({o[0]:+.2f}, {o[1]:+.2f}) px, eye distance {np.mean(eyes):.2f} px (template "
            f"{np.linalg.norm(tpl[1] - tpl[0]):.2f})"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["faces", "photos", "check"])
    ap.add_argument("--stim", type=Path, help="a checkout of debruine/webmorphR.stim (faces)")
    ap.add_argument("--originals", type=Path, help="folder of the original whole photos (photos)")
    ap.add_argument("--celeba", type=Path, default=Path(os.environ.get("PKDN_CELEBA", "")) / "test")
    a = ap.parse_args()
    if a.what == "check":
        check(a.celeba)
        return 0
    out = HERE / a.what
    out.mkdir(parents=True, exist_ok=True)
    n = build_faces(a.stim, out) if a.what == "faces" else build_photos(a.originals, out)
    print(f"wrote {n} files to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
