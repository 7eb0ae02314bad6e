"""The README, as a new user meets it: a fresh copy of the repository, `./dev.sh serve`
(which installs the package without the test extras into a new .venv and starts the
default server), then every shell block of the README run as written.

One install for the whole module (it reuses pip's cache, so durable_rules is built once
per machine). Only the port and /tmp are changed in the commands, so that runs beside
other servers and other test runs do not collide.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support import paths
from tests.support.live import free_port

pytestmark = pytest.mark.slow

INSTALL_SECONDS = 1200  # a first install on a cold pip cache builds durable_rules
README_PORT = "127.0.0.1:8080"
SHELL_BLOCK = re.compile(r"```sh\n(.*?)```", re.S)


def readme_blocks() -> list[str]:
    return SHELL_BLOCK.findall((paths.ROOT / "README.md").read_text(encoding="utf-8"))


def copy_checkout(target: Path) -> None:
    """The files a clone has: tracked ones, and new ones git does not ignore."""
    listed = subprocess.run(
        ["git", "-C", str(paths.ROOT), "ls-files", "-z", "--cached", "--others",
         "--exclude-standard"], capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = paths.ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def new_user_env(port: int) -> dict[str, str]:
    """The environment of someone who never ran the tests: no venv on PATH, no CDS_*."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CDS_", "PROMETHEUS_", "VIRTUAL_ENV", "PYTHON"))
           and k not in ("VENV",)}
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep)
        if p and not (Path(p).parent / "pyvenv.cfg").exists())
    env["CDS_PORT"] = str(port)  # `serve --port` defaults to it; 8080 may be taken here
    return env


class Background:
    """A README command that keeps running (a server), in its own process group."""

    def __init__(self, command: str, cwd: Path, env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(["bash", "-c", command], cwd=cwd, env=env,
                                     stdout=self._out, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def wait_healthy(self, base_url: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                if requests.get(base_url + "/healthz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(1)
        pytest.fail(f"not healthy after {seconds} s:\n{self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self._out.close()


def run_block(block: str, clone: Path, env: dict[str, str]) -> str:
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=clone, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{block}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    if shutil.which("git") is None or not (paths.ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout to copy")
    target = tmp_path_factory.mktemp("fresh-clone")
    copy_checkout(target)
    return target


@pytest.fixture(scope="module")
def trial(clone: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """`./dev.sh serve`, the README's first command, exactly: install, then serve."""
    quick_start = readme_blocks()[0]
    assert "./dev.sh serve" in quick_start
    port = free_port()
    env = new_user_env(port)
    log = paths.ROOT / "test-output" / "fresh-clone-serve.log"
    log.parent.mkdir(exist_ok=True)
    server = Background("./dev.sh serve", clone, env, log)
    try:
        server.wait_healthy(f"http://127.0.0.1:{port}", INSTALL_SECONDS)
        yield f"127.0.0.1:{port}", env
    finally:
        server.stop()


def test_dev_sh_serve_installs_without_test_extras_and_serves_the_default_worker(clone, trial):
    address, _env = trial
    services = requests.get(f"http://{address}/cds-services", timeout=10).json()["services"]
    assert {s["hook"] for s in services} >= {"order-sign", "patient-view"}
    venv_python = str(clone / ".venv" / "bin" / "python")
    # The base install only: a test extra must not be what makes serving work.
    assert subprocess.run([venv_python, "-c", "import pytest"],
                          capture_output=True).returncode != 0
    log = (paths.ROOT / "test-output" / "fresh-clone-serve.log").read_text(errors="replace")
    assert "LeastConnectionsGeventWorker" in log
    assert "invalid or not found" not in log and "Traceback" not in log, log[-4000:]


def test_readme_try_it_commands_work_as_written(clone, trial, tmp_path):
    address, env = trial
    block = next(b for b in readme_blocks() if "fixtures render" in b)
    block = block.replace(README_PORT, address).replace("/tmp/", f"{tmp_path}/")
    out = run_block(block, clone, env)
    assert "01-oral-stop-long-term" in out
    assert '"baclofen-order-sign"' in out  # discovery
    assert '"summary"' in out and "taper" in out  # the card


def test_readme_screenshot_command_works_as_written(clone, trial, tmp_path):
    if shutil.which("chromium") is None:
        pytest.skip("no chromium (apt-get install chromium)")
    address, env = trial
    block = next(b for b in readme_blocks() if "--screenshot" in b)
    block = block.replace(README_PORT, address).replace("/tmp/", f"{tmp_path}/")
    if os.geteuid() == 0:  # Chromium refuses to run as root without it
        block = block.replace("chromium ", "chromium --no-sandbox ", 1)
    run_block(block, clone, env)
    assert (tmp_path / "preview.png").stat().st_size > 10_000


def test_every_readme_block_is_run_by_a_test_here():
    markers = ("./dev.sh serve", "fixtures render", "--screenshot", "keys generate",
               "keys token")
    for block in readme_blocks():
        assert any(marker in block for marker in markers), f"no test runs:\n{block}"


def test_readme_command_table_works_as_written(clone, trial, tmp_path):
    _address, env = trial
    exe = ".venv/bin/baclofen-cds"
    order = run_block(f"{exe} taper --daily-dose 60 --product 197391 --fhir", clone, env)
    assert json.loads(order)["resourceType"] == "MedicationRequest"
    response = run_block(f"{exe} evaluate fhir_fixtures/01-oral-stop-long-term.json", clone, env)
    assert json.loads(response)["cards"]
    assert "rules/ ok" in run_block(f"{exe} knowledge check", clone, env)
    run_block(f"{exe} feedback-report --json", clone, env)
    run_block(f"{exe} --help", clone, env)


def test_readme_authentication_example_works_as_written(clone, trial):
    _address, env = trial
    port = free_port()  # the local trial still holds its port
    env = {**env, "CDS_PORT": str(port)}
    address = f"127.0.0.1:{port}"
    start, call = [b.replace(README_PORT, address) for b in readme_blocks()
                   if "keys generate" in b or "keys token" in b]
    server = Background(start, clone, env, paths.ROOT / "test-output" / "fresh-clone-auth.log")
    try:
        server.wait_healthy(f"http://{address}", 120)
        assert requests.get(f"http://{address}/cds-services", timeout=10).status_code == 401
        out = run_block(call, clone, env)
        assert json.loads(out)["services"]
    finally:
        server.stop()
