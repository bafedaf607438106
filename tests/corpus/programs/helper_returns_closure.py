"""A helper builds closures over its own locals (a nested async def it awaits, and a lambda it
returns); the helper reassigns a captured local after a pause, and main calls the returned
closure after its own pause."""

from durable import PauseForEventException

TRACE = []
ARGS = ()
DURABLE = ("main",)


async def make_formatter(style):
    sep = "-"
    parts = []

    async def add(part):
        raise PauseForEventException(f"part-{part}")
        parts.append(part + sep)

    await add("x")
    sep = "+"
    raise PauseForEventException(f"style-{style}")
    await add("y")
    TRACE.append(("parts", list(parts)))
    return lambda text: style + sep.join(parts) + text, parts


async def main():
    fmt, parts = await make_formatter("<")
    raise PauseForEventException("use")
    parts.append("z")
    first = fmt("!")
    TRACE.append(("formatted", first))
    other, _ = await make_formatter("[")
    return first, fmt("?"), other("")
