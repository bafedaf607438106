"""A nested durable call raising inside try: the caller's handler catches it, with waits all around."""

from durable import PauseForEventException

TRACE = []
ARGS = (3,)


class OutOfStock(Exception):
    pass


async def reserve(item):
    TRACE.append(("reserve", item))
    raise PauseForEventException(f"reserve-{item}")
    if item % 2:
        raise OutOfStock(f"item {item}")
    return f"reserved {item}"


async def main(count):
    results = []
    for item in range(count):
        try:
            results.append(await reserve(item))
        except OutOfStock as error:
            raise PauseForEventException(f"backorder-{item}")
            results.append(f"backorder: {error}")
        finally:
            TRACE.append(("finally", item))
    return results
