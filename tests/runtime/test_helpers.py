"""Undecorated async helpers of the user's code run as frames; other coroutines run plainly."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

import pytest

from durable import (
    CheckpointException,
    DiskStateStore,
    DurableBackend,
    IncompatibleStateError,
    PauseForEventException,
    durable_execute,
    exclude_helpers,
    include_helpers,
    make_durable,
    sleep,
    wait_for_event,
)
from durable.runtime import helpers

TRACE: list = []


@pytest.fixture(autouse=True)
def _fresh_trace():
    TRACE.clear()
    yield
    helpers._module_rules.clear()
    helpers._function_rules.clear()
    for decided in helpers._decisions.values():
        decided.clear()


def backend_at(path) -> DurableBackend:
    """A new backend (and so a new runtime) over the same directory: resumes from the store."""
    return DurableBackend(DiskStateStore(path))


async def run_to_end(program, path, *args, instance_id="h-1", payloads=None):
    """Call until done, publishing each awaited event; returns (result, events awaited)."""
    awaited = []
    for _ in range(50):
        try:
            return await program(
                *args, orchestration_backend=backend_at(path), instance_id=instance_id
            ), awaited
        except PauseForEventException as pause:
            awaited.append(pause.event)
            payload = (payloads or {}).get(pause.event, f"payload-{pause.event}")
            backend_at(path).publish_event(instance_id, pause.event, payload)
    raise AssertionError("never finished")


# -- a wait point inside a helper -----------------------------------------------------------
async def ask(question):
    TRACE.append(("asking", question))
    raise PauseForEventException("answer")
    TRACE.append(("answered", question))
    return question.upper()


@make_durable
async def interview(question):
    TRACE.append("start")
    answer = await ask(question)
    TRACE.append(("got", answer))
    return answer


async def test_a_wait_point_in_an_undecorated_helper_resumes_after_it(tmp_path):
    result, awaited = await run_to_end(interview, tmp_path, "why")
    assert result == "WHY"
    assert awaited == ["answer"]  # asked once; the second call resumed mid-helper
    assert TRACE == ["start", ("asking", "why"), ("answered", "why"), ("got", "WHY")]


# -- every durable operation inside helpers, at depth -----------------------------------------
def record(label):
    TRACE.append(("effect", label))
    return f"done-{label}"


async def inner(n):
    receipt = await durable_execute(record, n)
    payload = await wait_for_event(f"go-{n}")
    await sleep(0)
    return receipt, payload


async def middle(n):
    first = await inner(n)
    second = await inner(n + 1)
    return [first, second]


@make_durable
async def layered(n):
    return await middle(n)


async def test_operations_in_nested_helpers_are_journaled_once(tmp_path):
    result, awaited = await run_to_end(layered, tmp_path, 1)
    assert result == [("done-1", "payload-go-1"), ("done-2", "payload-go-2")]
    assert awaited == ["go-1", "go-2"]
    assert TRACE == [("effect", 1), ("effect", 2)]


# -- methods, variables, recursion, keyword and star parameters -------------------------------
class Agent:
    def __init__(self, name):
        self.name = name
        self.turns = 0

    async def turn(self, prompt, *, loud=False):
        self.turns += 1
        raise PauseForEventException(f"{self.name}-{self.turns}")
        return prompt.upper() if loud else prompt


async def countdown(n, *seen, **labels):
    if n == 0:
        return list(seen), labels
    raise PauseForEventException(f"tick-{n}")
    return await countdown(n - 1, *seen, n, **labels, **{f"n{n}": n})


@make_durable
async def shapes():
    agent = Agent("ada")
    first = await agent.turn("hi")
    chosen = agent.turn
    second = await chosen("yo", loud=True)
    recursed = await countdown(2)
    return first, second, agent.turns, recursed


async def test_method_variable_and_recursive_helpers_resume(tmp_path):
    result, awaited = await run_to_end(shapes, tmp_path)
    assert result == ("hi", "YO", 2, ([2, 1], {"n2": 2, "n1": 1}))
    assert awaited == ["ada-1", "ada-2", "tick-2", "tick-1"]


# -- try/finally and loops in a helper ---------------------------------------------------------
async def guarded(items):
    total = 0
    try:
        for item in items:
            raise PauseForEventException(f"item-{item}")
            total += item
    finally:
        TRACE.append(("cleanup", total))
    return total


@make_durable
async def summing(items):
    return await guarded(items)


async def test_try_finally_and_for_inside_a_helper_run_once(tmp_path):
    result, awaited = await run_to_end(summing, tmp_path, [1, 2, 3])
    assert result == 6
    assert awaited == ["item-1", "item-2", "item-3"]
    assert TRACE == [("cleanup", 6)]


# -- closures ----------------------------------------------------------------------------------
LEDGER: dict = {}


def charge(order):
    LEDGER[order] = f"receipt-{order}"
    raise _Crash  # the process dies after the side effect, before it is journaled


class _Crash(BaseException):
    pass


@make_durable
async def pay(order):
    receipt = await durable_execute(charge, order, reconciler=lambda: LEDGER.get(order))
    order = order + "-paid"
    return receipt, order


async def test_a_reconciler_lambda_over_a_live_local_settles_a_call_after_a_crash(tmp_path):
    LEDGER.clear()
    with pytest.raises(_Crash):
        await pay("o-7", orchestration_backend=backend_at(tmp_path), instance_id="pay")
    result = await pay("o-7", orchestration_backend=backend_at(tmp_path), instance_id="pay")
    assert result == ("receipt-o-7", "o-7-paid")
    assert LEDGER == {"o-7": "receipt-o-7"}


@make_durable
async def chat():
    messages = []

    def say(text):
        messages.append(text)

    shout = lambda: say(f"{name}!")  # noqa: E731 - a lambda over a variable bound later
    name = "ada"
    say("hello")
    raise PauseForEventException("next")
    name = "grace"  # rebound after the resume: the lambda must see it
    shout()
    raise PauseForEventException("last")
    say(f"bye {name}")
    return messages


async def test_closures_and_the_frame_share_variables_after_a_resume(tmp_path):
    result, _ = await run_to_end(chat, tmp_path)
    assert result == ["hello", "grace!", "bye grace"]


@make_durable
async def nested_async_closure():
    notes = []

    async def note(text):
        notes.append(text)
        raise PauseForEventException(f"note-{len(notes)}")
        notes.append(text.upper())

    await note("a")
    await note("b")
    return notes


async def test_an_async_closure_defined_in_the_function_is_a_frame_sharing_its_locals(
    tmp_path,
):
    result, awaited = await run_to_end(nested_async_closure, tmp_path)
    assert result == ["a", "A", "b", "B"]
    assert awaited == ["note-1", "note-3"]


class Base:
    async def greet(self, who):
        raise PauseForEventException("base")
        return f"hello {who}"


class Polite(Base):
    async def greet(self, who):
        text = await super().greet(who)
        return text + ", pleased to meet you"


@make_durable
async def greeting(who):
    return await Polite().greet(who)


async def test_zero_argument_super_works_in_helper_methods(tmp_path):
    result, awaited = await run_to_end(greeting, tmp_path, "ada")
    assert result == "hello ada, pleased to meet you"
    assert awaited == ["base"]


# -- what is not a frame -----------------------------------------------------------------------
async def effect_inside(label):
    return await durable_execute(record, label)


@make_durable
async def through_wait_for():
    return await asyncio.wait_for(effect_inside("x"), 5)


async def test_a_durable_operation_in_a_task_names_the_coroutine_and_the_fix(tmp_path):
    with pytest.raises(CheckpointException) as caught:
        await through_wait_for(orchestration_backend=backend_at(tmp_path), instance_id="t")
    message = str(caught.value)
    assert "effect_inside()" in message and f"{__file__}:" in message
    assert "not a frame" in message and "await the helper directly" in message.lower()
    assert TRACE == []


@make_durable
async def awaits_excluded():
    return await effect_inside("y")


async def test_an_excluded_helper_runs_plainly(tmp_path):
    exclude_helpers(effect_inside)
    with pytest.raises(CheckpointException, match="effect_inside"):
        await awaits_excluded(orchestration_backend=backend_at(tmp_path), instance_id="x")


VENDOR = """
from durable import durable_execute, PauseForEventException

