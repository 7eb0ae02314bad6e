"""The quick-start setup says durable_rules needs a compiler and headers, and stops
clearly when they are missing (checked before anything is installed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support import paths

ROOT = paths.ROOT


def run_setup(tmp_path: Path, extra_bin: dict[str, str], python: str | None = None):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in ("dirname", "printf", "cat"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    (bin_dir / "python3").symlink_to(sys.executable)
    for name, body in extra_bin.items():
        path = bin_dir / name
        path.write_text(body)
        path.chmod(0o755)
    env = {"PATH": str(bin_dir), "VENV": str(tmp_path / "venv"), "HOME": str(tmp_path)}
    if python:
        env["PYTHON"] = python
    return subprocess.run(["/bin/sh", str(ROOT / "dev.sh"), "setup"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_missing_compiler_stops_setup_with_a_clear_message(tmp_path):
    result = run_setup(tmp_path, {})
    assert result.returncode != 0
    assert "durable_rules compiles a C extension" in result.stdout
    assert "no C compiler found" in result.stderr
    assert "apt-get install gcc" in result.stderr
    assert not (tmp_path / "venv").exists()


def test_missing_python_headers_stop_setup_with_a_clear_message(tmp_path):
    fake_python = tmp_path / "python-without-headers"
    fake_python.write_text(
        "#!/bin/sh\n"
        'case "$*" in *sysconfig*) echo /nonexistent/include; exit 0;; esac\n'
        f'exec {sys.executable} "$@"\n')
    fake_python.chmod(0o755)
    result = run_setup(tmp_path, {"cc": "#!/bin/sh\nexit 0\n"}, python=str(fake_python))
    assert result.returncode != 0
    assert "Python headers not found" in result.stderr
    assert "python3-dev" in result.stderr


def test_setup_names_the_python_it_needs(tmp_path):
    result = run_setup(tmp_path, {}, python="python2-does-not-exist")
    assert result.returncode != 0
    assert "Python 3.11" in result.stderr
    assert os.environ.get("PATH")  # the real environment is untouched
