"""The example's README followed as a newcomer would: its shell blocks run as
pasted, in a copy of the client's folder, with nothing installed beforehand.
The first makes a fresh virtualenv, installs what the README says and starts
the app; the second places a call, which must be answered with the markup
that connects the caller (not a 500 for a missing package)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, List

import pytest
from slotgate_server import Server

import slotgate

HERE = Path(__file__).resolve().parents[1]
CLIENT = HERE.parents[1]  # clients/python
README = HERE / "README.md"


def shell_blocks(text: str) -> List[str]:
    return re.findall(r"^```sh\n(.*?)^```$", text, re.M | re.S)


@pytest.fixture
def slotgate_server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path / "data").start()
    yield srv
    srv.kill()


def newcomer_env(server: Server) -> Dict[str, str]:
    """A shell with the key in `KEY`, and none of this test run's virtualenv."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    env["KEY"] = server.key
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


@pytest.mark.timeout(600)  # installs packages into a fresh virtualenv first
def test_the_readme_takes_a_newcomer_from_install_to_a_call(
    slotgate_server: Server, tmp_path: Path
) -> None:
    install_and_run, call = shell_blocks(README.read_text())[:2]
    assert "pip install" in install_and_run and "uvicorn" in install_and_run
    # The repository as a newcomer has it: the client's folder, without
    # anything a test run left there.
    root = tmp_path / "repo"
    shutil.copytree(
        CLIENT,
        root / "clients" / "python",
        ignore=shutil.ignore_patterns(
            ".venv", "__pycache__", "*cache*", "*.egg-info", "build", "dist"
        ),
    )
    with slotgate.Client(slotgate_server.url, slotgate_server.key) as admin:
        admin.create_org("acme", 20)
    env = newcomer_env(slotgate_server)
    script = install_and_run.replace("127.0.0.1:7878", f"127.0.0.1:{slotgate_server.port}")
    script = script.replace("--port 8000", "--port 0")  # a free port
    log_path = tmp_path / "app.log"
    with open(log_path, "wb") as log:
        app = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # the shell and uvicorn, stopped together
        )
    try:
        deadline = time.monotonic() + 540
        while True:
            m = re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", log_path.read_text())
            if m:
                break
            if app.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the README's app did not start:\n" + log_path.read_text())
            time.sleep(0.2)
        placed = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", call.replace("http://127.0.0.1:8000", m.group(1))],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert placed.returncode == 0, placed.stderr
        assert "<Connect><Stream" in placed.stdout, (
            f"the call was not connected:\n{placed.stdout}\n{log_path.read_text()}"
        )
        with slotgate.Client(slotgate_server.url, slotgate_server.key) as admin:
            ended = admin.get_call("acme", "CA0001")
        assert ended.end_reason is slotgate.EndReason.RELEASED, ended
    finally:
        os.killpg(app.pid, signal.SIGTERM)
        try:
            app.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(app.pid, signal.SIGKILL)
            app.wait()
