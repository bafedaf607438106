"""Exceptions whose __init__ takes other arguments than it passes to Exception (a status code
and a detail, keyword-only), held in a local and in flight through a handler across
checkpoints, then re-raised out of the instance: all round-trip through the snapshot."""

from durable import PauseForEventException

TRACE = []
ARGS = ("GET /orders",)
DURABLE = ("main",)


class HttpError(Exception):
    def __init__(self, status, *, detail):
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


class Throttled(HttpError):
    def __init__(self, retry_after):
        super().__init__(429, detail="slow down")
        self.retry_after = retry_after


async def fetch(request, attempt):
    if attempt < 2:
        raise Throttled(retry_after=attempt + 1)
    raise HttpError(503, detail=f"{request} unavailable")


async def main(request):
    first = HttpError(500, detail="kept in a local")
    raise PauseForEventException("start")
    for attempt in range(3):
        try:
            await fetch(request, attempt)
        except Throttled as throttled:
            raise PauseForEventException(f"backoff-{attempt}")
            TRACE.append(("throttled", throttled.status, throttled.retry_after, str(throttled)))
        except HttpError as failed:
            raise PauseForEventException("giving-up")
            TRACE.append(("failed", failed.status, failed.detail, first.status, first.detail))
            raise
