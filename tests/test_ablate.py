"""`pkdn ablate`: the whole Table 2 at a tiny size on real faces, interrupted, resumed and reused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from pkdn.ablation import load_ablation, plan, status
from pkdn.ablation.scores import Scores
from pkdn.checkpoint import load_model
from pkdn.cli import main as cli
from pkdn.data.dataset import FaceSRDataset
from pkdn.data.degrade import upsample
from pkdn.imageio import to_float_tensor as pil_to_tensor
from pkdn.metrics import psnr_ssim_y
from pkdn.restore import Restorer
from pkdn.train.loop import validate

RUNS = [
    "teacher_no_pfb_ffb",
    "teacher_no_ffb",
    "teacher_full",
    "student_no_pfb_ffb_s0",
    "student_no_ffb_s0",
    "student_full_s0",
    "student_full_s1",
    "student_none_s0",
    "student_none_s1",
]


def _config(tmp: Path, data: Path) -> Path:
    train = {
        "model": {"preset": "tiny"},
        "data": {"augment": True, "val_limit": 4},
        "batch_size": 4,
        "steps": 6,
        "val_every": 6,
        "ckpt_every": 2,
        "log_every": 2,
        "threads": 1,
        "optim": {"lr": 2e-3, "min_lr": 1e-4},
    }
    cfg = {
        "out_dir": str(tmp / "ablation"),
        "data_root": str(data),
        "eval_split": "test",
        "teacher": {**train, "seed": 5},
        # 12 train faces in batches of 4: 3 steps an epoch; distillation decays over the first one.
        "student": {**train, "distill": {"schedule": "kdfsr", "decay_epochs": 1.0}},
    }
    path = tmp / "ablation.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _events(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]


def _rows(table: str) -> dict[tuple[str, str], list[str]]:
    """(first cell, second cell) -> cells of every Markdown table row."""
    out = {}
    for line in table.splitlines():
        if line.startswith("| ") and "---" not in line:
            cells = [c.strip() for c in line.strip("|").split("|")]
            out[(cells[0], cells[1])] = cells
    return out


def test_ablate_runs_the_whole_table_resumes_and_reuses(tmp_path, prepared_small, capsys):
    cfg = _config(tmp_path, prepared_small)
    out = tmp_path / "ablation"

    # An interrupted first invocation: the first teacher pauses after 3 of its 6 steps.
    assert cli(["ablate", str(cfg), "--stop-after", "3", "--no-progress"]) == 1
    acfg = load_ablation(cfg)
    runs = {r.name: r for r in plan(acfg)}
    assert list(runs) == RUNS
    assert [status(runs[n]) for n in RUNS] == ["partial"] + ["todo"] * 8
    assert "not run yet" in (out / "table.md").read_text()
    capsys.readouterr()

    # The next invocation finishes everything: the paused teacher resumes at step 3, the rest train from scratch.
    assert cli(["ablate", str(cfg), "--no-progress"]) == 0
    table = capsys.readouterr().out
    assert all(status(runs[n]) == "done" for n in RUNS)
    starts = [e["step"] for e in _events(out / "teacher_no_pfb_ffb") if e["event"] == "start"]
    assert starts == [0, 3]
    for n in RUNS:  # finished runs keep only what the table and the students need
        assert {p.name for p in (out / n).iterdir()} <= {
            "best.safetensors",
            "config.yaml",
            "log.jsonl",
            "scores.json",
            "teacher.sha256",
        }, n

    # Each run is the network and the training the table says it is.
    flags = {
        n: (m.config.use_pfb, m.config.use_ffb) for n in RUNS[:3] for m in [load_model(out / n / "best.safetensors")]
    }
    assert flags == {
        "teacher_no_pfb_ffb": (False, False),
        "teacher_no_ffb": (True, False),
        "teacher_full": (True, True),
    }
    for n in RUNS[3:]:
        c = yaml.safe_load((out / n / "config.yaml").read_text())
        distilled = "_none_" not in n
        assert (c["stage"], c["seed"], c["distill"]["enabled"]) == ("student", int(n[-1]), distilled)
        assert c["teacher"] == (
            str(out / f"teacher_{n.split('_s')[0][8:]}" / "best.safetensors") if distilled else None
        )
        assert ("l_fs" in next(e for e in _events(out / n) if e["event"] == "train")) == distilled
    assert yaml.safe_load((out / "teacher_full" / "config.yaml").read_text())["init"] is None

    # Teacher scores match the training loop's own validation with HR parsing maps on the test faces.
    test = FaceSRDataset(prepared_small, "test", with_parsing=True)
    teacher = Scores.load(out / "teacher_full" / "scores.json")
    ref = validate(load_model(out / "teacher_full" / "best.safetensors"), test, torch.device("cpu"))
    assert len(teacher.names) == len(test) == ref["images"] == 12
    assert teacher.mean()[0] == pytest.approx(ref["psnr"], abs=1e-4)
    assert teacher.mean()[1] == pytest.approx(ref["ssim"], abs=1e-5)

    # Student and bicubic scores match a direct computation from the prepared PNGs (the inference path).
    test_dir = prepared_small / "test"
    full, none = (Scores.load(out / n / "scores.json") for n in ("student_full_s0", "student_none_s0"))
    bic = Scores.load(out / "bicubic.json")
    assert full.names == none.names == bic.names == sorted(p.stem for p in (test_dir / "hr").glob("*.png"))
    lr = [Image.open(test_dir / "lr" / f"{n}.png").convert("RGB") for n in full.names]
    hr = torch.stack([pil_to_tensor(Image.open(test_dir / "hr" / f"{n}.png").convert("RGB")) for n in full.names])
    student = load_model(out / "student_full_s0" / "best.safetensors")
    p_full, s_full = psnr_ssim_y(
        Restorer(student, precision="fp32").tensor(torch.stack([pil_to_tensor(x) for x in lr])), hr
    )
    p_bic, _ = psnr_ssim_y(torch.stack([pil_to_tensor(upsample(x)) for x in lr]), hr)
    np.testing.assert_allclose(full.psnr, p_full.numpy(), atol=1e-4)
    np.testing.assert_allclose(full.ssim, s_full.numpy(), atol=1e-5)
    np.testing.assert_allclose(bic.psnr, p_bic.numpy(), atol=1e-4)

    # The printed table: bicubic, three teachers, six students, paired differences with their standard errors.
    assert (out / "table.md").read_text().strip() in table
    rows = _rows(table)
    assert rows[("bicubic", "—")][3] == f"{bic.mean()[0]:.2f}"
    assert rows[("PFB + FFB (full) `full`", "6")][3] == f"{teacher.mean()[0]:.2f}"
    d = np.array(full.psnr) - np.array(none.psnr)
    row = rows[("from PFB + FFB (full) `full`", "0")]
    assert row[6:] == [
        f"{d.mean():+.3f}",
        f"{d.std(ddof=1) / np.sqrt(len(d)):.3f}",
        f"{100 * (d > 0).mean():.0f} %",
        "0",
    ]
    assert rows[("no distillation", "0")][6] == "reference"
    assert rows[("no distillation", "1")][9] == "0"  # the seed-to-seed noise row
    assert "Seed spread, no-distillation students" in table and "Seed spread, students from `full`" in table
    assert "27.56 / 0.8062" in table  # the paper's Table 2 beside ours

    # A third invocation retrains and rescores nothing and prints the same table.
    logs = {n: (out / n / "log.jsonl").read_text() for n in RUNS}
    printed = (out / "table.md").read_text()
    assert cli(["ablate", str(cfg), "--no-progress"]) == 0
    again = capsys.readouterr().out
    assert again.count("finished earlier, reused") == len(RUNS) and "training" not in again
    assert (out / "table.md").read_text() == printed and printed.strip() in again
    assert logs == {n: (out / n / "log.jsonl").read_text() for n in RUNS}

    # The repository keeps scores, configs and logs, not weights: without them the table is still reused.
    for w in out.rglob("*.safetensors"):
        w.unlink()
    assert cli(["ablate", str(cfg), "--no-progress"]) == 0
    again = capsys.readouterr().out
    assert again.count("finished earlier, reused") == len(RUNS) and (out / "table.md").read_text() == printed

    # A changed experiment is refused rather than mixed with finished runs of the old one.
    assert cli(["ablate", str(cfg), "--set", "student.steps=7", "--no-progress"]) == 2
    assert "was trained with another config (differs in ['steps'])" in capsys.readouterr().err


def test_ablate_jobs_trains_runs_in_parallel_with_the_same_results(tmp_path, prepared_small, capsys):
    """--jobs trains runs in separate processes, students once their teacher is done; each is the same run as alone.

    A try (another way to distil, at the same student budget) is one more student, paired like the others."""
    cfg = _config(tmp_path, prepared_small)
    acfg = yaml.safe_load(cfg.read_text())
    acfg["students"] = {"full": [0], "none": [0]}
    acfg["teachers"] = {"full": {}}
    acfg["tries"] = {"ts1": {"teacher": "full", "seeds": [0], "student": {"distill": {"lambda_ts": 1.0}}}}
    small = tmp_path / "small.yaml"
    small.write_text(yaml.safe_dump(acfg))
    assert cli(["ablate", str(small), "--no-progress", "--set", f"out_dir={tmp_path / 'seq'}"]) == 0
    assert cli(["ablate", str(small), "--no-progress", "--jobs", "2", "--set", f"out_dir={tmp_path / 'par'}"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    # the no-distillation student does not wait for the teacher; the distilled ones start once it has finished
    assert lines.index("queued student_none_s0") < lines.index("finished teacher_full"), out
    assert lines.index("finished teacher_full") < lines.index("queued student_full_s0"), out
    assert lines.index("finished teacher_full") < lines.index("queued try_ts1_s0"), out
    for name in ("teacher_full", "student_full_s0", "student_none_s0", "try_ts1_s0"):
        seq, par = (load_model(tmp_path / d / name / "best.safetensors") for d in ("seq", "par"))
        for (k, a), b in zip(seq.state_dict().items(), par.state_dict().values(), strict=True):
            assert torch.equal(a, b), (name, k)
    seq_table = (tmp_path / "seq" / "table.md").read_text()
    assert seq_table == (tmp_path / "par" / "table.md").read_text().replace(
        str(tmp_path / "par"), str(tmp_path / "seq")
    )
    assert yaml.safe_load((tmp_path / "par" / "try_ts1_s0" / "config.yaml").read_text())["distill"]["lambda_ts"] == 1.0
    full, none, ts1 = (
        Scores.load(tmp_path / "par" / n / "scores.json") for n in RUNS[5:6] + RUNS[7:8] + ["try_ts1_s0"]
    )
    row = _rows(seq_table)[("try `ts1`: from PFB + FFB (full) `full`, distill.lambda_ts=1.0", "0")]
    assert row[6] == f"{np.mean(np.array(ts1.psnr) - np.array(none.psnr)):+.3f}" and row[9] == "0"
    assert cli(["ablate", str(small), "--no-progress", "--jobs", "0"]) == 2
    # a try keeps the students' budget: its steps are the students' steps
    acfg["tries"]["ts1"]["student"]["steps"] = 3
    small.write_text(yaml.safe_dump(acfg))
    assert cli(["ablate", str(small), "--no-progress"]) == 2
    assert "tries.ts1.student: may not set ['steps']" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"teachers": {"none": {}}}, "teachers.none: the name is kept"),
        ({"students": {"wide": [0]}}, "students.wide: no such teacher variant"),
        ({"tries": {"t": {"teacher": "full", "seeds": [0], "student": {"steps": 9}}}}, "may not set"),
        ({"students": {"none": [0, 0]}}, "distinct seeds"),
    ],
)
def test_ablation_config_rejects_what_would_make_a_wrong_table(tmp_path, over, message):
    cfg = {**yaml.safe_load(_config(tmp_path, tmp_path).read_text()), **over}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(ValueError, match=message):
        load_ablation(tmp_path / "bad.yaml")
