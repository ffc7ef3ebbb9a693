"""Many input files through one job: the driver under `pkdn sr`, :meth:`Restorer.files` and whole-photo files.

Every front end that turns a list of inputs into output files needs the same steps; they are done here once:

* inputs: files, folders (their image files, sorted, not recursive) and globs (:func:`expand_inputs`);
* outputs: ``OUT/<stem>.png`` per input; a later input whose stem is taken fails instead of overwriting
  (:func:`assign_outputs`); an output folder that is an input folder is refused (:func:`check_out_dir`);
* kind: each input is a face crop or a photo, decided by :func:`pkdn.kind.input_kind` unless forced;
* work: inputs are decoded (:func:`pkdn.imageio.load_rgb`) and prepared on reader threads ahead of the
  network, batched by their job, and written atomically on writer threads (PNG work must not leave the
  network idle); the writes in flight are bounded, so memory is too;
* report: written files, failed inputs with one-line reasons, conversion notes (:class:`SrReport`), each
  failure and note also passed to a callback as it happens; a bad input never stops the others;
* torchrun: each process takes every ``world``-th input (``shard``; :func:`torchrun_world`,
  :func:`gather_report`).

The per-item work is a :class:`FileJob`: crop mode (:class:`pkdn.restore.CropJob`) or whole photos
(:class:`pkdn.faces.files.PhotoJob`).
"""

from __future__ import annotations

import functools
import glob
import os
import threading
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from PIL import Image

from pkdn.extras import install_hint
from pkdn.imageio import IMAGE_EXTENSIONS, ImageError, list_images, load_rgb
from pkdn.kind import MAX_CROP_SIDE, Kind, input_kind
from pkdn.options import FILE_KINDS, MIN_SIDE

if TYPE_CHECKING:
    from pkdn.train.distributed import DistEnv

#: photos decoded (and their faces found) ahead of the one the network waits for (photos can be large).
PHOTO_READ_AHEAD = 8
#: outputs handed to the writer threads and not yet written, at most (bounds the results held in memory).
MAX_PENDING_WRITES = 64


@dataclass
class SrReport:
    """What a run over files did: files written, inputs failed (with one-line reasons), conversion notes."""

    written: list[Path] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (input, one-line reason)
    notes: list[str] = field(default_factory=list)  # inputs converted to 8-bit RGB, one line each
    done: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("crop", "photo"), 0))  # inputs, by kind

    @property
    def ok(self) -> bool:
        return not self.failed

    def merge(self, other: SrReport) -> None:
        self.written += other.written
        self.failed += other.failed
        self.notes += other.notes
        for k, n in other.done.items():
            self.done[k] = self.done.get(k, 0) + n


class FileJob(Protocol):
    """The per-item work of :func:`run_files`; ``prepare`` runs on reader threads, ``run`` on the calling
    thread (the network), ``write`` on writer threads."""

    kind: Kind
    min_side: int  # inputs with a shorter side fail
    what: str  # names the work in the line of a failed batch: "super-resolution failed (...)"

    def prepare(self, src: Path, img: Image.Image) -> Any:
        """Check ``img`` (``ValueError``: one line) and do the work that needs no network."""

    def key(self, item: Any) -> Hashable:
        """Items with equal keys may share a batch."""

    def full(self, batch: Sequence[Any]) -> bool:
        """Whether ``batch`` is ready to run."""

    def run(self, batch: Sequence[Any]) -> Iterator[Any]:
        """One result per item, in order (a raise fails the items not yet answered)."""

    def write(self, src: Path, dst: Path, result: Any) -> list[Path]:
        """Write ``result`` atomically at ``dst`` (and beside it); the files written."""


def one_line(e: BaseException) -> str:
    """An exception's message on one line of at most 200 characters."""
    return " ".join(str(e).split())[:200] or type(e).__name__


