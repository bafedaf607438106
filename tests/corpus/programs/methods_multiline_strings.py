"""Multi-line string literals in an indented method and a nested helper keep their exact
text: continuation lines at column 0, indented ones (whose indentation is part of the
string), tabs, and a multi-line f-string."""

from durable import PauseForEventException

TRACE = []
ARGS = ("ann",)
DURABLE = ("main",)


class Report:
    async def header(self, name):
        raise PauseForEventException("header")
        greeting = """Dear,
thanks.
	tabbed
"""
        return greeting + name

    async def body(self, name):
        raise PauseForEventException("body")
        text = f"""Hello {name},
        indented line
            deeper"""
        return text


async def main(name):
    async def footer(sign):
        raise PauseForEventException("footer")
        return (
            """first
  second """
            + sign
        )

    a = await Report().header(name)
    b = await Report().body(name)
    c = await footer("!")
    TRACE.append((a, b, c))
    return a, b, c
