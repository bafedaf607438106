"""An agent loop: an async nested def inside main closes over main's `messages` and `budget`
and pauses inside; after each resume the closure and main still share the same list, and
the closure reads `budget` as main last reassigned it."""

from durable import PauseForEventException

TRACE = []
ARGS = (["plan", "search", "answer"],)
DURABLE = ("main",)


async def main(questions):
    messages = [{"role": "system", "content": "be brief"}]
    budget = 10

    async def ask(question):
        messages.append({"role": "user", "content": question})
        raise PauseForEventException(f"llm-{question}")
        reply = f"{question}:{len(messages)}:{budget}"
        messages.append({"role": "assistant", "content": reply})
        TRACE.append(("reply", reply))
        return reply

    replies = []
    for question in questions:
        replies.append(await ask(question))
        budget -= len(question)
        raise PauseForEventException(f"tool-{question}")
        TRACE.append(("budget", budget, len(messages)))
    return replies, [m["role"] for m in messages], budget
