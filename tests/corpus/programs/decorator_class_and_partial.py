"""Helpers reached through a class-based decorator (async __call__ holding the wrapped
function), two stacked decorators with arguments, and functools.partial all pause inside
the wrapped body."""

import functools

from durable import PauseForEventException, durable_execute

TRACE = []
ARGS = ("doc-9",)
DURABLE = ("main",)


def effect(*args):
    TRACE.append(("effect",) + args)
    return len(args)


class counted:
    def __init__(self, fn):
        functools.update_wrapper(self, fn)
        self.fn = fn

    async def __call__(self, *args, **kwargs):
        raise PauseForEventException(f"counted-{self.fn.__name__}-{len(args) + len(kwargs)}")
        return await self.fn(*args, **kwargs)


def tagged(tag, *, times=1):
    def decorate(fn):
        @functools.wraps(fn)
        async def wrapper(*args, **kwargs):
            results = []
            for n in range(times):
                await durable_execute(effect, tag, fn.__name__, n)
                results.append(await fn(*args, **kwargs))
            return tag, results

        return wrapper

    return decorate


@counted
async def render(doc, fmt="pdf"):
    raise PauseForEventException(f"render-{fmt}")
    return f"{doc}.{fmt}"


@tagged("outer")
@tagged("inner", times=2)
async def publish(doc):
    raise PauseForEventException("publish")
    return doc.upper()


async def send(channel, doc, *, urgent):
    await durable_execute(effect, "send", channel, doc, urgent)
    raise PauseForEventException(f"send-{channel}")
    return channel


async def main(doc):
    a = await render(doc)
    b = await render(doc, fmt="html")
    c = await publish(doc)
    to_ops = functools.partial(send, "ops", urgent=True)
    d = await to_ops(doc)
    e = await functools.partial(send, urgent=False)("mail", doc)
    TRACE.append(("names", render.__name__, publish.__name__))
    return a, b, c, d, e
