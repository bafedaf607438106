"""Generate small durable programs, as source text, for the differential test.

`programs()` is a Hypothesis strategy of `GeneratedProgram`s. Each is a module in the corpus
format (`TRACE = []`, `ARGS = ()`, one or two helper `async def`s and `async def main()`)
built from the constructs the compiler supports: int assignments, `TRACE.append(...)`, wait
points with unique names, `if/elif/else`, `for` (and `for-else`) over `range`, lists and
`enumerate`, `while` (and `while-else`, `while True` + `break`) with a fuel counter,
`break`/`continue`/`return`, `with resumable(...)` (left every way), `try/except/else/finally`
(also bare `except:`) with a conditional
`raise ValueError(...)` and bare `raise` in handlers, and awaits of the helpers (nested
durable calls) as statements and inside `and`/`or`, conditional expressions, call arguments
(also of another durable call), binary operators, augmented assignments, `if`/`while` tests
and `return`. The helpers have wait points of their own and may raise into their caller.

Every generated program is valid, terminates and reads only bound names:

- a `for` loop runs over at most `MAX_ITERATIONS` items; a `while` loop counts down a fuel
  variable that nothing else assigns, first thing in its body (so `continue` cannot skip it);
- a helper calls only helpers generated before it, so there is no recursion;
- the builder tracks the names definitely bound at each point (after an `if` with an `else`,
  those bound on every branch; after a loop, none of the loop's own; after a `try`, those of
  both the no-exception and the handler path, plus the `finally`'s);
- expressions use `+` and `-`, and `*` and `%` by small constants only, so the one
  exception a program can raise is its own `ValueError`;
- no `break`, `continue` or `return` leaves a `finally` (deprecated since Python 3.14).

Each block gets a *budget*: an upper bound on the checkpoints it may pass at run time (a
wait point costs 1, a nested call `CALL_COST` plus its callee's cost, a loop its body's cost
times its iteration count). That bounds how often a run pauses and writes its state, which
keeps the test fast.

Every construct the builder emits is recorded in `GeneratedProgram.constructs` (names from
`CONSTRUCTS`), so a test can check that the generator still produces each of them.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path

from hypothesis import strategies as st

#: What a nested durable call counts on top of its callee's own checkpoints.
CALL_COST = 1
MAX_ITERATIONS = 3
#: Compound statements nest at most this deep.
MAX_DEPTH = 3
#: Most statements in one block, by nesting depth.
MAX_STATEMENTS = {0: 5, 1: 3, 2: 2, 3: 2}
MAIN_BUDGET = 32
HELPER_BUDGET = 3
INDENT = "    "

CONSTRUCTS = frozenset(
    {
        # straight-line code
        "assign", "augassign", "trace",
        # wait points, by where they are
        "wait", "wait_in_loop", "wait_in_helper",
        "wait_in_try_body", "wait_in_handler", "wait_in_else", "wait_in_finally",
        # branches and loops
        "if", "elif", "else",
        "for_range", "for_range_expr", "for_list", "for_enumerate", "for_else",
        "while", "while_await_test", "while_true_break", "while_else",
        # jumps
        "break", "continue", "return_in_loop", "return_in_branch", "return_await",
        # exceptions
        "raise", "raise_in_helper", "reraise",
        "try_except", "try_except_else", "try_except_finally", "try_except_else_finally",
        "try_finally", "except_tuple", "except_exception", "except_bare",
        # context managers, and every way out of them
        "with_resumable", "with_exit_jump",
        # awaits of helpers (nested durable calls)
        "await_assign", "await_and", "await_or", "await_ifexp", "await_ifexp_test",
        "await_callarg", "await_trace_arg", "await_nested_arg", "await_keyword_arg",
        "await_binop", "await_augassign", "await_if_test", "helper_calls_helper",
        # helpers undecorated (run as frames), closures over live variables, fan-out
        "undecorated_helpers", "closure_over_live", "gather_helpers",
    }
)  # fmt: skip


@dataclass(frozen=True)
class GeneratedProgram:
    source: str
    constructs: frozenset[str]

    @property
    def name(self) -> str:
        """A module name unique to the source: files and modules never go stale."""
        return "gen_" + hashlib.sha256(self.source.encode()).hexdigest()[:16]

    def write(self, directory: Path) -> str:
        """Write the program to `directory/<name>.py` and return its name."""
        (directory / f"{self.name}.py").write_text(self.source)
        return self.name

    def _repr_pretty_(self, printer, cycle) -> None:
        """How Hypothesis shows a failing example: the program as it reads."""
        printer.text(f'GeneratedProgram(source="""\n{self.source}""")')


@dataclass(frozen=True)
class Helper:
    name: str
    cost: int


@dataclass
class Scope:
    """What the code generated at one point may do."""

    function: str
    #: Int names definitely bound here.
    bound: set[str]
    #: Names an assignment may target (never a loop or fuel variable).
    assignable: tuple[str, ...]
    callees: tuple[Helper, ...]
    depth: int = 0
    in_loop: bool = False
    can_return: bool = True
    #: The part of the innermost `try` this code is in: "", try_body, handler, else, finally.
    region: str = ""
    #: Directly in an `except` block: a bare `raise` re-raises the handled exception.
    in_handler: bool = False

    def inner(self, **changes) -> Scope:
        changes.setdefault("depth", self.depth + 1)
        changes.setdefault("in_handler", False)
        return dataclasses.replace(self, bound=set(self.bound), **changes)


@dataclass
class Piece:
    """Generated statements (unindented lines) and the checkpoints they may pass."""

    lines: list[str]
    cost: int = 0
    #: The last statement leaves the block (break, continue, return): nothing may follow.
    ends: bool = False


def indent(lines: list[str]) -> list[str]:
    return [INDENT + line for line in lines]


class ProgramBuilder:
    """Builds one program from Hypothesis draws (`draw` as given to `st.composite`)."""

    def __init__(self, draw) -> None:
        self.draw = draw
        self.constructs: set[str] = set()
        self.counter = 0
        #: A gather ran helpers concurrently: their traces interleave as the pauses fall.
        self.concurrent = False

    # -- choices -----------------------------------------------------------------------------

    def integer(self, low: int, high: int) -> int:
        return self.draw(st.integers(low, high))

    def pick(self, options):
        return self.draw(st.sampled_from(options))

    def flip(self) -> bool:
        return self.draw(st.booleans())

    def budget(self, high: int, parts: int = 1) -> int:
        """A budget for one of `parts` pieces sharing `high`: at most an equal share.

        Hypothesis often draws the simplest choice (0); here that gives the full share, since
        a budget is only a limit and zero budgets would starve programs of checkpoints.
        """
        share = high // parts
        return share - self.integer(0, share)

    def unique(self) -> int:
        self.counter += 1
        return self.counter

    def record(self, *constructs: str) -> None:
        unknown = set(constructs) - CONSTRUCTS
        assert not unknown, f"add {unknown} to CONSTRUCTS"
        self.constructs.update(constructs)

    # -- program and functions -----------------------------------------------------------------

    def program(self) -> GeneratedProgram:
        helpers: list[Helper] = []
        chunks: list[list[str]] = []
        for index in range(self.integer(1, 2)):
            name = f"h{index + 1}"
            lines, cost = self.function(
                name, ("x", "k"), ("a", "b", "x"), tuple(helpers), HELPER_BUDGET
            )
            chunks.append([f"async def {name}(x, k=1):", *indent(lines)])
            helpers.append(Helper(name, cost))
        lines, _ = self.function("main", (), ("a", "b", "c"), tuple(helpers), MAIN_BUDGET)
        chunks.append(["async def main():", *indent(lines)])
        options = []
        if self.flip():
            self.record("undecorated_helpers")
            options.append('DURABLE = ("main",)')
        if self.concurrent:
            options.append("TRACE_IN_ANY_ORDER = True")
        header = [
            '"""A generated program."""',
            "import asyncio",
            "",
            "from durable import PauseForEventException, resumable",
            *options,
            "",
            "TRACE = []",
            "ARGS = ()",
            "",
            "",
            "class Lease:",
            f'{INDENT}"""Traces entering and leaving; re-entered quietly after a resume."""',
            "",
            f"{INDENT}def __init__(self, name):",
            f"{INDENT * 2}self.name = name",
            "",
            f"{INDENT}def __enter__(self):",
            f'{INDENT * 2}TRACE.append(("enter", self.name))',
            f"{INDENT * 2}return self",
            "",
            f"{INDENT}def __durable_reenter__(self):",
            f"{INDENT * 2}return self",
            "",
            f"{INDENT}def __exit__(self, kind, error, traceback):",
            f'{INDENT * 2}TRACE.append(("exit", self.name, kind.__name__ if kind else None))',
            f"{INDENT * 2}return False",
        ]
        text = "\n".join(header) + "".join("\n\n\n" + "\n".join(chunk) for chunk in chunks)
        return GeneratedProgram(text + "\n", frozenset(self.constructs))

    def function(self, name, params, assignable, callees, max_budget) -> tuple[list[str], int]:
        scope = Scope(name, set(params), assignable, callees)
        body = self.block(scope, self.budget(max_budget))
        if not body.ends:
            if name == "main":
                values = sorted(scope.bound & set(assignable))
                body.lines.append(f"return ({', '.join(values)},)" if values else "return None")
            else:
                body.lines.append(f"return {self.expression(scope)}")
        return body.lines, body.cost

    def block(self, scope: Scope, budget: int) -> Piece:
        """Statements in `scope` (whose `bound` they update) passing at most `budget`."""
        block = Piece([])
        for index in range(MAX_STATEMENTS[scope.depth]):
            # One draw per further statement (not a count up front): the shrinker deletes a
            # statement by deleting its draws, without shifting the ones after it.
            if index and not self.integer(0, 2):
                break
            piece = self.statement(scope, budget - block.cost)
            block.lines += piece.lines
            block.cost += piece.cost
            if piece.ends:
                block.ends = True
                break
        assert block.cost <= budget
        return block

    def affordable(self, scope: Scope, budget: int) -> list[Helper]:
        return [h for h in scope.callees if h.cost + CALL_COST <= budget]

    def statement(self, scope: Scope, budget: int) -> Piece:
        """One statement; the kinds that fit here are drawn with these relative weights.

        Hypothesis draws the first option most often (it is the simplest choice), so
        checkpoints come first when they fit: they are what the test is about.
        """
        weights = {}
        if self.affordable(scope, budget):
            weights["await"] = 4
        if budget >= 1:
            weights["wait"] = 3
        weights.update({"assign": 2, "trace": 1})
        if scope.function != "main" or scope.depth > 0:  # else it would often end main
            weights["raise"] = 1
        if any(name in scope.bound for name in scope.assignable):
            weights["augassign"] = 1
        if scope.depth < MAX_DEPTH:
            weights.update({"if": 1, "for": 1, "while": 1, "try": 2, "with": 1})
        if budget >= 1 and any(name in scope.bound for name in scope.assignable):
            weights["closure"] = 1
        if len(self.affordable(scope, budget // 2)) >= 1:
            weights["gather"] = 1
        if scope.in_handler:
            weights["reraise"] = 1
        if scope.depth > 0:
            if scope.in_loop:
                weights.update({"break": 1, "continue": 1})
            if scope.can_return:
                weights["return"] = 1
        kinds = [kind for kind, weight in weights.items() for _ in range(weight)]
        return getattr(self, "s_" + self.pick(kinds))(scope, budget)

    # -- expressions -----------------------------------------------------------------------------

    def expression(self, scope: Scope, depth: int = 0) -> str:
        """An int expression over bound names; raises nothing."""
        kinds = ["constant"]
        if scope.bound:
            kinds += ["name", "name"]
        if depth < 2:
            kinds.append("binary")
        kind = self.pick(kinds)
        if kind == "constant":
            return str(self.integer(0, 5))
        if kind == "name":
            return self.pick(sorted(scope.bound))
        operator = self.pick(["+", "-", "*", "%"])
        left = self.operand(scope, depth + 1)
        if operator == "*":
            right = str(self.integer(0, 3))
        elif operator == "%":
            right = str(self.integer(2, 5))
        else:
            right = self.operand(scope, depth + 1)
        return f"{left} {operator} {right}"

    def operand(self, scope: Scope, depth: int) -> str:
        text = self.expression(scope, depth)
        return f"({text})" if " " in text else text

    def condition(self, scope: Scope) -> str:
        value = self.operand(scope, 1)
        form = self.pick(["less", "even", "equal", "compare"])
        if form == "less":
            return f"{value} < {self.integer(0, 5)}"
        if form == "even":
            return f"{value} % 2 == 0"
        if form == "equal":
            return f"{value} == {self.integer(0, 3)}"
        return f"{value} >= {self.operand(scope, 1)}"

    def call(self, scope: Scope, budget: int) -> tuple[str, int]:
        """`await helper(...)` for a helper within `budget`, and its cost."""
        helper = self.pick(self.affordable(scope, budget))
        cost = helper.cost + CALL_COST
        if scope.function != "main":
            self.record("helper_calls_helper")
        inner = self.affordable(scope, budget - cost)
        form = self.pick(["plain", "keyword", "nested"] if inner else ["plain", "keyword"])
        if form == "nested":
            argument, inner_cost = self.call(scope, budget - cost)
            cost += inner_cost
            self.record("await_nested_arg", "await_callarg")
            return f"await {helper.name}({argument})", cost
        argument = self.expression(scope)
        if form == "keyword":
            self.record("await_keyword_arg")
            return f"await {helper.name}({argument}, k={self.integer(0, 3)})", cost
        return f"await {helper.name}({argument})", cost

    def maybe_call(self, scope: Scope, budget: int) -> tuple[str | None, int]:
        """Often an await of a helper (if one fits `budget`), else (None, 0)."""
        if self.affordable(scope, budget) and not self.flip():  # the simplest choice awaits
            return self.call(scope, budget)
        return None, 0

    def condition_maybe_awaiting(self, scope: Scope, budget: int) -> tuple[str, int]:
        call, cost = self.maybe_call(scope, budget)
        if call is None:
            return self.condition(scope), 0
        return f"{call} {self.pick(['>', '<', '=='])} {self.integer(0, 4)}", cost

    # -- simple statements ---------------------------------------------------------------------

    def assign(self, scope: Scope, value: str) -> str:
        target = self.pick(scope.assignable)
        scope.bound.add(target)
        return f"{target} = {value}"

    def s_assign(self, scope: Scope, budget: int) -> Piece:
        self.record("assign")
        return Piece([self.assign(scope, self.expression(scope))])

    def s_augassign(self, scope: Scope, budget: int) -> Piece:
        self.record("augassign")
        target = self.pick([name for name in scope.assignable if name in scope.bound])
        operator = self.pick(["+=", "-=", "*="])
        value = str(self.integer(0, 3)) if operator == "*=" else self.expression(scope)
        return Piece([f"{target} {operator} {value}"])

    def s_trace(self, scope: Scope, budget: int) -> Piece:
        self.record("trace")
        label = f'"t{self.unique()}"'
        values = [self.expression(scope) for _ in range(self.integer(0, 2))]
        if not values:
            return Piece([f"TRACE.append({label})"])
        return Piece([f"TRACE.append(({', '.join([label, *values])}))"])

    def s_wait(self, scope: Scope, budget: int) -> Piece:
        self.record("wait")
        if scope.in_loop:
            self.record("wait_in_loop")
        if scope.function != "main":
            self.record("wait_in_helper")
        if scope.region:
            self.record(f"wait_in_{scope.region}")
        return Piece([f'raise PauseForEventException("p{self.unique()}")'], cost=1)

    def raise_value_error(self, scope: Scope) -> list[str]:
        self.record("raise")
        if scope.function != "main":
            self.record("raise_in_helper")
        message = f'f"r{self.unique()}:{{{self.expression(scope)}}}"'
        return [f"if {self.condition(scope)}:", f"{INDENT}raise ValueError({message})"]

    def s_raise(self, scope: Scope, budget: int) -> Piece:
        return Piece(self.raise_value_error(scope))

    def s_reraise(self, scope: Scope, budget: int) -> Piece:
        self.record("reraise")
        return Piece([f"if {self.condition(scope)}:", f"{INDENT}raise"])

    def s_break(self, scope: Scope, budget: int) -> Piece:
        self.record("break")
        return Piece(["break"], ends=True)

    def s_continue(self, scope: Scope, budget: int) -> Piece:
        self.record("continue")
        return Piece(["continue"], ends=True)

    def s_return(self, scope: Scope, budget: int) -> Piece:
        self.record("return_in_loop" if scope.in_loop else "return_in_branch")
        call, cost = self.maybe_call(scope, budget)
        if call is not None:
            self.record("return_await")
            return Piece([f"return {call}"], cost=cost, ends=True)
        return Piece([f"return {self.expression(scope)}"], ends=True)

    def s_await(self, scope: Scope, budget: int) -> Piece:
        """An await of a helper in one of the expression contexts the compiler handles."""
        forms = ["assign", "and", "or", "ifexp", "callarg", "trace", "binop"]
        if any(name in scope.bound for name in scope.assignable):
            forms.append("augassign")
        form = self.pick(forms)
        self.record(f"await_{form}" if form != "trace" else "await_trace_arg")
        call, cost = self.call(scope, budget)
        if form == "assign":
            return Piece([self.assign(scope, call)], cost)
        if form in ("and", "or"):
            second, second_cost = self.maybe_call(scope, budget - cost)
            other = second if second is not None else self.expression(scope)
            left, right = (call, other) if self.flip() else (other, call)
            return Piece([self.assign(scope, f"{left} {form} {right}")], cost + second_cost)
        if form == "ifexp":
            shape = self.pick(["body", "orelse", "test"])
            test, value = self.condition(scope), self.expression(scope)
            if shape == "body":
                text = f"{call} if {test} else {value}"
            elif shape == "orelse":
                text = f"{value} if {test} else {call}"
            else:
                self.record("await_ifexp_test")
                text = f"{value} if {call} > 1 else {self.expression(scope)}"
            return Piece([self.assign(scope, text)], cost)
        if form == "callarg":
            function = self.pick(["max", "min", "abs"])
            arguments = call if function == "abs" else f"{self.expression(scope)}, {call}"
            return Piece([self.assign(scope, f"{function}({arguments})")], cost)
        if form == "trace":
            return Piece([f'TRACE.append(("t{self.unique()}", {call}))'], cost)
        if form == "binop":
            value = self.operand(scope, 1)
            text = self.pick(
                [f"{value} + {call} * 2", f"{call} - {value}", f"{value} * 3 - {call}"]
            )
            return Piece([self.assign(scope, text)], cost)
        target = self.pick([name for name in scope.assignable if name in scope.bound])
        return Piece([f"{target} {self.pick(['+=', '-='])} {call}"], cost)

    # -- compound statements -------------------------------------------------------------------

    def s_if(self, scope: Scope, budget: int) -> Piece:
        self.record("if")
        tests, tests_cost = [], 0
        for _ in range(self.integer(1, 3)):
            test, cost = self.condition_maybe_awaiting(scope, budget - tests_cost)
            if cost:
                self.record("await_if_test")
            tests.append(test)
            tests_cost += cost
        if len(tests) > 1:
            self.record("elif")
        has_else = self.flip()
        if has_else:
            self.record("else")
        lines, branches_cost, bound_after = [], 0, None
        for index in range(len(tests) + has_else):
            branch = scope.inner()
            body = self.block(branch, budget - tests_cost)
            if index < len(tests):
                lines.append(f"{'if' if index == 0 else 'elif'} {tests[index]}:")
            else:
                lines.append("else:")
            lines += indent(body.lines)
            branches_cost = max(branches_cost, body.cost)
            if not body.ends:
                bound_after = branch.bound if bound_after is None else bound_after & branch.bound
        if has_else and bound_after is not None:
            scope.bound |= bound_after
        return Piece(lines, tests_cost + branches_cost)

    def loop_else(self, scope: Scope, budget: int, construct: str) -> Piece:
        """Sometimes an `else:` clause of a loop (runs once, when it ends without break)."""
        if not self.flip():
            return Piece([])
        self.record(construct)
        body = self.block(scope.inner(), budget)
        return Piece(["else:", *indent(body.lines)], body.cost)

    def s_for(self, scope: Scope, budget: int) -> Piece:
        number = self.unique()
        body_scope = scope.inner(in_loop=True)
        form = self.pick(["range", "list", "enumerate", "range_expr"])
        self.record(f"for_{form}")
        if form == "range_expr":
            iterations = MAX_ITERATIONS
            header = f"for i{number} in range({self.operand(scope, 1)} % {MAX_ITERATIONS + 1}):"
        elif form == "range":
            iterations = self.pick([2, 0, 1, 3])  # the simplest choice repeats the body
            header = f"for i{number} in range({iterations}):"
        else:
            items = [str(self.integer(0, 9)) for _ in range(self.integer(1, MAX_ITERATIONS))]
            iterations = len(items)
            if form == "list":
                header = f"for i{number} in [{', '.join(items)}]:"
            else:
                header = f"for i{number}, v{number} in enumerate([{', '.join(items)}]):"
                body_scope.bound.add(f"v{number}")
        body_scope.bound.add(f"i{number}")
        body = self.block(body_scope, self.budget(budget) // max(iterations, 1))
        orelse = self.loop_else(scope, budget - body.cost * iterations, "for_else")
        lines = [header, *indent(body.lines), *orelse.lines]
        return Piece(lines, body.cost * iterations + orelse.cost)

    def s_while(self, scope: Scope, budget: int) -> Piece:
        self.record("while")
        fuel = f"n{self.unique()}"
        iterations = self.integer(1, MAX_ITERATIONS)
        lines = [f"{fuel} = {iterations}"]
        body_scope = scope.inner(in_loop=True)
        body_scope.bound.add(fuel)
        form = self.pick(["fuel", "fuel_and_test", "fuel_and_await", "true_break"])
        test_cost = 0
        if form == "fuel_and_await" and self.affordable(scope, budget // (iterations + 1)):
            call, cost = self.call(scope, budget // (iterations + 1))
            self.record("while_await_test")
            test_cost = cost * (iterations + 1)
            lines.append(f"while {fuel} > 0 and {call} {self.pick(['>', '<'])} 1:")
            preamble = [f"{fuel} -= 1"]
        elif form == "fuel_and_test":
            lines.append(f"while {fuel} > 0 and {self.condition(body_scope)}:")
            preamble = [f"{fuel} -= 1"]
        elif form == "true_break":
            self.record("while_true_break")
            lines.append("while True:")
            preamble = [f"{fuel} -= 1", f"if {fuel} < 0:", f"{INDENT}break"]
        else:
            lines.append(f"while {fuel} > 0:")
            preamble = [f"{fuel} -= 1"]
        remaining = budget - test_cost
        body = self.block(body_scope, self.budget(remaining) // iterations)
        lines += indent(preamble + body.lines)
        orelse = Piece([])
        if form != "true_break":  # its else clause would never run
            orelse = self.loop_else(scope, remaining - body.cost * iterations, "while_else")
        lines += orelse.lines
        scope.bound.add(fuel)
        return Piece(lines, test_cost + body.cost * iterations + orelse.cost)

    def s_try(self, scope: Scope, budget: int) -> Piece:
        form = self.pick(
            ["try_except", "try_except_else", "try_except_finally", "try_except_else_finally",
             "try_finally"]
        )  # fmt: skip
        self.record(form)
        number = self.unique()
        remaining = budget
        parts = 1 + ("except" in form) + ("else" in form) + ("finally" in form)

        body_scope = scope.inner(region="try_body")
        raise_lines = self.raise_value_error(body_scope) if self.integer(0, 3) else []
        raise_first = self.flip()
        body = self.block(body_scope, self.budget(remaining, parts))
        remaining -= body.cost
        parts -= 1
        lines = ["try:"]
        if raise_first or body.ends:
            lines += indent(raise_lines + body.lines)
        else:
            lines += indent(body.lines + raise_lines)
        normal_bound = body_scope.bound

        if form != "try_finally":
            handler_scope = scope.inner(region="handler", in_handler=True)
            clause = self.pick(["ValueError", "(KeyError, ValueError)", "Exception", ""])
            if clause == "Exception":
                self.record("except_exception")
            elif clause.startswith("("):
                self.record("except_tuple")
            elif not clause:
                self.record("except_bare")
            handler = self.block(handler_scope, self.budget(remaining, parts))
            remaining -= handler.cost
            parts -= 1
            if clause and self.flip():
                lines.append(f"except {clause} as e{number}:")
                lines.append(f'{INDENT}TRACE.append(("e{number}", str(e{number})))')
            else:
                lines.append(f"except {clause}:" if clause else "except:  # noqa: E722")
            lines += indent(handler.lines)
            if "else" in form:
                else_scope = dataclasses.replace(body_scope, bound=set(body_scope.bound))
                else_scope.region = "else"
                orelse = self.block(else_scope, self.budget(remaining, parts))
                remaining -= orelse.cost
                parts -= 1
                lines += ["else:", *indent(orelse.lines)]
                normal_bound = else_scope.bound
            if not handler.ends:
                normal_bound = normal_bound & handler_scope.bound

        if "finally" in form:  # runs after any part of the rest: only names bound before
            final_scope = scope.inner(region="finally", in_loop=False, can_return=False)
            final = self.block(final_scope, self.budget(remaining))
            remaining -= final.cost
            lines += ["finally:", *indent(final.lines)]
            normal_bound = normal_bound | final_scope.bound
        scope.bound |= normal_bound
        return Piece(lines, budget - remaining)

    def s_closure(self, scope: Scope, budget: int) -> Piece:
        """A lambda over a live variable, a checkpoint, the variable changed, the lambda
        read: after a resume the frame and the lambda still share the variable."""
        self.record("closure_over_live")
        name = self.pick([name for name in scope.assignable if name in scope.bound])
        number = self.unique()
        return Piece(
            [
                f"read{number} = lambda: {name}",
                f'raise PauseForEventException("p{self.unique()}")',
                f"{name} = {name} + 1",
                f'TRACE.append(("c{number}", read{number}()))',
            ],
            cost=1,
        )

    def s_gather(self, scope: Scope, budget: int) -> Piece:
        """`asyncio.gather` of two helper calls, each a branch pausing on its own; a helper's
        ValueError comes back as a value (return_exceptions), as plain asyncio would too."""
        self.record("gather_helpers")
        self.concurrent = True
        first, first_cost = self.call(scope, budget // 2)
        second, second_cost = self.call(scope, budget - first_cost)
        members = ", ".join(call.removeprefix("await ") for call in (first, second))
        results = f"await asyncio.gather({members}, return_exceptions=True)"
        value = f"sum(r for r in {results} if not isinstance(r, Exception))"
        return Piece([self.assign(scope, value)], first_cost + second_cost)

    def s_with(self, scope: Scope, budget: int) -> Piece:
        """`with resumable(Lease(...)):` around a block; its `__exit__` traces, so the test
        sees it run once on every way out (the end, an exception, break, continue, return)."""
        self.record("with_resumable")
        number = self.unique()
        body_scope = scope.inner()
        body = self.block(body_scope, budget)
        if body.ends:
            self.record("with_exit_jump")
        lines = [f'with resumable(Lease("w{number}")):', *indent(body.lines or ["pass"])]
        if not body.ends:
            scope.bound |= body_scope.bound
        return Piece(lines, body.cost, ends=body.ends)


@st.composite
def programs(draw) -> GeneratedProgram:
    """A small, valid, terminating durable program; see the module docstring."""
    return ProgramBuilder(draw).program()
