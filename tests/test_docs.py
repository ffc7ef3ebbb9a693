"""The documentation's relative links and the repository paths it names resolve in this checkout."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = sorted([REPO / "README.md", REPO / "CHANGELOG.md", REPO / "checkpoints" / "README.md", *REPO.glob("docs/*.md")])
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")  # [text](target) and ![alt](target)
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
# a path of the repository written in backticks: `configs/lite_student.yaml`, `scripts/ship_model.py`, ...
REPO_PATH = re.compile(r"`((?:configs|scripts|benchmarks|checkpoints|docs|tests)/[\w./-]+)`")
# Known breaks that other branches fix, as strict xfails: once fixed, the XPASS fails and names the entry to delete.
PENDING = {}


def cases(kind: str, docs: list[Path]) -> list:
    """One parameter per document, marked strict xfail where PENDING names it."""
    out = []
    for md in docs:
        rel = str(md.relative_to(REPO))
        reason = PENDING.get((kind, rel))
        marks = [pytest.mark.xfail(strict=True, reason=f"{reason}; delete its PENDING entry")] if reason else []
        out.append(pytest.param(md, id=rel, marks=marks))
    return out


def anchors(md: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered."""
    seen: dict[str, int] = {}
    out = set()
    for line in FENCE.sub("", md.read_text()).splitlines():
        if m := re.match(r"#{1,6}\s+(.*)", line):
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def links(md: Path) -> list[str]:
    return [t for t in LINK.findall(FENCE.sub("", md.read_text())) if not re.match(r"[a-z]+:", t)]


def test_anchor_slugs_follow_github():
    cli = anchors(REPO / "docs" / "cli.md")
    assert "self-ensemble---ensemble-128" in cli and "pkdn-srs-compute-path" in cli


@pytest.mark.parametrize("md", cases("links", DOCS))
def test_relative_links_resolve(md):
    broken = []
    for target in links(md):
        path, _, anchor = target.partition("#")
        dest = (md.parent / path).resolve() if path else md
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.relative_to(REPO)}")
    assert not broken, f"{md.relative_to(REPO)}: " + "; ".join(broken)


@pytest.mark.parametrize("md", cases("paths", [d for d in DOCS if d.name != "CHANGELOG.md"]))
def test_named_repository_paths_exist(md):
    # the checkout's own folders (runs/ and prepared/ are what commands write); CHANGELOG.md may name retired files
    missing = sorted({p for p in REPO_PATH.findall(md.read_text()) if "*" not in p and not (REPO / p).exists()})
    assert not missing, f"{md.relative_to(REPO)} names paths this checkout lacks: {missing}"


def test_readme_is_short_and_keeps_the_ci_block():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    # .ci/run runs the ```bash block that follows this marker
    assert re.search(r"<!-- ci:commands -->\n```bash\n.*python -m pytest", text, re.S)
