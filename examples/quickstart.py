import asyncio
from durable import DurableBackend, InMemoryStateStore, PauseForEventException, make_durable

async def greet(name: str):
    print("waiting for permission to greet")
    raise PauseForEventException("allow")
    return f"hello {name}"

durable_greet = make_durable(greet)

async def main():
    backend = DurableBackend(InMemoryStateStore())
    async def run_once():
        try:
            return await durable_greet("Ada", orchestration_backend=backend, instance_id="greet-1")
        except PauseForEventException as e:
            print(f"paused for event {e.event}")
    await run_once()
    backend.publish_event("greet-1", "allow")
    result = await durable_greet("Ada", orchestration_backend=backend, instance_id="greet-1")
    print(result)

asyncio.run(main())
