"""Durable operations inside undecorated helpers and helper methods: durable_execute (with a
reconciler closure over the helper's local), durable sleep(0) and wait points, in a loop with
an early return; side effects run once across pauses and crashes."""

from durable import NotApplied, PauseForEventException, durable_execute, sleep

TRACE = []
ARGS = (["a", "b", "stop", "c"],)
DURABLE = ("main",)
SENT = {}


def send(to, body):
    SENT[to] = body
    TRACE.append(("send", to, body))
    return len(body)


def sent_to(to):
    if to in SENT:
        return len(SENT[to])
    raise NotApplied()


class Mailer:
    def __init__(self):
        self.count = 0

    async def notify(self, to):
        body = f"hello {to} #{self.count}"
        size = await durable_execute(send, to, body, reconciler=lambda: sent_to(to))
        await sleep(0)
        self.count += 1
        raise PauseForEventException(f"ack-{to}")
        return size


async def campaign(mailer, recipients):
    sizes = []
    for to in recipients:
        if to == "stop":
            return sizes, "stopped"
        sizes.append(await mailer.notify(to))
    return sizes, "finished"


async def main(recipients):
    mailer = Mailer()
    sizes, status = await campaign(mailer, recipients)
    raise PauseForEventException("summary")
    return sizes, status, mailer.count
