"""match: wait points in case bodies; the case is not chosen again on resume (all pattern kinds)."""

from dataclasses import dataclass

from durable import PauseForEventException

TRACE = []
ARGS = ()


@dataclass
class Point:
    x: int
    y: int


COMMANDS = [
    ("go", "north"),
    {"speed": 3},
    Point(0, 5),
    [1, 2, 3, 4],
    42,
    "quit",
    None,
    3.5,
]


async def main():
    handled = []
    for command in COMMANDS:
        match command:
            case ("go", direction):
                TRACE.append(("go", direction))
                raise PauseForEventException(f"go-{direction}")
                command = "moved"
                handled.append(("went", direction, command))
            case {"speed": speed} if speed > 1:
                raise PauseForEventException("speed")
                handled.append(("speed", speed))
            case Point(x=0, y=y):
                raise PauseForEventException("point")
                handled.append(("on axis", y))
            case [first, *rest]:
                raise PauseForEventException("seq")
                handled.append(("seq", first, rest))
            case 42 | 43:
                handled.append("literal")
            case "quit" as word:
                raise PauseForEventException("quit")
                handled.append(("word", word))
            case None:
                continue
            case _:
                raise PauseForEventException("other")
                handled.append(("other", command))
        TRACE.append(("after match", len(handled)))
    return handled
