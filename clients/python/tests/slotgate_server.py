"""Runs the real slotgate binary for tests: a free port, a fresh data directory."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Callable, List, Optional, Sequence

import httpx

OPERATOR_KEY = "sgo_python_client_tests_" + "0" * 24
#: `make_org(limit, **{agent: {type: n}})` -> a fresh org's id.
MakeOrg = Callable[..., str]

_READY = re.compile(r"slotgate ready on http://([0-9.]+):(\d+)")


def slotgate_bin() -> str:
    """The binary under test: `SLOTGATE_BIN`, else the workspace's debug build."""
    path = os.environ.get("SLOTGATE_BIN")
    if not path:
        guess = Path(__file__).resolve().parents[3] / "target" / "debug" / "slotgate"
        path = str(guess)
    if not os.access(path, os.X_OK):
        raise RuntimeError(
            f"no slotgate binary at {path}: build it (cargo build -p slotgate) or set SLOTGATE_BIN"
        )
    return path


def new_id(prefix: str = "o") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class Server:
    """One `slotgate serve` process on 127.0.0.1, restartable on the same port and directory."""

    def __init__(self, data_dir: Path, args: Sequence[str] = ()) -> None:
        self.data_dir = data_dir
        self.args: List[str] = list(args)
        self.port = 0
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.key = OPERATOR_KEY
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        log_path = self.data_dir.parent / f"{self.data_dir.name}.{self.starts}.log"
        env = dict(os.environ, SLOTGATE_OPERATOR_KEY=self.key)
        for name in ("SLOTGATE_LISTEN", "SLOTGATE_DATA_DIR", "SLOTGATE_STORE"):
            env.pop(name, None)
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    slotgate_bin(),
                    "serve",
                    "--listen",
                    f"127.0.0.1:{self.port}",
                    "--data-dir",
                    str(self.data_dir),
                    *self.args,
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + 30
        while True:
            text = log_path.read_text(errors="replace")
            m = _READY.search(text)
            if m:
                self.port = int(m.group(2))
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"slotgate did not start:\n{text}")
            time.sleep(0.02)
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("slotgate never answered /healthz")
            time.sleep(0.02)

    def stop(self) -> int:
        """SIGTERM, and the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill(self) -> None:
        """SIGKILL: no flush, no goodbye."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self, *, hard: bool = True) -> None:
        """Stops (kill -9 if `hard`) and starts again on the same port and directory."""
        if hard:
            self.kill()
        else:
            self.stop()
        self.start()
