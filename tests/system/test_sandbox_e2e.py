"""The real CDS Hooks Sandbox against the service, end to end (tools/sandbox-e2e/run.py).

Runs only when CDS_SANDBOX_BUILD names a build of github.com/cds-hooks/sandbox (see
tools/sandbox-e2e/README.md); otherwise skipped with that message, so CI needs no Sandbox.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import paths

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCRIPT = paths.ROOT / "tools" / "sandbox-e2e" / "run.py"
ENV_BUILD = "CDS_SANDBOX_BUILD"
CHROMIUM = "/usr/bin/chromium"


def test_real_sandbox_end_to_end_with_auth_off_and_on(output_dir: Path):
    build = os.environ.get(ENV_BUILD)
    if not build:
        pytest.skip(f"no CDS Hooks Sandbox build given ({ENV_BUILD}=DIR); "
                    "see tools/sandbox-e2e/README.md to build one")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--sandbox-build", build, "--auth", "both",
         "--out", str(output_dir / "sandbox-e2e")],
        cwd=paths.ROOT, capture_output=True, text=True, timeout=1500, check=False)
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
    assert "SKIPPED" not in done.stdout
