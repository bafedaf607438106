"""Classmethods, staticmethods, a property returning a helper coroutine, and an overriding
method calling super() all pause as helper frames; the instances they build stay one object."""

from durable import PauseForEventException, durable_execute

TRACE = []
ARGS = ("acme",)
DURABLE = ("main",)


def charge(who, amount):
    TRACE.append(("charge", who, amount))
    return amount * 2


class Account:
    rate = 3

    def __init__(self, name):
        self.name = name
        self.balance = 0

    @classmethod
    async def open(cls, name):
        raise PauseForEventException(f"open-{name}")
        account = cls(name)
        account.balance = cls.rate
        return account

    @staticmethod
    async def fee(n):
        return await durable_execute(charge, "fee", n)

    @property
    def pending(self):
        return self._pending()

    async def _pending(self):
        raise PauseForEventException("pending-" + self.name)
        return self.balance + 1

    async def deposit(self, amount):
        got = await durable_execute(charge, self.name, amount)
        self.balance += got
        return self


class Premium(Account):
    rate = 10

    async def deposit(self, amount):
        me = await super().deposit(amount * 2)
        raise PauseForEventException("premium")
        me.balance += 1
        return me


async def main(name):
    a = await Account.open(name)
    p = await Premium.open(name + "-p")
    f = await Account.fee(4)
    a2 = await a.deposit(5)
    p2 = await p.deposit(1)
    pend = await a.pending
    TRACE.append(("state", a is a2, p is p2, a.balance, p.balance, type(p).__name__))
    return a.balance, p.balance, f, pend
