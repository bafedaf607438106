"""A helper with defaults, keyword-only, *args and **kwargs parameters: all bindings survive a
resume mid-helper, including a mutable default shared between calls."""

from durable import PauseForEventException

TRACE = []
ARGS = ("deploy",)
DURABLE = ("main",)


async def step(name, retries=2, *targets, dry_run=False, seen=[], **labels):  # noqa: B006 - on purpose
    raise PauseForEventException(f"step-{name}")
    seen.append(name)
    TRACE.append((name, retries, targets, dry_run, sorted(labels.items()), list(seen)))
    return len(targets) + retries


async def relay(*args, **kwargs):
    raise PauseForEventException("relay")
    return await step(*args, **kwargs)


async def main(task):
    a = await step(task)
    b = await step(task + "-b", 5, "eu", "us", dry_run=True, team="ops")
    c = await relay("relayed", 0, *["x", "y", "z"], **{"env": "prod", "dry_run": False})
    kw = {"retries": 1}
    d = await step(name="kw", **kw)
    return a, b, c, d