async def fetch(n):
    await __import__("asyncio").sleep(0)
    return n * 2

async def effect(n):
    return await durable_execute(str, n)
"""


@pytest.fixture
def vendor(tmp_path, monkeypatch):
    """A third-party package installed in a site-packages directory."""
    root = tmp_path / "lib" / "site-packages"
    (root / "fakevendor").mkdir(parents=True)
    (root / "fakevendor" / "__init__.py").write_text(textwrap.dedent(VENDOR))
    monkeypatch.syspath_prepend(str(root))
    import fakevendor

    yield fakevendor
    sys.modules.pop("fakevendor", None)


async def test_installed_code_runs_plainly_and_unlike_users_code(vendor, tmp_path):
    assert not helpers.is_users_code(vendor.fetch, __name__)
    assert helpers.is_users_code(ask, __name__)
    assert not helpers.is_users_code(asyncio.sleep, __name__)

    @make_durable
    async def calls_vendor():
        return await vendor.effect(3)

    with pytest.raises(CheckpointException) as caught:
        await calls_vendor(orchestration_backend=backend_at(tmp_path), instance_id="v")
    assert "effect()" in str(caught.value) and "include_helpers" in str(caught.value)
    include_helpers("fakevendor")
    assert helpers.is_users_code(vendor.fetch, __name__)
    result = await calls_vendor(orchestration_backend=backend_at(tmp_path), instance_id="v2")
    assert result == "3"


async def test_include_helpers_refuses_what_is_not_a_module_or_async_function():
    with pytest.raises(TypeError, match="async def"):
        include_helpers(len)
    with pytest.raises(ValueError, match="module name"):
        include_helpers("not a module")


# -- a helper that cannot be compiled ----------------------------------------------------------
COUNTER = 0


async def uses_global():
    global COUNTER
    COUNTER += 1
    return COUNTER


async def global_then_effect():
    global COUNTER
    COUNTER += 1
    return await durable_execute(record, COUNTER)


@make_durable
async def calls_uncompilable(effect):
    if effect:
        return await global_then_effect()
    return await uses_global()


async def test_a_helper_that_cannot_be_compiled_runs_plainly_and_says_why_when_it_matters(
    tmp_path,
):
    assert (
        await calls_uncompilable(
            False, orchestration_backend=backend_at(tmp_path), instance_id="g1"
        )
        == COUNTER
    )
    with pytest.raises(CheckpointException) as caught:
        await calls_uncompilable(True, orchestration_backend=backend_at(tmp_path), instance_id="g2")
    assert "cannot be compiled as a helper" in str(caught.value)
    assert "DUR102" in str(caught.value)


async def global_then_wait_point():
    global COUNTER
    COUNTER += 1
    raise PauseForEventException("bumped")
    return COUNTER


def plain_check():
    raise PauseForEventException("checked")


@make_durable
async def waits_outside_frames(in_helper):
    if in_helper:
        return await global_then_wait_point()
    plain_check()
    return "never"


@pytest.mark.parametrize("in_helper", [True, False])
async def test_a_wait_point_outside_frames_is_a_clear_error_not_a_stored_pause(tmp_path, in_helper):
    """`raise PauseForEventException` in code that is not a frame cannot resume; it was
    stored as the instance's failure, so every later call raised it again, as if waiting."""
    backend = backend_at(tmp_path)
    for _ in range(2):
        with pytest.raises(CheckpointException) as caught:
            await waits_outside_frames(in_helper, orchestration_backend=backend, instance_id="w")
        message = str(caught.value)
        assert "escaped durable instance 'w'" in message
        if in_helper:
            assert "global_then_wait_point() at" in message and "DUR102" in message
        else:
            assert "plain_check() at" in message
    assert backend.load_state("w")["status"] == "running"


