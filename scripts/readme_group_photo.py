"""The README's before/after picture of `pkdn sr --whole` on a real group photo.

docs/images/group_photo.jpg is NASA's official portrait of its second
astronaut group, the "New Nine" (NASA/JSC photo S62-6759, 1962; a work of
the US federal government, so public domain), cropped to the people and
resized to 500 x 300, 9 faces. It is shrunk x3 with PIL bicubic to
166 x 100, so its faces become 9-11 px wide (crops of 18-21 px), then
super-resolved x8 by the whole-photo pipeline. Writes
docs/images/group_whole.png: bicubic x8 | `--whole` x8 | the original photo
(resized x8/3 to the same size, for reference), and prints the faces found::

    python scripts/readme_group_photo.py [--model lite]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from PIL import Image, ImageDraw

from pkdn.checkpoint import DEFAULT_MODEL
from pkdn.faces import WholePhotoSR
from pkdn.imageio import save_png

SHRINK = 3  # the photo's faces are ~27-33 px wide: x3 makes them 9-11 px


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--out", default=str(REPO / "docs" / "images" / "group_whole.png"))
    a = ap.parse_args()
    src = Image.open(REPO / "docs" / "images" / "group_photo.jpg").convert("RGB")
    lr = src.resize((src.width // SHRINK, src.height // SHRINK), Image.BICUBIC)
    res = WholePhotoSR(model=a.model)(lr)
    print(f"{lr.width} x {lr.height} photo, {len(res.faces)} faces:")
    for f in res.faces:
        print(f"  box {[round(v, 1) for v in f.box]}  crop side {f.crop_side:.1f} px  score {f.score:.3f}  {f.mode}")
    big = res.image.size
    box = (int(big[0] * 0.05), 0, int(big[0] * 0.95), int(big[1] * 0.72))  # the faces
    tiles = [lr.resize(big, Image.BICUBIC), res.image, src.resize(big, Image.BICUBIC)]
    w, h = box[2] - box[0], box[3] - box[1]
    sheet = Image.new("RGB", (w, 3 * h + 2 * 4), "white")
    for k, t in enumerate(tiles):
        sheet.paste(t.crop(box), (0, k * (h + 4)))
    d = ImageDraw.Draw(sheet)
    for k, label in enumerate(
        ["bicubic x8", f"pkdn sr --whole x8 ({a.model})", f"original ({SHRINK}x the input's resolution)"]
    ):
        d.text((6, k * (h + 4) + 4), label, fill="white")
    sheet = sheet.resize((sheet.width * 2 // 3, sheet.height * 2 // 3), Image.LANCZOS)
    save_png(sheet, a.out)
    print(f"wrote {a.out} ({sheet.width} x {sheet.height})")


if __name__ == "__main__":
    main()