def expand_inputs(inputs: Sequence[str | os.PathLike]) -> tuple[list[Path], list[tuple[str, str]], bool]:
    """Files, folders (their image files, sorted, not recursive) and globs -> (files, errors, any_folder).

    ``errors`` holds (input, reason) for arguments that matched nothing.
    """
    files: list[Path] = []
    errors: list[tuple[str, str]] = []
    many = False
    seen: set[Path] = set()

    def add(found: Iterable[Path]) -> None:
        for p in found:
            key = p.resolve()
            if key not in seen:
                seen.add(key)
                files.append(p)

    for raw in inputs:
        s = str(raw)
        p = Path(s)
        if p.is_dir():
            many = True
            found = list_images(p)
            if not found:
                errors.append((s, "folder holds no image files"))
            add(found)
        elif p.exists():
            add([p])
        elif glob.has_magic(s):
            many = True
            found = sorted(Path(q) for q in glob.glob(s) if Path(q).is_file())
            if not found:
                errors.append((s, "pattern matched no files"))
            add(found)
        else:
            errors.append((s, "no such file or folder"))
    return files, errors, many


def check_out_dir(out_dir: str | os.PathLike, inputs: Sequence[str | os.PathLike], files: Iterable[Path]) -> Path:
    """Refuse an output folder that is an input folder (outputs must never overwrite inputs), or one that is
    not yet there and is named like an image file (``-o out.png``): a user who wrote that expects a file, and
    would otherwise find a folder called ``out.png`` holding ``<stem>.png``."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: output path exists and is not a folder")
    if not out.exists() and out.suffix.lower() in IMAGE_EXTENSIONS:
        raise ValueError(
            f"{out}: looks like an image file name, but outputs go into a folder (<folder>/<input stem>.png); "
            "name a folder"
        )
    dirs = {Path(f).resolve().parent for f in files} | {Path(i).resolve() for i in inputs if Path(i).is_dir()}
    if out.resolve() in dirs:
        raise ValueError(
            f"{out}: the output folder is also an input folder; choose another one so inputs are never overwritten"
        )
    return out


def assign_outputs(files: Sequence[Path], out: Path) -> tuple[list[tuple[Path, Path]], list[tuple[str, str]]]:
    """One output name per input: a later input with an already used stem fails instead of overwriting."""
    owner: dict[str, Path] = {}
    todo, clashes = [], []
    for f in files:
        target = out / f"{f.stem}.png"
        if f.stem in owner:
            clashes.append((str(f), f"output {target.name} is already written for {owner[f.stem]}; rename one of them"))
            continue
        owner[f.stem] = f
        todo.append((f, target))
    return todo, clashes


@dataclass
class _Item:
    src: Path
    dst: Path
    kind: Kind
    job: FileJob
    data: Any
    size: tuple[int, int]
    notes: list[str]


class _Jobs:
    """The job of each kind, made on first use (a folder of crops never loads the face detector) by one thread."""

    def __init__(self, job_for: Callable[[Kind], FileJob]):
        self._job_for, self._made = job_for, {}
        self._lock = threading.Lock()

    def get(self, kind: Kind) -> FileJob:
        with self._lock:
            if kind not in self._made:
                try:
                    self._made[kind] = self._job_for(kind)
                except Exception as e:  # noqa: BLE001 - kept, and reported for each input of this kind
                    self._made[kind] = e
            job = self._made[kind]
        if isinstance(job, BaseException):
            raise job
        return job


def _read(src: Path, dst: Path, *, kind: str, strict: bool, jobs: _Jobs) -> _Item:
    """Decode one input, pick its kind and job, and prepare it (a reader thread); raises for a bad input."""
    notes: list[str] = []
    img = load_rgb(src, min_size=MIN_SIDE, notes=notes)
    w, h = img.size
    k: Kind = input_kind(w, h) if kind == "auto" else kind  # type: ignore[assignment]
    try:
        job = jobs.get(k)
    except ImportError as e:
        why = f"{w}x{h} px, over {MAX_CROP_SIDE} px a side" if kind == "auto" else "--whole"
        raise ImageError(
            src, f"a photo ({why}) needs whole-photo mode, which cannot start here: {install_hint(e)}"
        ) from None
    if min(w, h) < job.min_side:
        raise ImageError(src, f"image too small ({w}x{h}; need at least {job.min_side} px per side)")
    if notes and strict:
        raise ImageError(src, "; ".join(n.removeprefix(f"{src}: ") for n in notes) + " (refused: --strict)")
    return _Item(src, dst, k, job, job.prepare(src, img), (w, h), notes)


def _reason(src: Path, e: Exception) -> str:
    if isinstance(e, ImageError):
        return e.problem
    if isinstance(e, ValueError):
        return one_line(e).removeprefix(f"{src}: ")
    return f"unreadable ({one_line(e)})"


class _Inline:
    """An executor without threads: each task runs at once on the calling thread (``io_threads=0``)."""

    def submit(self, fn: Callable, *args: Any) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(*args))
        except Exception as e:  # noqa: BLE001 - handed to the caller through the future, as a pool would
            fut.set_exception(e)
        return fut

    def __enter__(self) -> _Inline:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _pool(threads: int) -> ThreadPoolExecutor | _Inline:
    return ThreadPoolExecutor(threads) if threads > 0 else _Inline()


def _prefetch(pool: ThreadPoolExecutor, fn: Callable, todo: Sequence[tuple[Path, Path]], ahead: int) -> Iterator:
    """(src, dst, future of fn(src, dst)) in order, keeping ``ahead`` reads in flight (bounded memory)."""
    futures: deque[tuple[Path, Path, Future]] = deque()
    it = iter(todo)
    for src, dst in it:
        futures.append((src, dst, pool.submit(fn, src, dst)))
        if len(futures) >= ahead:
            break
    while futures:
        yield futures.popleft()
        nxt = next(it, None)
        if nxt is not None:
            futures.append((nxt[0], nxt[1], pool.submit(fn, *nxt)))


class _Run:
    """One :func:`run_files` call's report, callbacks, progress bar and writes in flight."""

    def __init__(self, bar, on_error, on_note, on_info, on_done, pool: ThreadPoolExecutor | _Inline):
        self.report, self.bar, self.pool = SrReport(), bar, pool
        self.on_error, self.on_note, self.on_info, self.on_done = on_error, on_note, on_info, on_done
        self.pending: deque[tuple[_Item, Any, Future]] = deque()
        self.max_pending = MAX_PENDING_WRITES if isinstance(pool, ThreadPoolExecutor) else 0
        self.told_photo = False

    def _say(self, fn: Callable | None, *args: Any) -> None:
        if fn:
            self.bar.clear()  # print above the progress bar, not through it
            fn(*args)
            self.bar.refresh()

    def fail(self, name: str, reason: str) -> None:
        self.report.failed.append((name, reason))
        self._say(self.on_error, name, reason)

    def note(self, line: str) -> None:
        self.report.notes.append(line)
        self._say(self.on_note, line)

    def batch(self, batch: list[_Item]) -> None:
        """One batch through its job; each result goes to the writer threads as soon as it is made."""
        job, answered = batch[0].job, 0
        try:
            for item, result in zip(batch, job.run([i.data for i in batch])):
                answered += 1
                self.pending.append((item, result, self.pool.submit(job.write, item.src, item.dst, result)))
                while len(self.pending) > self.max_pending:
                    self.collect_one()
        except Exception as e:  # noqa: BLE001 - a failed batch must not stop the others
            for item in batch[answered:]:
                self.fail(str(item.src), f"{job.what} failed ({one_line(e)})")
        self.bar.update(len(batch))

    def collect_one(self) -> None:
        item, result, fut = self.pending.popleft()
        try:
            self.report.written += fut.result()
        except Exception as e:  # noqa: BLE001 - one unwritable output must not stop the others
            self.fail(str(item.src), f"cannot write {item.dst} ({one_line(e)})")
            return
        self.report.done[item.kind] += 1
        self._say(self.on_done, item.src, result)

    def collect_writes(self) -> None:
        while self.pending:
            self.collect_one()


