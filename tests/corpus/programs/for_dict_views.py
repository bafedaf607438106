"""for over a dict, dict.keys(), dict.values() and dict.items(), with a wait point in each body."""

from durable import PauseForEventException

TRACE = []
ARGS = ()


async def main():
    d = {"x": 1, "y": 2, "z": 3}
    seen = []
    for key in d:
        raise PauseForEventException(f"dict-{key}")
        seen.append(key)
    for key in d.keys():
        raise PauseForEventException(f"keys-{key}")
        seen.append(key.upper())
    for value in d.values():
        raise PauseForEventException(f"values-{value}")
        seen.append(value)
    for key, value in d.items():
        raise PauseForEventException(f"items-{key}")
        seen.append((key, value))
        TRACE.append(("item", key, value))
    return seen
