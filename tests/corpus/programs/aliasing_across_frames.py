"""An object passed to a nested durable call stays shared with the caller: the child's mutations after its wait are seen."""

from durable import PauseForEventException

TRACE = []
ARGS = ()


async def fill(bucket, item):
    raise PauseForEventException(f"fill-{item}")
    bucket.append(item)
    return len(bucket)


async def main():
    bucket = []
    alias = {"b": bucket}
    n = await fill(bucket, "x")
    m = await fill(alias["b"], "y")
    TRACE.append((n, m, bucket))
    return bucket, alias["b"] is bucket
