"""The runtime: programs, frames and call stacks, running instances, events and timers.

Its modules are layered; each imports only those below it (checked by the import contracts
in pyproject.toml, run by tests/test_layers.py). From the top:

- `program`: `make_durable` and `DurableProgram`, what a user calls.
- `handles`: a started instance seen from anywhere (status, result).
- `backend`: where state and events live (`OrchestrationBackend`, `DurableBackend`).
- `runtime`: one run of one instance (`DurableRuntime`, `InstanceRun`) and its writes.
- `fanout`: `asyncio.gather` and `durable.first` over branches, and what a frame awaits.
- `operations`: journaled calls, wait points, timers, nested durable calls.
- `frames`: a frame (`FunctionCall`), the call stack (a tree under fan-outs), snapshots.
- `helpers`: which undecorated async functions run as frames, compiled once each.
- `references`: pickling state (module globals by reference, exceptions with history).
- `catalog`, `saved_code`, `journal`: programs by key; which code a saved frame resumes
  on; journal entries and policies.
- `context`, `contexts`: the context variables; `resumable()` for `with` blocks.

One import goes up: a frame reaches the operation layer (`frames._operation_layer`), since
compiled code asks its frame for what it awaits and those awaitables are made of frames.
"""
