"""The READMEs' Python programs, run as pasted against the real server: the
top-level README's and this client's quick start. Each must be a whole
program (imports, key, a client that is closed) that holds a slot."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest
from slotgate_server import Server

import slotgate
from slotgate import CallState, EndReason

ROOT = Path(__file__).resolve().parents[3]
READMES = [ROOT / "README.md", ROOT / "clients" / "python" / "README.md"]


def python_blocks(readme: Path) -> List[str]:
    """The ```python blocks of a README that are whole programs (they run `main`)."""
    blocks = re.findall(r"^```python\n(.*?)^```$", readme.read_text(), re.M | re.S)
    return [b for b in blocks if "asyncio.run(" in b]


@pytest.mark.parametrize("readme", READMES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_readme_python_program_runs_as_pasted(
    readme: Path, server: Server, admin: slotgate.Client
) -> None:
    blocks = python_blocks(readme)
    assert len(blocks) == 1, f"{readme}: one whole Python program, found {len(blocks)}"
    # The org and agent the program names, as the README's shell steps make them.
    if "acme" not in {o.id for o in admin.list_orgs()}:
        admin.create_org("acme", 20)
    admin.set_reservations("acme", "agent-a", inbound=3)
    before = {c.id for c in admin.list_calls("acme")}
    program = blocks[0].replace("http://127.0.0.1:7878", server.url)
    done = subprocess.run(
        [sys.executable, "-c", program],
        env=dict(os.environ, SLOTGATE_KEY=server.key),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"{readme}:\n{program}\nfailed:\n{done.stderr}"
    assert "Warning" not in done.stderr, done.stderr  # e.g. an unclosed client
    # It printed the call's id and slot, and left the call released.
    call_id, slot = done.stdout.split()[:2]
    assert slot == "Slot.RESERVED", done.stdout
    assert call_id not in before
    call = admin.get_call("acme", call_id)
    assert (call.state, call.end_reason) == (CallState.ENDED, EndReason.RELEASED)
