"""`baclofen-cds keys generate` never leaves a private key for git to commit."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from cds.auth.keys_cli import PRIVATE_KEY_FILE, run_keys_cli
from tests.support import paths

GIT = shutil.which("git")
pytestmark = pytest.mark.skipif(GIT is None, reason="git is not installed")


def git(repo, *args: str) -> str:
    return subprocess.run([GIT, "-C", str(repo), *args], capture_output=True, text=True,
                          check=True).stdout


def test_generated_keys_are_ignored_by_git_in_any_folder(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    out = repo / "some" / "keys"
    assert run_keys_cli(["generate", "--out", str(out), "--iss", "https://ehr.example.org"]) == 0
    assert (out / PRIVATE_KEY_FILE).exists()
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


def test_the_readme_key_folder_is_ignored_in_this_repository():
    if not (paths.ROOT / ".git").exists():
        pytest.skip("not a git work tree")
    # The README runs `keys generate --out ./client-keys` in the repository itself.
    ignored = subprocess.run([GIT, "-C", str(paths.ROOT), "check-ignore", "-q",
                              f"client-keys/{PRIVATE_KEY_FILE}"])
    assert ignored.returncode == 0, ".gitignore must cover client-keys/"
