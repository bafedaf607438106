"""Async helper methods of a module-level class keep state in attributes: `self` in the
helper frame and the object in main stay one object across resumes (also through `await cart(item)`, an async __call__; attribute writes made
before a pause are seen after it, by both frames)."""

from durable import PauseForEventException

TRACE = []
ARGS = (["tea", "cake", "tea"],)
DURABLE = ("main",)


class Cart:
    def __init__(self, owner):
        self.owner = owner
        self.items = []
        self.events = 0

    async def add(self, item):
        self.items.append(item)
        self.events += 1
        raise PauseForEventException(f"added-{len(self.items)}")
        TRACE.append(("added", item, len(self.items), self.events))
        return len(self.items)

    async def _price(self):
        raise PauseForEventException("pricing")
        return sum(len(i) for i in self.items)

    async def __call__(self, item):
        raise PauseForEventException(f"call-{item}")
        return await self.add(item)

    async def checkout(self, extra):
        count = await self.add(extra)
        total = await self._price()
        self.events += 1
        TRACE.append(("checkout", self.owner, count, total))
        return total


async def main(items):
    cart = Cart("ann")
    sizes = []
    for item in items:
        sizes.append(await cart.add(item))
    TRACE.append(("mid", list(cart.items), cart.events))
    sizes.append(await cart("milk"))
    total = await cart.checkout("jam")
    raise PauseForEventException("done")
    return sizes, total, cart.items, cart.events
