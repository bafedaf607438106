"""The Quick Start's durable function (DESIGN.md §2), shared by the custom-backend tests."""

from durable import PauseForEventException, make_durable


async def greet(name: str):
    print("waiting for permission to greet")
    raise PauseForEventException("allow")
    return f"hello {name}"


durable_greet = make_durable(greet)
