"""What the README tells a newcomer works as written."""

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_says_how_to_change_the_port():
    assert "PORT=8001 make run" in (ROOT / "README.md").read_text()


def test_make_run_serves_on_the_port_given():
    # make is what the README's two commands need: missing, this fails rather than skips.
    assert shutil.which("make"), "make is not installed"
    dry_run = subprocess.run(
        ["make", "-n", "run", "PORT=8001"],  # noqa: S607  (make from PATH, fixed arguments)
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "manage.py runserver 127.0.0.1:8001" in dry_run.stdout
