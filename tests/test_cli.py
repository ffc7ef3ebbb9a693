"""What a new user meets first: `pkdn --help`/`--version`, one error policy and one image list for every command."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from _eval_helpers import student_path, write_lr_faces
from pkdn import __version__, restore
from pkdn.cli import build_parser, main
from pkdn.imageio import IMAGE_EXTENSIONS

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _pkdn(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pkdn.cli", *args], capture_output=True, text=True, env=ENV, timeout=timeout
    )


def test_help_says_what_pkdn_does_and_version_is_printed(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "super-resolution" in out and "argument parsing" not in out
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"pkdn {__version__}"


def _subparser(name: str) -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def test_cli_defaults_are_the_librarys():
    sr = _subparser("sr").parse_args(["x", "-o", "y"])
    assert sr.batch_size == restore.DEFAULT_BATCH_SIZE and sr.max_side == restore.MAX_SIDE
    assert _subparser("eval").parse_args(["d"]).batch_size == restore.DEFAULT_BATCH_SIZE


def test_one_list_of_image_extensions(celeba, tmp_path):
    """A .pgm face is an image to `pkdn sr` as it is to `pkdn prepare` (sr once said the folder held none)."""
    assert ".pgm" in IMAGE_EXTENSIONS
    folder = tmp_path / "pgm"
    folder.mkdir()
    write_lr_faces(celeba, tmp_path / "lr", n=1)
    src = next((tmp_path / "lr").glob("*.png"))
    Image.open(src).convert("L").save(folder / "face.pgm")
    r = restore.Restorer(student_path(celeba, tmp_path / "m")).files([folder], tmp_path / "out")
    assert r.ok and [p.name for p in r.written] == ["face.png"], r.failed
    assert any("grayscale" in n for n in r.notes)


def test_prepare_reports_each_bad_file_on_stderr_and_exits_1(celeba, tmp_path):
    """Same policy as `pkdn sr`: one `pkdn prepare: error: PATH: reason` line per bad input, exit status 1.

    Run as a user runs it (a subprocess, without pytest's warning filters): MediaPipe's protobuf
    deprecation warnings must not reach the terminal.
    """
    src = tmp_path / "src"
    src.mkdir()
    good = sorted((celeba / "test").glob("*.jpg"))[0]
    shutil.copy(good, src / good.name)
    (src / "broken.jpg").write_text("not a jpeg")
    r = _pkdn("prepare", str(src), str(tmp_path / "out"), "--split", "test", "--no-progress")
    assert r.returncode == 1, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("pkdn prepare: error: ")]
    assert len(errors) == 1 and f"{src / 'broken.jpg'}: not an image" in errors[0], r.stderr
    assert r.stderr.strip() == errors[0], r.stderr  # no protobuf deprecations, no TFLite / absl chatter
    assert "test: 1/2 images" in r.stdout


def test_train_set_values_take_the_config_fields_type(tmp_path, capsys):
    """`--set optim.lr=2e-4` (README's example) is a float, not YAML 1.1's string; a bad value is one line."""
    from pkdn.config import load_config

    cfg = load_config(REPO / "configs" / "lite_teacher.yaml", ["optim.lr=2e-4", "optim.min_lr=1e-7", "steps=1e3"])
    assert cfg.optim.lr == 2e-4 and isinstance(cfg.optim.lr, float) and cfg.steps == 1000
    assert (
        main(
            [
                "train",
                "teacher",
                "--config",
                str(REPO / "configs" / "lite_teacher.yaml"),
                "--set",
                "optim.lr=fast",
                "--out",
                str(tmp_path / "run"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("pkdn train: error:") and "optim.lr" in err and "'fast'" in err


def test_help_names_every_shipped_model():
    """--help lists the shipped models from a copy (no torch at start-up); it must not drift from the package's."""
    from pkdn import checkpoint
    from pkdn.cli import SHIPPED_NAMES

    assert SHIPPED_NAMES == tuple(checkpoint.SHIPPED_MODELS)


def test_help_imports_no_torch():
    """`pkdn --help` and `pkdn sr --help` answer without importing torch (seconds saved on every look)."""
    code = (
        "import sys, contextlib, io, pkdn.cli\n"
        "pkdn.cli.build_parser()\n"
        "for argv in (['--help'], ['sr', '--help'], ['eval', '--help']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):\n"
        "        pkdn.cli.main(argv)\n"
        "    assert '--' in out.getvalue(), argv\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "print('ok')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_missing_optional_module_is_one_line_naming_the_install(tmp_path):
    """Whole-photo mode with OpenCV missing: exit 2 and one line saying what to install, no traceback."""
    Image.new("RGB", (200, 150), (90, 120, 150)).save(tmp_path / "photo.png")
    code = (
        "import sys\n"
        "sys.modules['cv2'] = None  # as if OpenCV were not installed\n"
        "from pkdn.cli import main\n"
        f"sys.exit(main(['sr', '--whole', {str(tmp_path / 'photo.png')!r}, '-o', {str(tmp_path / 'out')!r}]))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=300)
    err = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(err) == 1, r.stderr
    assert err[0].startswith("pkdn sr: error: ") and "cv2" in err[0] and "pip install --force-reinstall pkdn" in err[0]
    assert not (tmp_path / "out" / "photo.png").exists()


def test_errors_become_exit_codes_in_main_only():
    """No command handler prints its own fatal error: main() maps exceptions to `exit 2` once."""
    src = (REPO / "src" / "pkdn" / "cli.py").read_text()
    assert src.count("return 2") == 1 and src.count("except (OSError") == 1 and src.count("except ImportError") == 1