# -- code identity -----------------------------------------------------------------------------
FLOW = """
from durable import make_durable, PauseForEventException

async def helper(x):
    raise PauseForEventException("go")
    return x + {increment}

@make_durable(on_code_change={policy!r})
async def flow(x):
    return await helper(x)
"""


def load_flow(tmp_path, increment, policy="resume_saved_version"):
    source = tmp_path / "helper_flow_module.py"
    source.write_text(FLOW.format(increment=increment, policy=policy))
    sys.modules.pop("helper_flow_module", None)
    helpers._compiled.clear()
    import importlib
    import linecache

    linecache.clearcache()
    sys.path.insert(0, str(tmp_path))
    try:
        return importlib.import_module("helper_flow_module")
    finally:
        sys.path.remove(str(tmp_path))


@pytest.mark.parametrize(
    ("policy", "outcome"),
    [("resume_saved_version", 2), ("fail", IncompatibleStateError)],
)
async def test_a_changed_helper_on_a_paused_stack_is_detected(tmp_path, policy, outcome):
    store = tmp_path / "store"
    module = load_flow(tmp_path, 1, policy)
    with pytest.raises(PauseForEventException):
        await module.flow(1, orchestration_backend=backend_at(store), instance_id="c")
    backend_at(store).publish_event("c", "go")
    module = load_flow(tmp_path, 100, policy)
    if outcome is IncompatibleStateError:
        with pytest.raises(IncompatibleStateError, match="helper"):
            await module.flow(1, orchestration_backend=backend_at(store), instance_id="c")
    else:
        assert await module.flow(1, orchestration_backend=backend_at(store), instance_id="c") == 2


# -- a script ------------------------------------------------------------------------------
SCRIPT = """
import asyncio, sys
from durable import DurableBackend, PauseForEventException, SQLiteStateStore, make_durable

async def ask(question, notes):
    notes.append(question)
    raise PauseForEventException("answer")
    return question.upper()

@make_durable
async def main(question):
    notes = []
    answer = await ask(question, notes)
    return answer, notes

async def run():
    backend = DurableBackend(SQLiteStateStore(sys.argv[1]))
    try:
        print(await main("why", orchestration_backend=backend, instance_id="s"))
    except PauseForEventException as pause:
        backend.publish_event("s", pause.event)
        print("paused", pause.event)

asyncio.run(run())
"""


@pytest.mark.slow
def test_a_helper_of_a_script_resumes_when_the_script_runs_again(tmp_path):
    script = tmp_path / "agent.py"
    script.write_text(SCRIPT)
    outputs = [
        subprocess.run(
            [sys.executable, str(script), str(tmp_path / "agent.db")],
            capture_output=True,
            text=True,
            timeout=60,
        )
        for _ in range(2)
    ]
    assert [o.stderr for o in outputs] == ["", ""]
    assert [o.stdout.strip() for o in outputs] == ["paused answer", "('WHY', ['why'])"]
