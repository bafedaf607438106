"""Exceptions raised `from` another, and implicitly chained ones, keep __cause__,
__context__, __suppress_context__, args and custom attributes when a pause falls inside the
handler that holds them, and when they are kept in a local across a pause."""

from durable import PauseForEventException

TRACE = []
ARGS = ("order-3",)


class PaymentError(Exception):
    def __init__(self, message, code):
        super().__init__(message)
        self.code = code


def describe(error):
    chain = []
    while error is not None:
        chain.append((type(error).__name__, str(error), getattr(error, "code", None)))
        error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    return chain


async def charge(order):
    try:
        {}[order]
    except KeyError as missing:
        raise PauseForEventException("lookup-failed")
        raise PaymentError(f"no card for {order}", 402) from missing


async def main(order):
    try:
        await charge(order)
    except PaymentError as error:
        raise PauseForEventException("in-handler")
        TRACE.append(("caught", describe(error), error.__suppress_context__))
        kept = error
    try:
        try:
            raise ValueError("inner")
        except ValueError:
            raise PauseForEventException("implicit")
            raise RuntimeError("while handling")
    except RuntimeError as outer:
        raise PauseForEventException("outer")
        TRACE.append(("implicit", describe(outer)))
    try:
        raise LookupError("hidden") from None
    except LookupError as quiet:
        raise PauseForEventException("quiet")
        TRACE.append(("quiet", describe(quiet), quiet.__suppress_context__))
    raise PauseForEventException("after")
    return describe(kept), kept.code, kept.args
