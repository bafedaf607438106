"""Helpers wrapped by a plain decorator (functools.wraps, async wrapper closing over the
wrapped function and a per-decoration counter dict), a retry decorator whose wrapper catches
and pauses, and an async staticmethod; all pause inside the wrapped body."""

import functools

from durable import PauseForEventException

TRACE = []
ARGS = ("ticket-4",)
DURABLE = ("main",)


def audited(fn):
    calls = {"n": 0}

    @functools.wraps(fn)
    async def wrapper(*args, **kwargs):
        calls["n"] += 1
        TRACE.append(("call", fn.__name__, calls["n"]))
        result = await fn(*args, **kwargs)
        TRACE.append(("return", fn.__name__, result))
        return result

    return wrapper


def retried(times):
    def decorate(fn):
        async def wrapper(*args):
            for attempt in range(times):
                try:
                    return await fn(attempt, *args)
                except ConnectionError as error:
                    raise PauseForEventException(f"backoff-{attempt}")
                    TRACE.append(("retry", str(error)))
            return None

        return wrapper

    return decorate


@audited
async def classify(ticket, *, urgent=False):
    raise PauseForEventException(f"classify-{ticket}")
    return ("P1" if urgent else "P3", ticket)


@retried(3)
async def fetch(attempt, ticket):
    raise PauseForEventException(f"fetch-{attempt}")
    if attempt < 2:
        raise ConnectionError(f"flaky {attempt}")
    return f"{ticket}@{attempt}"


class Router:
    @staticmethod
    async def queue_for(priority):
        raise PauseForEventException(f"queue-{priority}")
        return priority.lower() + "-queue"


async def main(ticket):
    body = await fetch(ticket)
    first = await classify(ticket)
    second = await classify(ticket, urgent=True)
    queue = await Router.queue_for(second[0])
    return body, first, second, queue
