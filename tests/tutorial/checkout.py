"""A durable checkout for the crash harness example of docs/testing.md: its side effects go
to a ledger in the directory it is given, so each crash point's run keeps a ledger of its own."""

from pathlib import Path

from durable import NotApplied, make_durable, step, wait_for_event


def _lines(ledger: str) -> list[str]:
    path = Path(ledger)
    return path.read_text().splitlines() if path.exists() else []


def _append(ledger: str, line: str) -> None:
    with open(ledger, "a") as file:
        file.write(line + "\n")
        file.flush()


def charged(ledger: str, order: str, amount: int) -> str:
    """The reconciler: the receipt if the charge was made before a crash."""
    if f"charge {order} {amount}" in _lines(ledger):
        return f"receipt-{order}"
    raise NotApplied


@step(reconciler=charged)
def charge(ledger: str, order: str, amount: int) -> str:
    _append(ledger, f"charge {order} {amount}")
    return f"receipt-{order}"


@step
def ship(ledger: str, order: str) -> None:
    _append(ledger, f"ship {order}")  # no reconciler: at least once


@make_durable
async def checkout(ledger: str, order: str, amount: int) -> str:
    receipt = await charge(ledger, order, amount)
    await wait_for_event("packed")
    await ship(ledger, order)
    return receipt
