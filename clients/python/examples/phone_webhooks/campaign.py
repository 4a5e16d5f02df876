"""An outbound campaign: dial a list of numbers through slotgate's queue.

Every number waits for a slot of the org with ``async with client.slot(...)``,
so at most as many calls are in progress at once as slotgate admits (the
org's limit, less what other calls use, plus the agent's `outbound`
reservation); the rest wait in line, in order. A number whose call fails is
reported, and its slot is given back all the same.

    SLOTGATE_URL=http://127.0.0.1:7878 SLOTGATE_KEY=... \\
        python -m phone_webhooks.campaign --org acme --agent agent-a numbers.txt

(run from `clients/python/examples`). The dialer here only pretends; a real
one asks the telephony provider to place the call and returns when it ends.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import sys
from dataclasses import dataclass
from typing import Awaitable, Callable, List, Optional, Sequence

from slotgate import AsyncClient, AsyncPermit, CallType

#: Places one call and returns when it is over.
Dialer = Callable[[str, AsyncPermit], Awaitable[None]]


@dataclass
class Outcome:
    number: str
    call_id: str
    error: Optional[BaseException] = None


def call_id(campaign: str, number: str) -> str:
    """One id per campaign and number: a rerun of the campaign is the same calls."""
    return f"{campaign}:{re.sub(r'[^A-Za-z0-9]', '', number)}"


async def run_campaign(
    client: AsyncClient,
    org: str,
    agent: str,
    numbers: Sequence[str],
    dial: Dialer,
    *,
    campaign: str = "campaign",
    waiting: int = 50,
    max_wait: Optional[float] = None,
) -> List[Outcome]:
    """Dials every number, as many at once as slotgate admits.

    At most `waiting` numbers stand in slotgate's queue at once, so a list of
    a million numbers is not a million open requests.
    """
    in_line = asyncio.Semaphore(waiting)

    async def one(number: str) -> Outcome:
        outcome = Outcome(number, call_id(campaign, number))
        async with in_line:
            try:
                async with client.slot(
                    org,
                    agent=agent,
                    type=CallType.OUTBOUND,
                    id=outcome.call_id,
                    max_wait=max_wait,
                ) as slot:
                    await dial(number, slot)
            except Exception as e:
                outcome.error = e
        return outcome

    return list(await asyncio.gather(*(one(n) for n in numbers)))


async def pretend_to_dial(number: str, slot: AsyncPermit) -> None:
    print(f"dialling {number} ({slot.slot.value if slot.slot else '?'} slot)", flush=True)
    await asyncio.sleep(random.uniform(1, 3))
    print(f"{number}: call over", flush=True)


async def dial_all(org: str, agent: str, campaign: str, numbers: Sequence[str]) -> int:
    async with AsyncClient(
        os.environ.get("SLOTGATE_URL", "http://127.0.0.1:7878"), os.environ["SLOTGATE_KEY"]
    ) as client:
        outcomes = await run_campaign(
            client, org, agent, numbers, pretend_to_dial, campaign=campaign
        )
    failed = [o for o in outcomes if o.error is not None]
    for o in failed:
        print(f"{o.number}: {o.error}", file=sys.stderr)
    return 1 if failed else 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description="Dial a list of numbers through slotgate's queue.")
    p.add_argument("--org", required=True)
    p.add_argument("--agent", required=True)
    p.add_argument("--campaign", default="campaign")
    p.add_argument("numbers", help="a file with one phone number a line")
    args = p.parse_args(argv)
    with open(args.numbers) as f:
        numbers = [line.strip() for line in f if line.strip()]
    return asyncio.run(dial_all(args.org, args.agent, args.campaign, numbers))


if __name__ == "__main__":
    sys.exit(main())
