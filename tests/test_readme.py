"""The README's commands work as written.

The first command runs for real in a fresh virtual environment (no system site-packages) inside a
copy of the repository, so a missing install step or an undeclared dependency cannot hide behind
what happens to be installed already. Only its step count is cut down. The test command must be
what `.ci/run` runs.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

from PIL import Image

from conftest import ROOT

README = ROOT / "README.md"
CI = ROOT / ".ci" / "run"
# not part of a fresh checkout: version control, outputs, caches and build products
NOT_COPIED = shutil.ignore_patterns(".git", "runs", "samples", "__pycache__", ".pytest_cache", ".benchmarks",
                                    ".mypy_cache", ".ruff_cache", "*.egg-info", "build", "dist", ".venv", "*.pyc",
                                    "node_modules")


def readme_block(marker: str) -> str:
    """The fenced bash block right after `<!-- marker -->` in the README."""
    text = README.read_text()
    m = re.search(rf"<!--\s*{re.escape(marker)}\s*-->\s*```bash\n(.*?)```", text, re.S)
    assert m, f"README.md has no ```bash block right after <!-- {marker} -->"
    return m.group(1).strip()


def test_first_command_in_a_fresh_virtual_environment(tmp_path):
    command = readme_block("first-command")
    assert "pip install torch==2.13.0" in command
    assert re.search(r"--steps\s+\d+", command), command
    command = re.sub(r"--steps\s+\d+", "--steps 2", command)

    repo = tmp_path / "repo"
    shutil.copytree(ROOT, repo, ignore=NOT_COPIED)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONUSERBASE")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}", VIRTUAL_ENV=str(venv),
               PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONNOUSERSITE="1")
    result = subprocess.run(["bash", "-c", command], cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (f"{command}\nexit {result.returncode}\n--- stdout\n{result.stdout[-4000:]}"
                                    f"\n--- stderr\n{result.stderr[-4000:]}")

    # it ran from the virtual environment, not from whatever the test's Python has installed
    assert (venv / "bin" / "sketchrnn").is_file()
    run = repo / "runs" / "sheep"
    assert (run / "run.json").is_file() and (run / "checkpoint.json").is_file()
    samples = repo / "samples"
    svgs = sorted(samples.glob("sample_*.svg"))
    pngs = sorted(samples.glob("sample_*.png"))
    assert len(svgs) == 16 and len(pngs) == 16, sorted(p.name for p in samples.iterdir())
    assert (samples / "grid.png").is_file() and (samples / "sample.npz").is_file()
    root = ET.parse(svgs[0]).getroot()
    assert root.tag.endswith("svg") and any(p.get("d") for p in root.iter() if p.tag.endswith("path"))
    with Image.open(samples / "grid.png") as grid:
        assert grid.width > 0 and grid.height > 0


def _pip_packages(line: str) -> set[str]:
    """What a `pip install` command installs (its non-option words, and `-e` targets)."""
    words = shlex.split(line)
    start = words.index("install") + 1
    return {w for w in words[start:] if not w.startswith("--") and w != "-e"}


def test_ci_runs_the_readme_test_command():
    command = readme_block("test-command")
    parts = [p.strip() for p in command.split("&&")]
    installs = [p for p in parts if re.match(r"(python3? -m )?pip install", p)]
    runs = [p for p in parts if p not in installs]
    assert installs and len(runs) == 1, command
    readme_packages = set().union(*(_pip_packages(p) for p in installs))
    assert "torch==2.13.0" in readme_packages

    lines = [ln.strip() for ln in CI.read_text().splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    ci_installs = [ln.split("#")[0] for ln in lines if re.match(r"(python3? -m )?pip install", ln)]
    ci_packages = set().union(*(_pip_packages(ln) for ln in ci_installs))
    assert ci_packages == readme_packages, f".ci/run installs {sorted(ci_packages)}, README {sorted(readme_packages)}"
    assert "torch==2.13.0" in ci_packages

    def same(cmd: str) -> str:  # python and python3 name the same interpreter here
        return " ".join(shlex.split(re.sub(r"^python3? ", "python ", cmd)))

    assert lines[-1].startswith("python3 -m pytest") or lines[-1].startswith("python -m pytest"), lines[-1]
    assert same(lines[-1]) == same(runs[0]), f".ci/run ends with {lines[-1]!r}, README runs {runs[0]!r}"
