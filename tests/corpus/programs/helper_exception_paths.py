"""Exceptions cross helper frames after resumes: a helper raises after a wait point, a middle
helper's finally pauses while the exception is in flight, and main's handler pauses too and
then inspects the chained exception."""

from durable import PauseForEventException

TRACE = []
ARGS = ("acct-9",)
DURABLE = ("main",)


class Insufficient(Exception):
    def __init__(self, account, short):
        super().__init__(account, short)  # args round-trip through pickle
        self.short = short

    def __str__(self):
        return f"{self.args[0]} short by {self.short}"


async def debit(account, amount):
    raise PauseForEventException(f"debit-{amount}")
    if amount > 50:
        raise Insufficient(account, amount - 50)
    return amount


async def transfer(account, amounts):
    done = []
    try:
        for amount in amounts:
            done.append(await debit(account, amount))
    finally:
        TRACE.append(("finally", list(done)))
        raise PauseForEventException("audit")
        TRACE.append(("audited", len(done)))
    return done


async def main(account):
    ok = await transfer(account, [10, 20])
    try:
        await transfer(account, [30, 80, 5])
    except Insufficient as error:
        raise PauseForEventException("compensate")
        try:
            raise RuntimeError("compensation needed") from error
        except RuntimeError as wrapped:
            TRACE.append((str(wrapped.__cause__), wrapped.__cause__.short))
        return ok, error.short
    return ok, None
