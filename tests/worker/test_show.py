"""`durable show`: an instance whole — program, arguments, times, and its saved call stack
with each frame's function, line, what it awaits and its live locals — without running
stored bytes."""

from __future__ import annotations

import json

import pytest

from durable import (
    PauseForEventException,
    RetryPolicy,
    durable_execute,
    make_durable,
    wait_for_event,
)
from durable.cli import EXIT_FAILED, EXIT_NOT_FOUND, main
from durable.runtime.frames import saved_frames
from durable.runtime.references import loads
from tests.worker import flows


class Basket:
    def __init__(self, items):
        self.items = items


def weigh(item: str) -> int:
    return len(item)


async def weigh_all(basket: Basket) -> int:
    weight = 0
    for item in basket.items:
        weight += await durable_execute(weigh, item)
    confirmed = await wait_for_event("confirm")
    return weight + confirmed + len(basket.items)


@make_durable
async def ship(customer: str, items: list[str]) -> str:
    label = f"to {customer}"
    weight = await weigh_all(Basket(items))
    return f"{label}: {weight}"


async def paused_ship(backend) -> None:
    with pytest.raises(PauseForEventException):
        await ship("ada", ["apple", "fig"], orchestration_backend=backend, instance_id="s-1")


def show(capsys, url: str, instance_id: str) -> tuple[int, str, str]:
    code = main(["show", "--store", url, instance_id])
    out, err = capsys.readouterr()
    return code, out, err


async def test_show_prints_the_call_stack_with_live_locals(stored, capsys):
    url, backend = stored
    await paused_ship(backend)
    code, out, err = show(capsys, url, "s-1")
    assert code == 0
    lines = out.splitlines()
    assert lines[:2] == ["waiting", "waiting for event: 'confirm'"]
    assert "program: tests.worker.test_show:ship" in lines
    assert "arguments: ('ada', ['apple', 'fig'])" in lines
    stack = lines[lines.index("call stack (outermost first; --frame N of edit):") + 1 :]
    assert stack[0].startswith("  [0] tests.worker.test_show:ship, line ")
    assert stack[0].endswith("awaiting the frame below")
    assert "      label = 'to ada'" in stack
    helper = next(line for line in stack if "weigh_all" in line)
    assert helper.startswith("  [1] tests.worker.test_show:weigh_all, line ")
    assert "      weight = 8" in stack
    # The basket is an object of a class of yours: named, not loaded, without a key.
    assert any("basket = <tests.worker.test_show.Basket object, not loaded>" in s for s in stack)
    assert "Basket" in err


async def test_show_of_a_completed_instance_prints_its_result_and_no_stack(stored, capsys):
    url, backend = stored
    await flows.record("/dev/null", "a", orchestration_backend=backend, instance_id="r-1")
    code, out, _ = show(capsys, url, "r-1")
    assert code == 0
    assert out.splitlines()[:2] == ["completed", "result: 'recorded a'"]
    assert "call stack" not in out


async def test_show_of_a_failed_instance_exits_4(stored, capsys):
    url, backend = stored
    with pytest.raises(LookupError):
        await flows.broken("gone", orchestration_backend=backend, instance_id="b-1")
    code, out, _ = show(capsys, url, "b-1")
    assert code == EXIT_FAILED and "LookupError: gone" in out


def refuse(order: str) -> None:
    raise PermissionError(f"card declined for {order}")


@make_durable
async def charge_thrice(order: str) -> None:
    await durable_execute(refuse, order, retry=RetryPolicy(max_attempts=3, initial_backoff=0))


async def test_show_counts_the_attempts_of_the_latest_operation(stored, capsys):
    url, backend = stored
    with pytest.raises(PermissionError):
        await charge_thrice("o-7", orchestration_backend=backend, instance_id="c-1")
    code, out, _ = show(capsys, url, "c-1")
    assert code == EXIT_FAILED
    assert "attempts: 3 of seq 1 (tests.worker.test_show.refuse)" in out.splitlines()
    main(["show", "--json", "--store", url, "c-1"])
    attempts = json.loads(capsys.readouterr().out)["attempts"]
    assert attempts == {
        "seq": 1,
        "operation": "tests.worker.test_show.refuse",
        "attempts": 3,
        "operator_retries": 0,
    }


def test_show_of_a_missing_instance_exits_not_found(stored, capsys):
    url, _ = stored
    code, _, err = show(capsys, url, "nobody")
    assert code == EXIT_NOT_FOUND and "no instance 'nobody'" in err


async def test_saved_frames_loads_live_values_for_the_python_api(stored):
    _, backend = stored
    await paused_ship(backend)
    state = backend.read_state("s-1")
    frames = saved_frames(state["snapshot"], loads, state.get("blobs"))
    assert [frame.awaiting for frame in frames][0] == "the frame below"
    basket = frames[1].live_locals["basket"]
    assert isinstance(basket, Basket) and basket.items == ["apple", "fig"]


async def test_show_json_holds_the_frames_and_their_live_locals(stored, capsys):
    url, backend = stored
    await paused_ship(backend)
    code = main(["show", "--json", "--store", url, "s-1"])
    shown = json.loads(capsys.readouterr().out)
    assert code == 0 and shown["status"] == "waiting" and shown["waiting_for"] == ["confirm"]
    assert shown["program"] == "tests.worker.test_show:ship"
    outer, helper = shown["frames"]
    assert outer["awaiting"] == "the frame below" and outer["live_locals"] == {"label": "'to ada'"}
    assert helper["function"] == "tests.worker.test_show:weigh_all"
    assert helper["live_locals"]["weight"] == "8"


async def test_status_json_of_a_completed_instance_holds_its_result(stored, capsys):
    url, backend = stored
    await flows.record("/dev/null", "a", orchestration_backend=backend, instance_id="r-1")
    code = main(["status", "--json", "--store", url, "r-1"])
    assert code == 0
    assert json.loads(capsys.readouterr().out) == {
        "instance_id": "r-1", "status": "completed", "result": "'recorded a'"
    }  # fmt: skip