def run_files(
    inputs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    job_for: Callable[[Kind], FileJob],
    *,
    kind: str = "auto",
    strict: bool = False,
    progress: bool | None = None,
    on_error: Callable[[str, str], None] | None = None,
    on_note: Callable[[str], None] | None = None,
    on_info: Callable[[str], None] | None = None,
    on_done: Callable[[Path, Any], None] | None = None,
    shard: tuple[int, int] = (0, 1),
    io_threads: int = 4,
    ahead: int = 64,
    first: Sequence[Kind] = (),
) -> SrReport:
    """Run every input through the job of its kind into ``out_dir``; never raises for a bad input.

    ``job_for(kind)`` makes the job of a kind ("crop", "photo") the first time an input of that kind comes
    (an ``ImportError`` then fails those inputs with the install line). ``kind``: ``auto`` (ask
    :func:`pkdn.kind.input_kind` per input), ``crop`` or ``photo``. ``progress``: a tqdm bar on stderr
    (None: when a folder or glob was given). Callbacks, each called on this thread as it happens:
    ``on_error(input, reason)`` per failure, ``on_note(line)`` per input converted to 8-bit RGB (``strict``
    fails those instead), ``on_info(line)`` once when ``auto`` first takes an input as a photo,
    ``on_done(input, result)`` per input written. ``shard=(rank, world)``: process every ``world``-th
    input from ``rank`` on (names are checked for clashes over all inputs first, so every process agrees;
    input-level errors are reported by rank 0 only). ``ahead``: inputs decoded ahead of the network.
    ``io_threads``: reader and writer threads each; 0 reads, runs and writes in turn on this thread (where
    the network already keeps every core busy, as on a small CPU, overlapping only makes it wait).
    ``first``: kinds whose jobs are made before any input is read (after the output folder is checked, before
    it is made), so that their errors (a bad model, a missing module) raise instead of failing every input.
    Raises ``ValueError`` for an unusable ``out_dir`` or ``kind`` (checked before any work), and what making
    a ``first`` job raises.
    """
    from tqdm import tqdm

    if kind not in FILE_KINDS:
        raise ValueError(f"kind must be one of {', '.join(FILE_KINDS)}, not {kind!r}")
    rank, world = shard
    files, missing, many = expand_inputs(inputs)
    out = check_out_dir(out_dir, inputs, files)
    jobs = _Jobs(job_for)
    for k in first:
        jobs.get(k)
    out.mkdir(parents=True, exist_ok=True)
    todo, clashes = assign_outputs(files, out)
    todo = todo[rank::world]
    show = (many if progress is None else progress) and rank == 0
    bar = tqdm(total=len(todo), unit="input", disable=not show, dynamic_ncols=True, leave=True)
    reader = functools.partial(_read, kind=kind, strict=strict, jobs=jobs)
    batches: dict[tuple[Kind, Hashable], list[_Item]] = {}
    with _pool(io_threads) as read_pool, _pool(io_threads) as write_pool:
        run = _Run(bar, on_error, on_note, on_info, on_done, write_pool)
        if rank == 0:  # input-level problems once, not once per process
            for name, reason in missing + clashes:
                run.fail(name, reason)
        try:
            for src, _, fut in _prefetch(read_pool, reader, todo, ahead=max(1, ahead)):
                try:
                    item: _Item = fut.result()
                except Exception as e:  # noqa: BLE001 - one bad file: report it, go on
                    run.fail(str(src), _reason(src, e))
                    bar.update(1)
                    continue
                for n in item.notes:
                    run.note(n)
                if item.kind == "photo" and kind == "auto" and not run.told_photo:
                    run.told_photo = True
                    w, h = item.size
                    run._say(
                        on_info,
                        f"{src} ({w}x{h}) and every other input over {MAX_CROP_SIDE} px a side is taken as a whole "
                        "photo: its faces are found, super-resolved and pasted back (--crop enlarges inputs whole)",
                    )
                key = (item.kind, item.job.key(item.data))
                group = batches.setdefault(key, [])
                group.append(item)
                if item.job.full([i.data for i in group]):
                    run.batch(batches.pop(key))
            for group in batches.values():
                run.batch(group)
            run.collect_writes()
        finally:
            bar.close()
    return run.report


@contextmanager
def torchrun_world(device: str | None = "auto") -> Iterator[DistEnv]:
    """The process group of a ``torchrun`` launch (a world of one otherwise) on ``device``, torn down after."""
    from pkdn.train.distributed import setup, teardown

    env = setup(device)
    try:
        yield env
    finally:
        teardown(env)


def gather_report(report: SrReport, env: DistEnv) -> SrReport:
    """Every process's report merged, in rank order (the report itself outside torchrun)."""
    from pkdn.train.distributed import gather

    total = SrReport()
    for r in gather(report, env):
        total.merge(r)
    return total
