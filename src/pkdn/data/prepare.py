"""Turn a folder of face photos into a PKDN dataset: HR, LR and parsing maps.

Layout of ``OUT``::

    OUT/config.json                 scale, sizes, parser, split rule (checked on re-runs)
    OUT/manifest.jsonl              one JSON record per prepared image (see ``Record``)
    OUT/summary.json                counts, faces not found, reported files, speed
    OUT/<split>/hr/<stem>.png       HR face, hr_size x hr_size, RGB
    OUT/<split>/lr/<stem>.png       LR, (hr_size / scale)^2, RGB
    OUT/<split>/parsing/<stem>.png  8-bit label map (19 BiSeNet classes) of the HR face

Splits: a folder holding ``train/``, ``val/`` or ``test/`` keeps them (the
shared CelebA crops); any other folder gets a deterministic, seeded split
from a hash of each file's name (so adding files never moves others).
Every output is written to a temporary file and renamed into place; an image
counts as done only once its manifest record is appended, so an interrupted
run resumes where it stopped, and a re-run skips finished images (whose
source hash is unchanged).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pkdn.data.degrade import CROPS, DEFAULT_CROP, hr_from_image, lr_from_hr
from pkdn.fileio import atomic_write_bytes
from pkdn.imageio import IMAGE_EXTENSIONS, ImageError, load_rgb, save_png

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.9, 0.05, 0.05)
MANIFEST = "manifest.jsonl"
FORMAT_VERSION = 1


@dataclass
class Summary:
    """What a ``prepare`` run did. ``reports`` are one-line notices naming files."""

    out_dir: str
    parser: str
    total: dict[str, int] = field(default_factory=dict)  # source images per split
    prepared: dict[str, int] = field(default_factory=dict)  # newly written this run
    skipped: dict[str, int] = field(default_factory=dict)  # already done (resume)
    faces_found: dict[str, int] = field(default_factory=dict)  # over all done images
    no_face: list[str] = field(default_factory=list)  # files with an all-background map
    failed: list[str] = field(default_factory=list)  # one-line reasons, skipped files
    converted: list[str] = field(default_factory=list)  # one-line notes, still prepared
    seconds: float = 0.0

    @property
    def done(self) -> dict[str, int]:
        return {s: self.prepared.get(s, 0) + self.skipped.get(s, 0) for s in self.total}

    def found_rate(self, split: str) -> float:
        n = self.done.get(split, 0)
        return self.faces_found.get(split, 0) / n if n else float("nan")

    @property
    def images_per_second(self) -> float:
        n = sum(self.prepared.values())
        return n / self.seconds if self.seconds > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["done"] = self.done
        d["found_rate"] = {s: self.found_rate(s) for s in self.total}
        d["images_per_second"] = self.images_per_second
        return _no_nan(d)

    def lines(self) -> list[str]:
        """Human-readable summary (printed by ``pkdn prepare``)."""
        out = []
        for s in self.total:
            out.append(
                f"{s}: {self.done[s]}/{self.total[s]} images ({self.prepared.get(s, 0)} new, "
                f"{self.skipped.get(s, 0)} already done); face found in {self.faces_found.get(s, 0)} "
                f"({100 * self.found_rate(s):.2f}%)"
            )
        n_new = sum(self.prepared.values())
        speed = f" ({self.images_per_second:.1f} images/s)" if n_new else " (nothing new)"
        out.append(f"parser {self.parser}: {n_new} images prepared in {self.seconds:.1f} s{speed}")
        if self.converted:
            out.append(f"{len(self.converted)} converted to RGB:")
            out += [f"  {c}" for c in self.converted]
        if self.failed:
            out.append(f"{len(self.failed)} skipped (unusable):")
            out += [f"  {f}" for f in self.failed]
        if self.no_face:
            out.append(f"{len(self.no_face)} without a detected face (all-background parsing map):")
            out += [f"  {f}" for f in self.no_face]
        return out


# ----------------------------------------------------------------------------- helpers
def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def hash_split(name: str, seed: int, fractions: tuple[float, float, float] = DEFAULT_FRACTIONS) -> str:
    """Deterministic split for ``name``: a seeded hash mapped onto the fractions."""
    u = int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:8], "big") / 2**64
    acc = 0.0
    for s, f in zip(SPLITS, fractions):
        acc += f
        if u < acc:
            return s
    return SPLITS[-1]


def _parse_split(split: str | None) -> tuple[str, Any]:
    """``None``/"auto" | "folders" | "train"/"val"/"test" | "0.8,0.1,0.1" -> (kind, arg)."""
    if split in (None, "", "auto"):
        return "auto", None
    if split == "folders":
        return "folders", None
    if split in SPLITS:
        return "single", split
    try:
        fr = tuple(float(x) for x in split.split(","))
    except ValueError:
        fr = ()
    if len(fr) != 3 or any(f < 0 for f in fr) or abs(sum(fr) - 1) > 1e-6:
        raise ValueError(
            f"--split {split!r}: use 'auto', 'folders', one of {SPLITS}, "
            "or three fractions for train,val,test summing to 1 (e.g. 0.9,0.05,0.05)"
        )
    return "fractions", fr


def _list_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def discover(images_dir: Path, split: str | None = None, seed: int = 0) -> tuple[dict[str, list[Path]], list[str]]:
    """Map the source folder onto splits: ``{split: [files sorted by name]}`` and notices."""
    kind, arg = _parse_split(split)
    has_folders = any((images_dir / s).is_dir() for s in SPLITS)
    notices: list[str] = []
    if kind == "folders" or (kind == "auto" and has_folders):
        if not has_folders:
            raise ValueError(f"{images_dir}: --split folders needs train/, val/ or test/ sub-folders")
        files = {s: _list_files(images_dir / s) for s in SPLITS if (images_dir / s).is_dir()}
    else:
        all_files = _list_files(images_dir)
        fr = arg if kind == "fractions" else DEFAULT_FRACTIONS
        files = {s: [] for s in SPLITS}
        for p in all_files:
            files[arg if kind == "single" else hash_split(p.stem, seed, fr)].append(p)
    out: dict[str, list[Path]] = {}
    for s, lst in files.items():
        keep, seen = [], {}
        for p in lst:
            if p.suffix.lower() not in IMAGE_EXTENSIONS:
                notices.append(f"{p}: not an image file (extension {p.suffix or 'none'}); skipped")
                continue
            if p.stem in seen:
                notices.append(f"{p}: same name as {seen[p.stem].name} in split {s}; skipped")
                continue
            seen[p.stem] = p
            keep.append(p)
        out[s] = keep
    return out, notices


def _read_manifest(path: Path) -> dict[tuple[str, str], dict]:
    recs: dict[tuple[str, str], dict] = {}
    if not path.exists():
        return recs
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                r = json.loads(line)
                recs[(r["split"], r["name"])] = r
            except (ValueError, KeyError):
                continue  # a line cut by an interruption; that image is redone
    return recs


def read_manifest(out_dir: str | os.PathLike) -> list[dict]:
    """The manifest records of a prepared dataset, sorted by split and name."""
    return sorted(_read_manifest(Path(out_dir) / MANIFEST).values(), key=lambda r: (r["split"], r["name"]))


_UNCHECKED = {"source"}  # recorded, but a moved source folder may resume


def _check_config(out: Path, cfg: dict) -> None:
    p = out / "config.json"
    if p.exists():
        old = json.loads(p.read_text())
        diff = {k: (old.get(k), v) for k, v in cfg.items() if k not in _UNCHECKED and old.get(k) != v}
        if diff:
            raise ValueError(f"{out}: prepared with other settings {diff} (old, new); use a new output folder")
    else:
        atomic_write_bytes(p, (json.dumps(cfg, indent=2) + "\n").encode())


# ----------------------------------------------------------------------------- main entry
def prepare(
    images_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    scale: int = 8,
    hr_size: int = 128,
    parser: str | Any = "landmarks",
    split: str | None = None,
    seed: int = 0,
    limit: int | None = None,
    progress: bool = True,
    checkpoint: str | None = None,
    min_size: int | None = None,
    crop: str = DEFAULT_CROP,
    on_error: Callable[[str], None] | None = None,
    on_note: Callable[[str], None] | None = None,
) -> Summary:
    """Prepare ``images_dir`` into ``out_dir``; see the module docstring for the layout.

    ``parser`` is a name for :func:`pkdn.priors.get_parser` (``checkpoint`` is
    passed on for ``bisenet``) or a ready parser object. ``limit`` prepares only
    the first N images (by name) of each split. ``min_size``: smallest accepted
    source side (default ``hr_size // 2``). ``crop``: how a crop becomes the
    square HR (see :func:`pkdn.data.degrade.hr_from_image`). Unusable files are skipped, listed in
    ``Summary.failed`` and passed to ``on_error(line)`` as they happen; conversions to RGB go to
    ``on_note(line)``; faces the parser misses get an all-background map and are listed.
    """
    from pkdn.priors import get_parser

    images_dir, out = Path(images_dir), Path(out_dir)
    if not images_dir.is_dir():
        raise FileNotFoundError(f"{images_dir}: not a folder")
    if hr_size % scale:
        raise ValueError(f"hr_size {hr_size} is not divisible by scale {scale}")
    if crop not in CROPS:
        raise ValueError(f"crop must be one of {CROPS}, not {crop!r}")
    min_size = hr_size // 2 if min_size is None else min_size
    files, notices = discover(images_dir, split, seed)
    if limit is not None:
        files = {s: lst[:limit] for s, lst in files.items()}

    parser_name = parser if isinstance(parser, str) else getattr(parser, "name", type(parser).__name__)
    kind, arg = _parse_split(split)
    cfg = {
        "format": FORMAT_VERSION,
        "scale": scale,
        "hr_size": hr_size,
        "lr_size": hr_size // scale,
        "crop": crop,
        "parser": parser_name,
        "split": split or "auto",
        "seed": seed,
        "source": str(images_dir.resolve()),
    }
    # build the parser before writing anything: a missing extra or checkpoint fails cleanly
    parser_obj = (
        get_parser(parser, **({"checkpoint": checkpoint} if checkpoint else {})) if isinstance(parser, str) else parser
    )
    out.mkdir(parents=True, exist_ok=True)
    try:
        _check_config(out, cfg)
    except ValueError:
        _close(parser_obj, parser)
        raise

    summary = Summary(out_dir=str(out), parser=parser_name)

    def fail(line: str) -> None:
        summary.failed.append(line)
        log.warning("%s", line)
        if on_error:
            on_error(line)

    for line in notices:
        fail(line)
    manifest_path = out / MANIFEST
    done = _read_manifest(manifest_path)

    t0 = time.perf_counter()
    bar_total = sum(len(v) for v in files.values())
    bar = _progress(bar_total, progress)
    try:
        _end_with_newline(manifest_path)
        with open(manifest_path, "a", encoding="utf-8") as mf:
            for s, lst in files.items():
                summary.total[s] = len(lst)
                summary.prepared[s] = summary.skipped[s] = summary.faces_found[s] = 0
                for src in lst:
                    bar.update(1)
                    paths = {k: out / s / k / f"{src.stem}.png" for k in ("hr", "lr", "parsing")}
                    rec = done.get((s, src.stem))
                    digest = sha256_file(src) if src.stat().st_size else ""
                    if rec and rec.get("sha256") == digest and all(p.exists() for p in paths.values()):
                        summary.skipped[s] += 1
                        _count(summary, s, rec, src)
                        continue
                    notes: list[str] = []
                    try:
                        img = load_rgb(src, min_size=min_size, notes=notes)
                    except ImageError as e:
                        fail(str(e))
                        continue
                    summary.converted += notes
                    for n in notes:
                        if on_note:
                            on_note(n)
                    hr = hr_from_image(img, hr_size, crop)
                    lr = lr_from_hr(hr, scale)
                    try:
                        lab = parser_obj.parse(hr)
                    except Exception as e:  # a parser crash on one image must not stop the run
                        msg = " ".join(str(e).split()) or type(e).__name__
                        fail(f"{src}: parser {parser_name} failed ({msg})")
                        continue
                    found = lab is not None
                    if lab is None:
                        lab = np.zeros((hr_size, hr_size), dtype=np.uint8)
                    save_png(hr, paths["hr"])
                    save_png(lr, paths["lr"])
                    save_png(Image.fromarray(np.asarray(lab, dtype=np.uint8), "L"), paths["parsing"])
                    rec = {
                        "name": src.stem,
                        "split": s,
                        "file": str(src.relative_to(images_dir)),
                        "src_size": list(img.size),
                        "hr_size": [hr_size, hr_size],
                        "lr_size": [hr_size // scale, hr_size // scale],
                        "parser": parser_name,
                        "face_found": found,
                        "sha256": digest,
                        "notes": [n.split(": ", 1)[-1] for n in notes],
                    }
                    mf.write(json.dumps(rec) + "\n")
                    mf.flush()
                    done[(s, src.stem)] = rec
                    summary.prepared[s] += 1
                    _count(summary, s, rec, src)
    finally:
        bar.close()
        summary.seconds = time.perf_counter() - t0
        _close(parser_obj, parser)
    # compact the journal: one sorted record per image
    recs = sorted(done.values(), key=lambda r: (r["split"], r["name"]))
    atomic_write_bytes(manifest_path, "".join(json.dumps(r) + "\n" for r in recs).encode())
    atomic_write_bytes(out / "summary.json", (json.dumps(summary.to_dict(), indent=2) + "\n").encode())
    run = {k: v for k, v in summary.to_dict().items() if k not in ("no_face", "failed", "converted")}
    run.update(
        time=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        limit=limit,
        n_failed=len(summary.failed),
        n_converted=len(summary.converted),
        n_no_face=len(summary.no_face),
    )
    with open(out / "runs.jsonl", "a", encoding="utf-8") as f:  # history of runs (speed of each)
        f.write(json.dumps(run) + "\n")
    return summary


def _close(parser_obj: Any, parser: Any) -> None:
    """Close a parser this module built (not one the caller passed in)."""
    if isinstance(parser, str) and hasattr(parser_obj, "close"):
        parser_obj.close()


def _no_nan(x: Any) -> Any:
    """JSON has no NaN: write null."""
    if isinstance(x, float) and x != x:
        return None
    if isinstance(x, dict):
        return {k: _no_nan(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_no_nan(v) for v in x]
    return x


def _end_with_newline(path: Path) -> None:
    """After a kill mid-append the journal may end in a cut line; start the next record on a new line."""
    if path.exists() and path.stat().st_size:
        with open(path, "rb+") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                f.write(b"\n")


def _count(summary: Summary, split: str, rec: dict, src: Path) -> None:
    if rec.get("face_found"):
        summary.faces_found[split] += 1
    else:
        summary.no_face.append(str(src))


class _NullBar:
    def update(self, n: int = 1) -> None: ...

    def close(self) -> None: ...


def _progress(total: int, enabled: bool):
    if not enabled:
        return _NullBar()
    from tqdm import tqdm

    return tqdm(total=total, unit="img", desc="prepare", dynamic_ncols=True)


def iter_split(out_dir: str | os.PathLike, split: str) -> Iterable[str]:
    """Stems of the prepared HR images of ``split``, sorted."""
    return sorted(p.stem for p in (Path(out_dir) / split / "hr").glob("*.png"))
