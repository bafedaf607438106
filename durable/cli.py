"""The ``durable`` command line: ``worker`` runs instances from a store, ``publish`` sends an
event to an instance, ``status`` shows where an instance is (``python -m durable`` too).

Every subcommand takes ``--store URL``: ``file:///path/to/dir``, ``sqlite:///relative.db``,
``sqlite:////absolute.db``. Without it, the ``DURABLE_STORE`` environment variable; without
that, ``sqlite:///durable.db``: the SQLite store ``durable.db`` in the current directory.
Only the worker creates a store; ``publish`` and ``status`` refuse one that does not exist.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import importlib
import json
import logging
import os
import reprlib
import shutil
import signal
import sys
import textwrap
import time
import traceback
from typing import Any

from ._errors import CorruptStateError, StateFormatError
from .runtime.runtime import STATUSES

logger: logging.Logger = logging.getLogger("durable.cli")

#: The store when neither ``--store`` nor ``DURABLE_STORE`` names one: ``durable.db`` in the
#: current directory (SQLite: indexed, so the worker asks it for the due instances).
DEFAULT_STORE = "sqlite:///durable.db"

#: Exit codes. 0: done (``status``: the instance is enqueued, running, waiting or completed).
#: The store or the instance asked about does not exist.
EXIT_NOT_FOUND = 1
#: A bad command line: a bad URL or option, a module that cannot be imported, invalid JSON.
EXIT_USAGE = 2
#: The stored state cannot be read: damaged, of another format, signed when no key is set
#: (or not when one is), or the store failed to answer.
EXIT_UNREADABLE = 3
#: ``status``: the instance failed (its error is printed).
EXIT_FAILED = 4
#: ``publish``: the instance has ended (completed or failed), so no event can reach it.
EXIT_ENDED = 5
#: ``delete``, ``retry``, ``edit``: a runner holds the instance now; nothing was changed.
EXIT_BUSY = 6
#: ``retry``: the instance has not failed; ``fork``: the new id is taken. Nothing changed.
EXIT_REFUSED = 7

EXIT_CODES_HELP = """exit codes:
  0  done; for status, the instance is enqueued, running, waiting or completed
  1  the store or the instance does not exist
  2  a bad command line (a bad --store URL or option, a module that cannot be imported)
  3  the stored state cannot be read (damaged, another format, signed with another key)
  4  status: the instance failed
  5  publish, cancel, edit: the instance has ended (completed or failed); nothing changed
  6  delete, retry, edit: a runner holds the instance now; nothing changed
  7  retry: the instance has not failed; fork: the new id is taken; nothing changed"""


class CommandError(Exception):
    """A problem the command line reports in one line, then exits with `code`."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.command(args)
    except CommandError as error:
        print(f"durable {args.name}: error: {error}", file=sys.stderr)
        return error.code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="durable",
        description="Run durable instances from a store, send them events, look at them.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_ShowVersion)
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    def store_option(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "--store",
            metavar="URL",
            help="the store: file:///path/to/dir, sqlite:///relative.db, "
            "sqlite:////absolute.db or postgresql://user:password@host:5432/database "
            f"(default: $DURABLE_STORE, else {DEFAULT_STORE}, the file durable.db in the "
            "current directory)",
        )

    def command(name: str, handler: Any, *, help: str, description: str) -> argparse.ArgumentParser:
        """A command of the store, its exit codes listed in its help."""
        parser = commands.add_parser(
            name,
            help=help,
            description=_paragraph(description),
            epilog=EXIT_CODES_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        store_option(parser)
        parser.set_defaults(command=handler, name=name)
        return parser

    worker = commands.add_parser(
        "worker",
        help="run the instances of a store until SIGTERM or SIGINT",
        description="Run every instance of the store that can make progress: enqueued ones, "
        "ones whose runner died, waiting ones whose event arrived or whose deadline passed. "
        "SIGTERM or SIGINT stops it cleanly (a second one abandons the runs still going).",
    )
    store_option(worker)
    worker.add_argument(
        "--concurrency", type=int, default=8, metavar="N", help="runs at a time (default 8)"
    )
    worker.add_argument(
        "--no-group-commit",
        action="store_true",
        help="with a SQLite or PostgreSQL store, give every write its own transaction, made "
        "on the event loop (by default concurrent runs share transactions, made by a "
        "committer thread)",
    )
    worker.add_argument(
        "--grace",
        type=float,
        default=10.0,
        metavar="S",
        help="at shutdown, seconds to wait for runs to reach their next durable operation "
        "before abandoning them where they are (default 10)",
    )
    worker.add_argument(
        "--park-sleeps-after",
        type=float,
        default=1.0,
        metavar="S",
        help="a durable sleep with more than S seconds left parks its instance in the store "
        "(status sleeping, holding no slot) until it is due; shorter ones sleep in their run "
        "(default 1)",
    )
    worker.add_argument(
        "--min-poll", type=float, default=0.05, metavar="S", help="shortest poll (default 0.05)"
    )
    worker.add_argument(
        "--max-poll",
        type=float,
        default=1.0,
        metavar="S",
        help="longest poll when idle: the latency of events from other processes (default 1)",
    )
    worker.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="default INFO",
    )
    worker.add_argument(
        "modules",
        nargs="+",
        metavar="MODULE",
        help="modules defining the durable functions, imported first (e.g. myapp.flows); the "
        "current directory is on the import path",
    )
    worker.set_defaults(command=_worker, name="worker")

    publish = command(
        "publish",
        _publish,
        help="publish an event to an instance",
        description=(
            "Store an event in an instance's inbox; a worker resumes the instance if it "
            "waits for it. The store must exist. An instance that has ended (completed or "
            "failed) can consume no event, so publishing to it is refused; so is publishing "
            "to an instance the store does not have, unless --before-start says it starts "
            "later."
        ),
    )
    publish.add_argument("instance_id", metavar="INSTANCE_ID")
    publish.add_argument("event", metavar="EVENT")
    publish.add_argument(
        "--json", metavar="PAYLOAD", help="the event's payload, as JSON (default: none)"
    )
    publish.add_argument(
        "--before-start",
        action="store_true",
        help="the instance is not started yet: keep the event in its inbox until it starts "
        "(without this, publishing to an instance the store does not have is refused)",
    )

    status = command(
        "status",
        _status,
        help="show an instance's status, and its result or error once it ended",
        description=(
            "Print the status on the first line (enqueued, running, waiting, completed, "
            "failed), then details: the awaited event, the result or the error. The store "
            "must exist. Without DURABLE_SECRET_KEY nothing vouches for the store, so nothing "
            "stored is run to show it: plain data (numbers, text, containers, dates) is "
            "shown, any other object only named (<myapp.Receipt object, not loaded>). With "
            "the key, signed state is loaded as the worker loads it."
        ),
    )
    status.add_argument("instance_id", metavar="INSTANCE_ID")
    status.add_argument(
        "--json", action="store_true", help="print a JSON object instead (values as shown)"
    )

    show = command(
        "show",
        _show,
        help="show an instance whole: program, arguments, times, call stack and live locals",
        description=(
            "Print what status prints, then the program, its arguments, when the instance "
            "was created and last written, and its saved call stack: per frame the function, "
            "the line it resumes at, what it awaits there and its live local variables "
            "(short reprs). Nothing stored is run to show it without DURABLE_SECRET_KEY (as "
            "for status); with the key, signed state is loaded."
        ),
    )
    show.add_argument("instance_id", metavar="INSTANCE_ID")
    show.add_argument(
        "--json", action="store_true", help="print a JSON object instead (values as shown)"
    )

    run = command(
        "run",
        _run_to_end,
        help="run a durable function to its end in this process, printing its result",
        description=(
            "Import MODULE, start FUNCTION as an instance of the store and run it here until "
            "it ends: while it waits for an event or a timer this process waits with it (an "
            "event published from anywhere, or the deadline, resumes it), and the result is "
            "printed (JSON when it can be, else its repr). Each ARG is read as JSON when it "
            "is JSON, else as a string. Stopped with Ctrl-C, the instance stays in the store "
            "and a worker or another run resumes it. Like the worker, run creates the store."
        ),
    )
    run.add_argument("target", metavar="MODULE:FUNCTION")
    run.add_argument("arguments", metavar="ARG", nargs="*")
    run.add_argument("--id", dest="instance_id", help="the instance id (default: a new one)")

    delete = command(
        "delete",
        _delete,
        help="delete an instance: its state and pending events",
        description=(
            "Forget the instance: its records and its pending events. An instance a runner "
            "holds now is refused (exit 6); delete it when it pauses or ends."
        ),
    )
    delete.add_argument("instance_id", metavar="INSTANCE_ID")

    prune = command(
        "prune",
        _prune,
        help="delete the ended instances last written long ago",
        description=(
            "Delete the instances of the given statuses (completed and failed by default) "
            "last written more than --older-than ago. Instances a runner holds are left."
        ),
    )
    prune.add_argument(
        "--older-than",
        metavar="AGE",
        type=_duration,
        required=True,
        help="how long ago the instance was last written: seconds, or 30s, 15m, 12h, 7d",
    )
    prune.add_argument(
        "--status",
        type=_statuses,
        default=("completed", "failed"),
        help="comma-separated statuses to prune (default: completed,failed)",
    )
    prune.add_argument(
        "--dry-run", action="store_true", help="print what would be deleted, delete nothing"
    )

    history = command(
        "history",
        _history,
        help="show an instance's timeline: its durable operations and operators' changes",
        description=(
            "One line per durable operation, oldest first: its sequence number, kind (call, "
            "event, timer, cancel), function, status, attempts, when it started and how long "
            "it took, and a one-line error; and the operators' changes (retry, edit, fork) "
            "as audit entries. Kept as a small summary per operation (the newest "
            "JournalPolicy.history_limit, 1000 by default), so ended instances show it too. "
            "Nothing stored is run to show it."
        ),
    )
    history.add_argument("instance_id", metavar="INSTANCE_ID")
    history.add_argument("--json", action="store_true", help="print a JSON array instead")

    cancel = command(
        "cancel",
        _cancel,
        help="cancel an instance: Cancelled is raised in it at its next checkpoint",
        description=(
            "Store a cancellation in the instance's inbox: durable.Cancelled is raised in it "
            "at its next checkpoint (a waiting or sleeping one is woken for it by a worker); "
            "its except and finally blocks run and may make durable calls. Uncaught, the "
            "instance fails with Cancelled."
        ),
    )
    cancel.add_argument("instance_id", metavar="INSTANCE_ID")
    cancel.add_argument("--reason", help="why, given to the instance as Cancelled.reason")

    unsafe = (
        "Changing the saved call stack loads it, which runs code from the store: give "
        "DURABLE_SECRET_KEY (a signed store vouches for it) or --unsafe-unpickle."
    )
    retry = command(
        "retry",
        _retry,
        help="run a failed instance again from its last snapshot",
        description=(
            "The failed durable calls the instance stopped at run again (their failures "
            "are dropped from its journal); earlier calls are not repeated. The instance "
            "becomes enqueued: a worker, or the next call, runs it. " + unsafe
        ),
    )
    retry.add_argument("instance_id", metavar="INSTANCE_ID")

    fork = command(
        "fork",
        _fork,
        help="start a new instance from an instance's latest snapshot",
        description=(
            "The new instance has the same call stack, live locals and journal and shares "
            "nothing with the first afterwards (events, leases, history). Forking a failed "
            "instance runs its failed calls again; a waiting or sleeping one waits on. " + unsafe
        ),
    )
    fork.add_argument("instance_id", metavar="INSTANCE_ID")
    fork.add_argument("--new-id", required=True, help="the id of the new instance")
    fork.add_argument(
        "--at",
        type=_positive,
        metavar="SEQ",
        help="fork from the snapshot taken at durable operation SEQ ('durable history' "
        "numbers them), while the instance's log still holds it (default: the latest)",
    )

    edit = command(
        "edit",
        _edit,
        help="change a live local variable of a paused instance",
        description=(
            "Set NAME to the JSON value in frame N of the saved call stack (0 is the "
            "outermost; 'durable show' numbers them). NAME must be live at the frame's "
            "resume point. Recorded in the instance's history. " + unsafe
        ),
    )
    edit.add_argument("instance_id", metavar="INSTANCE_ID")
    edit.add_argument("--frame", type=int, default=0, metavar="N", help="the frame (default 0)")
    edit.add_argument(
        "--set",
        dest="assignments",
        action="append",
        required=True,
        metavar="NAME=JSON",
        help="a variable and its new value as JSON (repeat for several)",
    )

    for changing in (retry, fork, edit):
        changing.add_argument(
            "--unsafe-unpickle",
            action="store_true",
            help="load the unsigned state (runs code from the store; only for a store you trust)",
        )

    listing = command(
        "list",
        _list,
        help="list the instances of a store, newest first",
        description=(
            "One line per instance: id, program, status, the events a waiting one waits "
            "for and its deadline, when it was created and last written. The store must "
            "exist. Without DURABLE_SECRET_KEY the state is read without running any of it "
            "(as for status). An instance whose state cannot be read is listed as "
            "unreadable, with the reason on stderr, and the exit code is 3."
        ),
    )
    listing.add_argument(
        "--status",
        action="append",
        choices=STATUSES,
        help="only instances of this status (repeat for several)",
    )
    listing.add_argument(
        "--program",
        metavar="P",
        help="only instances of this program (module:name, module or name)",
    )
    listing.add_argument("--limit", metavar="N", type=_positive, help="at most N instances")
    listing.add_argument("--json", action="store_true", help="print a JSON array instead")
    return parser


def _duration(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (text[:-1], text[-1]) if text[-1:] in units else (text, "s")
    try:
        seconds = float(number) * units[unit]
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        raise argparse.ArgumentTypeError(
            f"expected an age such as 3600, 30s, 15m, 12h or 7d, got {text!r}"
        )
    return seconds


def _statuses(text: str) -> tuple[str, ...]:
    statuses = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [status for status in statuses if status not in STATUSES]
    if unknown or not statuses:
        raise argparse.ArgumentTypeError(
            f"expected statuses separated by commas, of {', '.join(STATUSES)}; got {text!r}"
        )
    return statuses


def _positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return number


class _ShowVersion(argparse.Action):
    """``--version``: the distribution's version, read only when asked (its metadata takes
    ~40 ms to import, which every other command would pay)."""

    def __init__(self, option_strings: list[str], dest: str, **options: Any) -> None:
        super().__init__(
            option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="show the version"
        )

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        from ._version import package_version

        print(f"durable {package_version()}")
        parser.exit()


def _paragraph(text: str) -> str:
    """`text` wrapped as argparse would (the parsers whose exit codes are laid out by hand
    keep their text as given)."""
    return textwrap.fill(text, width=min(shutil.get_terminal_size().columns, 100) - 2)


# -- shared ---------------------------------------------------------------------------------
def _store_url(given: str | None) -> tuple[str, bool]:
    """The store URL to use (``--store``, else ``DURABLE_STORE``, else the default one), and
    whether it is the default."""
    url = given or os.environ.get("DURABLE_STORE")
    return (url, False) if url else (DEFAULT_STORE, True)


def _backend(url: str | None, command: str, *, create: bool = True):
    """A backend over the store `url` names (see `_store_url`), keyed from the environment;
    the default store is named on stderr (the worker logs it). With `create` False (the
    commands that look or send, not the worker), a store that does not exist is not created:
    `CommandError` (not found), so a mistyped URL does not start an empty store."""
    from .runtime.backend import DurableBackend, keys_from_environment
    from .stores import store_from_url

    url, default = _store_url(url)
    if not create:
        _refuse_missing_store(url, default)
    if default:
        path = os.path.abspath("durable.db")
        message = f"no --store or DURABLE_STORE given: using the default store {DEFAULT_STORE} "
        if command == "worker":
            logger.info("%s(%s)", message, path)
        else:
            print(f"durable {command}: {message}({path})", file=sys.stderr)
    try:
        keys = keys_from_environment()
    except (TypeError, ValueError) as error:
        raise CommandError(str(error)) from None
    try:
        store = store_from_url(url)
    except ValueError as error:
        raise CommandError(str(error)) from None
    except (CorruptStateError, StateFormatError) as error:
        raise CommandError(_one_line(error), EXIT_UNREADABLE) from None
    except Exception as error:
        from .stores.url import without_password

        raise CommandError(
            f"cannot open the store {without_password(url)!r}: {type(error).__name__}: "
            f"{_one_line(error)}"
        ) from None
    return DurableBackend(store, **keys)


def _refuse_missing_store(url: str, default: bool) -> None:
    """`CommandError` (not found) when `url` names a disk or SQLite store that does not
    exist (a URL of no supported form is left to `store_from_url`, which says why)."""
    from .stores.url import missing_store, without_password

    missing = missing_store(url)
    url = without_password(url)
    if missing is None:
        return
    if default:
        raise CommandError(
            f"no store: the default store {DEFAULT_STORE} ({missing}) does not exist; pass "
            "--store URL or set DURABLE_STORE to name the store your worker runs",
            EXIT_NOT_FOUND,
        )
    raise CommandError(
        f"no store at {url}: {missing} does not exist, and this command does not "
        "create stores (a mistyped URL would start an empty one). Check --store (or "
        "DURABLE_STORE): it must name the store your worker runs (the worker creates it)",
        EXIT_NOT_FOUND,
    )


def _instance_id(text: str) -> str:
    """`text` as an instance id; `CommandError` (a usage error) saying what is wrong."""
    from ._ids import validate_instance_id

    try:
        return validate_instance_id(text)
    except (ValueError, TypeError) as error:
        raise CommandError(str(error)) from None


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def _close(backend) -> None:
    close = getattr(backend.store, "close", None)
    if close is not None:
        close()


def _on_import_path() -> None:
    """Put the current directory first on the import path, as ``python -m`` does."""
    here = os.getcwd()
    if here not in sys.path:
        sys.path.insert(0, here)


def _import(name: str) -> None:
    if name.endswith(".py") or os.sep in name:
        raise CommandError(
            f"{name!r} is a file name; give the module's import name instead (e.g. "
            f"{name.removesuffix('.py').replace(os.sep, '.')!r})"
        )
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name is not None and (name == error.name or name.startswith(error.name + ".")):
            raise CommandError(
                f"cannot import module {name!r}: {error} (searched the current directory "
                f"{os.getcwd()} and sys.path)"
            ) from None
        traceback.print_exc()
        raise CommandError(
            f"cannot import module {name!r}: {type(error).__name__}: {error}"
        ) from None
    except Exception as error:
        traceback.print_exc()
        raise CommandError(
            f"cannot import module {name!r}: {type(error).__name__}: {error}"
        ) from None


# -- worker ---------------------------------------------------------------------------------
def _worker(args: argparse.Namespace) -> int:
    # A signal that comes while modules are imported stops the worker as soon as it runs.
    early: list[int] = []
    previous = {
        signum: signal.signal(signum, lambda signum, frame: early.append(signum))
        for signum in _SIGNALS
    }
    try:
        return _run_worker(args, early)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _run_worker(args: argparse.Namespace, early: list[int]) -> int:
    from .runtime.catalog import registered_keys
    from .stores import InMemoryStateStore
    from .worker import Worker

    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # The modules first: a name mistyped leaves no store behind (the default one is created
    # in the current directory when it opens).
    _on_import_path()
    for name in args.modules:
        _import(name)
        if not any(key.partition(":")[0] == name for key in registered_keys()):
            logger.warning("module %r defines no durable function", name)
    backend = _backend(args.store, "worker")
    if args.no_group_commit:
        if not hasattr(backend.store, "group_commit"):
            problem = f"--no-group-commit applies to a SQLite store, not {backend.store!r}"
            print(f"durable worker: error: {problem}", file=sys.stderr)
            return 2
        backend.store.group_commit = False
    try:
        try:
            worker = Worker(
                backend,
                concurrency=args.concurrency,
                min_poll=args.min_poll,
                max_poll=args.max_poll,
                grace=args.grace,
                park_sleeps_after=args.park_sleeps_after,
            )
        except ValueError as error:
            raise CommandError(str(error)) from None
        if isinstance(backend.store, InMemoryStateStore):
            logger.warning(
                "memory:// lives in this process only: nothing else can start instances in it"
            )
        asyncio.run(_serve(worker, early))
    finally:
        _close(backend)
    return 0


async def _serve(worker, early: list[int]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            logger.warning("%s again: abandoning the runs still going now", name)
            worker.hurry()
        else:
            logger.info("%s: shutting down (send it again to abandon runs at once)", name)
            stop.set()

    in_loop = []
    for signum in _SIGNALS:
        try:
            loop.add_signal_handler(signum, on_signal, signum)
            in_loop.append(signum)
        except NotImplementedError:
            # Windows' event loops take no signal handlers: a plain one passes it to the loop
            # (`_worker` puts the previous handler back).
            signal.signal(signum, lambda signum, _: loop.call_soon_threadsafe(on_signal, signum))
    for signum in early:
        on_signal(signum)
    try:
        await worker.run(stop)
    finally:
        for signum in in_loop:
            loop.remove_signal_handler(signum)


# -- publish --------------------------------------------------------------------------------
def _publish(args: argparse.Namespace) -> int:
    payload: Any = None
    if args.json is not None:
        try:
            payload = json.loads(args.json)
        except json.JSONDecodeError as error:
            raise CommandError(f"--json {args.json!r} is not valid JSON: {error}") from None
    _instance_id(args.instance_id)
    backend = _backend(args.store, "publish", create=False)
    try:
        # Read before the event is stored. A worker may end the instance between this read
        # and the write: that event then stays in the inbox unconsumed (a race accepted).
        status = _status_of(backend, args.instance_id)
        if status in ("completed", "failed"):
            raise CommandError(
                f"instance {args.instance_id!r} has {status}: it can consume no event, so "
                f"{args.event!r} was not published",
                EXIT_ENDED,
            )
        if status is None and not args.before_start:
            raise CommandError(
                f"no instance {args.instance_id!r} in {backend.store!r}: {args.event!r} was "
                "not published. Check the instance id and --store; to keep the event for an "
                "instance that starts later, pass --before-start",
                EXIT_NOT_FOUND,
            )
        try:
            backend.publish_event(args.instance_id, args.event, payload)
        except (ValueError, TypeError) as error:
            raise CommandError(str(error)) from None
        print(f"published event {args.event!r} to instance {args.instance_id!r}")
        if status is None:
            print(
                f"note: instance {args.instance_id!r} does not exist yet; the event waits in "
                "its inbox until it starts",
                file=sys.stderr,
            )
    finally:
        _close(backend)
    return 0


def _status_of(backend, instance_id: str) -> str | None:
    """The status of `instance_id` (None: the store has no such instance), from the store's
    index when it has one, else from its records, read without running them."""
    from .runtime.safe_pickle import safe_loads

    try:
        summary = getattr(backend.store, "summary", None)
        known = summary(instance_id) if callable(summary) else None
        if known is not None:
            return known.status
        state = backend.read_state(instance_id, loads=safe_loads)
    except Exception as error:
        raise _unreadable(backend, instance_id, error) from None
    return None if state is None else _known_status(backend, instance_id, state)


def _unreadable(backend, instance_id: str, error: BaseException) -> CommandError:
    return CommandError(
        f"instance {instance_id!r} in {backend.store!r} cannot be read: "
        f"{type(error).__name__}: {_one_line(error)}",
        EXIT_UNREADABLE,
    )


def _known_status(backend, instance_id: str, state: Any) -> str:
    status = state.get("status") if isinstance(state, dict) else None
    if status not in STATUSES:
        raise CommandError(
            f"instance {instance_id!r} in {backend.store!r} cannot be read: its state has no "
            f"known status ({status!r})",
            EXIT_UNREADABLE,
        )
    return status


# -- status, show ---------------------------------------------------------------------------
def _status(args: argparse.Namespace) -> int:
    return _look_at(args, whole=False)


def _show(args: argparse.Namespace) -> int:
    return _look_at(args, whole=True)


def _look_at(args: argparse.Namespace, *, whole: bool) -> int:
    """`status` (or with `whole`, `show`) of ``args.instance_id``."""
    from .runtime.backend import secret_key_from_environment
    from .runtime.safe_pickle import safe_loads

    instance_id = _instance_id(args.instance_id)
    backend = _backend(args.store, args.name, create=False)
    # Pickled state is code. The state and the events are read with the restricted
    # unpickler always (a status and names are plain data). A result, an error, arguments
    # and live locals are loaded only with a key, whose signatures vouch for the store;
    # without one they are shown as the restricted unpickler rebuilds them.
    trusted = secret_key_from_environment() is not None
    if trusted:
        _on_import_path()  # a value of a class of yours is loaded by its module name
    try:
        try:
            state = backend.read_state(instance_id, loads=safe_loads)
            fields, lines, unloaded = _described(backend, instance_id, state, trusted)
            if whole:
                unloaded += _described_whole(state, trusted, fields, lines)
        except CommandError:
            raise
        except Exception as error:
            # Whatever stored bytes made of the state (a field of an unexpected type):
            # damage, told in one line.
            raise _unreadable(backend, instance_id, error) from None
    finally:
        _close(backend)
    print(json.dumps(fields, indent=2) if args.json else "\n".join(lines))
    if unloaded:
        print(
            f"note: not loaded: {', '.join(dict.fromkeys(unloaded))}. Loading would run code "
            "from the store, and without DURABLE_SECRET_KEY nothing vouches for it; a store "
            "signed with the key is loaded (see docs/cli.md)",
            file=sys.stderr,
        )
    return EXIT_FAILED if fields["status"] == "failed" else 0


def _described_whole(
    state: dict[str, Any], trusted: bool, fields: dict[str, Any], lines: list[str]
) -> list[str]:
    """Add what `show` adds to `status` (program, arguments, times, the call stack) to
    `fields` and `lines`; the names of the stored objects not loaded."""
    from .runtime import references
    from .runtime.frames import saved_frames
    from .runtime.safe_pickle import safe_loads, unloaded_names

    loads = references.loads if trusted else safe_loads
    arguments = state.get("arguments")
    arguments = loads(arguments) if isinstance(arguments, bytes) else arguments
    fields.update(
        program=state.get("program"),
        arguments=_short(arguments),
        created_at=state.get("created_at"),
        updated_at=state.get("updated_at"),
    )
    lines += [
        f"program: {fields['program']}",
        f"arguments: {fields['arguments']}",
        f"created: {_when(fields['created_at'])}",
        f"updated: {_when(fields['updated_at'])}",
    ]
    attempts = _attempts(state)
    fields["attempts"] = attempts
    if attempts["operation"] is not None:
        retried = attempts["operator_retries"]
        lines.append(
            f"attempts: {attempts['attempts']} of seq {attempts['seq']} "
            f"({attempts['operation']})"
            + (f"; retried by an operator {retried} time(s)" if retried else "")
        )
    unloaded = unloaded_names(arguments)
    frames = saved_frames(state.get("snapshot"), loads, state.get("blobs"))
    if frames and fields["status"] != "completed":
        where = "where it stopped" if fields["status"] == "failed" else "outermost first"
        lines.append(f"call stack ({where}; --frame N of edit):")
        for number, frame in enumerate(frames):
            unloaded += _frame_lines(frame, lines, "  ", unloaded_names, f"[{number}] ")
        fields["frames"] = [_frame_fields(frame) for frame in frames]
    return unloaded


def _attempts(state: dict[str, Any]) -> dict[str, Any]:
    """How often the instance's latest durable operation ran (its retries included) and how
    often an operator retried the instance."""
    from .runtime.history import history_rows

    rows = history_rows(state)
    last = rows[-1] if rows else {}
    retries = sum(1 for change in state.get("audit") or () if change.get("action") == "retry")
    return {
        "seq": last.get("seq"),
        "operation": last.get("function"),
        "attempts": last.get("attempts"),
        "operator_retries": retries,
    }


def _frame_lines(
    frame: Any, lines: list[str], indent: str, unloaded_names: Any, label: str = ""
) -> list[str]:
    """Append the lines of `frame` (and its branches) to `lines`; the names not loaded."""
    awaiting = f", awaiting {frame.awaiting}" if frame.awaiting else ""
    lines.append(f"{indent}{label}{_function_name(frame.function)}, line {frame.line}{awaiting}")
    unloaded: list[str] = []
    for name, value in frame.live_locals.items():
        lines.append(f"{indent}    {name} = {_short(value)}")
        unloaded += unloaded_names(value)
    for number, branch in enumerate(frame.branches, 1):
        lines.append(f"{indent}  branch {number}:")
        for inner in branch:
            unloaded += _frame_lines(inner, lines, indent + "    ", unloaded_names)
    return unloaded


def _frame_fields(frame: Any) -> dict[str, Any]:
    return {
        "function": _function_name(frame.function),
        "line": frame.line,
        "awaiting": frame.awaiting,
        "live_locals": {name: _short(value) for name, value in frame.live_locals.items()},
        "branches": [[_frame_fields(inner) for inner in branch] for branch in frame.branches],
    }


def _function_name(function: Any) -> str:
    """How a saved frame's function is named: a program's ``module:name`` key, a helper
    function (loaded with a key), or what the restricted unpickler recorded of it."""
    from .runtime.safe_pickle import is_unloaded

    if isinstance(function, str):
        return function
    if is_unloaded(function):
        arguments = function.unloaded_args
        if function.unloaded_name == "a persistent reference" and arguments:
            reference = arguments[0]
            if isinstance(reference, tuple) and len(reference) == 3:
                return f"{reference[1]}:{reference[2]}"
        named = function.unloaded_global
        return f"{named[0]}:{named[1]}" if named else function.unloaded_name
    module, name = getattr(function, "__module__", "?"), getattr(function, "__qualname__", "?")
    return f"{module}:{name}"


def _short(value: Any) -> str:
    try:
        return _SHORT.repr(value)
    except Exception as error:  # a repr of yours that fails, with a key set
        return f"<{type(value).__name__} whose repr failed: {type(error).__name__}>"


_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 60
_SHORT.maxlevel = 3


def _when(seconds: Any) -> str:
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


# -- run ------------------------------------------------------------------------------------
def _run_to_end(args: argparse.Namespace) -> int:
    import uuid

    from ._errors import PauseForEventException
    from .runtime.program import DurableProgram

    module, _, name = args.target.partition(":")
    if not module or not name:
        raise CommandError(
            f"expected MODULE:FUNCTION (e.g. myapp.flows:order), got {args.target!r}"
        )
    _on_import_path()
    _import(module)
    program = sys.modules[module]
    for part in name.split("."):
        program = getattr(program, part, None)
    if not isinstance(program, DurableProgram):
        raise CommandError(
            f"{args.target!r} is not a durable function (decorate it with @make_durable)"
            if program is not None
            else f"module {module!r} has no {name!r}"
        )
    arguments = [_json_or_text(argument) for argument in args.arguments]
    instance_id = args.instance_id or f"run-{uuid.uuid4().hex[:12]}"
    backend = _backend(args.store, "run")
    print(f"durable run: instance {instance_id!r}", file=sys.stderr)
    try:
        while True:
            try:
                value = asyncio.run(
                    program(*arguments, orchestration_backend=backend, instance_id=instance_id)
                )
            except PauseForEventException:
                _wait_until_due(backend, instance_id)
                continue
            except Exception as error:
                print(f"durable run: instance {instance_id!r} failed: {type(error).__name__}: "
                      f"{_one_line(error)}", file=sys.stderr)  # fmt: skip
                return EXIT_FAILED
            break
    except KeyboardInterrupt:
        print(f"durable run: interrupted; instance {instance_id!r} stays in the store",
              file=sys.stderr)  # fmt: skip
        return 130
    finally:
        _close(backend)
    try:
        print(json.dumps(value))
    except (TypeError, ValueError):
        print(repr(value))
    return 0


def _json_or_text(argument: str) -> Any:
    try:
        return json.loads(argument)
    except json.JSONDecodeError:
        return argument


def _wait_until_due(backend: Any, instance_id: str, poll: float = 0.05) -> None:
    """Wait until the paused instance can go on: an event it waits for is in its inbox, or
    its deadline has come."""
    while True:
        state = backend.read_state(instance_id)
        awaited = set(state.get("waiting_events") or [state.get("waiting_for")])
        deadline = state.get("deadline")
        if deadline is not None and time.time() >= deadline:
            return
        if any(event.name in awaited for event in backend.pending_events(instance_id)):
            return
        time.sleep(poll if deadline is None else max(0.0, min(poll, deadline - time.time())))


# -- history, cancel, retry, fork, edit -----------------------------------------------------
def _history(args: argparse.Namespace) -> int:
    from .runtime.history import timeline
    from .runtime.safe_pickle import safe_loads

    instance_id = _instance_id(args.instance_id)
    backend = _backend(args.store, "history", create=False)
    try:
        try:
            state = backend.read_state(instance_id, loads=safe_loads)
        except Exception as error:
            raise _unreadable(backend, instance_id, error) from None
        if state is None:
            raise CommandError(f"no instance {instance_id!r} in {backend.store!r}", EXIT_NOT_FOUND)
        rows = timeline(state)
    finally:
        _close(backend)
    if args.json:
        print(json.dumps(rows, indent=2, default=repr))
        return 0
    table = []
    for row in rows:
        if row["kind"] == "operator":
            detail = ", ".join(f"{k}={v}" for k, v in (row.get("detail") or {}).items())
            table.append(
                ["", "operator", row["function"], "", "", _when(row["started_at"]), "", detail]
            )
            continue
        took = "" if row["duration"] is None else f"{row['duration'] * 1000:.1f} ms"
        table.append(
            [
                str(row["seq"]),
                row["kind"],
                str(row["function"]),
                row["status"].lower(),
                str(row["attempts"]),
                _when(row["started_at"]),
                took,
                row["error"] or "",
            ]
        )
    header = ["SEQ", "KIND", "FUNCTION", "STATUS", "ATTEMPTS", "STARTED", "TOOK", "ERROR"]
    widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header))]
    for line in [header, *table]:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
    return 0


def _cancel(args: argparse.Namespace) -> int:
    from .runtime.safe_pickle import safe_loads

    instance_id = _instance_id(args.instance_id)
    backend = _backend(args.store, "cancel", create=False)
    try:
        with _operator_errors():
            status = backend.cancel_instance(instance_id, args.reason, loads=safe_loads)
    finally:
        _close(backend)
    when = (
        "at once (a worker wakes it)"
        if status in ("waiting", "sleeping")
        else ("at its next checkpoint")
    )
    print(f"cancelling instance {instance_id!r} ({status}): Cancelled is raised in it {when}")
    return 0


def _retry(args: argparse.Namespace) -> int:
    from .runtime.operate import retry_instance

    instance_id = _instance_id(args.instance_id)
    backend = _trusted_backend(args, "retry")
    try:
        with _operator_errors():
            again = retry_instance(backend, instance_id)
    finally:
        _close(backend)
    calls = (
        f"operation(s) {', '.join(map(str, again))} run again"
        if again
        else ("no failed call is kept at its snapshot: it resumes from there")
    )
    print(f"instance {instance_id!r} is enqueued again; {calls}")
    return 0


def _fork(args: argparse.Namespace) -> int:
    from .runtime.operate import fork_instance

    instance_id = _instance_id(args.instance_id)
    new_id = _instance_id(args.new_id)
    backend = _trusted_backend(args, "fork")
    try:
        with _operator_errors():
            status = fork_instance(backend, instance_id, new_id, at=args.at)
    finally:
        _close(backend)
    print(f"forked instance {instance_id!r} into {new_id!r} ({status})")
    return 0


def _edit(args: argparse.Namespace) -> int:
    from .runtime.operate import edit_instance

    instance_id = _instance_id(args.instance_id)
    values = {}
    for assignment in args.assignments:
        name, equals, text = assignment.partition("=")
        if not equals or not name.isidentifier():
            raise CommandError(
                f"--set takes NAME=JSON (a variable name, '=', a JSON value), got {assignment!r}"
            )
        try:
            values[name] = json.loads(text)
        except json.JSONDecodeError as error:
            raise CommandError(
                f"--set {name}: {text!r} is not JSON ({error}); quote a string as '\"text\"'"
            ) from None
    backend = _trusted_backend(args, "edit")
    try:
        with _operator_errors():
            edit_instance(backend, instance_id, args.frame, values)
    finally:
        _close(backend)
    print(f"edited frame {args.frame} of instance {instance_id!r}: {', '.join(values)}")
    return 0


def _trusted_backend(args: argparse.Namespace, command: str):
    """The backend of a command that loads the stored state (runs its pickles)."""
    from .runtime.backend import secret_key_from_environment

    if secret_key_from_environment() is None and not args.unsafe_unpickle:
        raise CommandError(
            f"{command} loads the instance's saved state, which runs code from the store, and "
            "without DURABLE_SECRET_KEY nothing vouches for it: set the key the store is "
            "signed with, or pass --unsafe-unpickle for a store you trust"
        )
    _on_import_path()
    return _backend(args.store, command, create=False)


@contextlib.contextmanager
def _operator_errors():
    """An operator's change refused, as one line and its exit code."""
    from ._errors import DurableError, InstanceBusyError, InstanceEndedError

    try:
        yield
    except InstanceBusyError as error:
        raise CommandError(str(error), EXIT_BUSY) from None
    except InstanceEndedError as error:
        raise CommandError(str(error), EXIT_ENDED) from None
    except (ValueError, TypeError) as error:
        raise CommandError(str(error)) from None
    except DurableError as error:
        message = str(error)
        code = EXIT_NOT_FOUND if message.startswith("no instance") else EXIT_REFUSED
        raise CommandError(_one_line(error), code) from None


# -- delete, prune --------------------------------------------------------------------------
def _delete(args: argparse.Namespace) -> int:
    from ._errors import InstanceBusyError

    instance_id = _instance_id(args.instance_id)
    backend = _backend(args.store, "delete", create=False)
    try:
        try:
            deleted = backend.delete_instance(instance_id)
        except InstanceBusyError as error:
            raise CommandError(str(error), EXIT_BUSY) from None
    finally:
        _close(backend)
    if not deleted:
        raise CommandError(
            f"no instance {args.instance_id!r} in {backend.store!r}; nothing was deleted",
            EXIT_NOT_FOUND,
        )
    print(f"deleted instance {args.instance_id!r}")
    return 0


def _prune(args: argparse.Namespace) -> int:
    from .runtime.handles import prune_instances
    from .runtime.safe_pickle import safe_loads

    backend = _backend(args.store, "prune", create=False)
    try:
        try:
            pruned = prune_instances(
                backend, older_than=args.older_than, status=args.status,
                dry_run=args.dry_run, loads=safe_loads,
            )  # fmt: skip
        except Exception as error:
            raise CommandError(
                f"cannot prune {backend.store!r}: {type(error).__name__}: {_one_line(error)}",
                EXIT_UNREADABLE,
            ) from None
    finally:
        _close(backend)
    verb = "would delete" if args.dry_run else "deleted"
    for instance_id in pruned:
        print(f"{verb} {instance_id}")
    print(f"{verb} {len(pruned)} instance(s)", file=sys.stderr)
    return 0


# -- list -----------------------------------------------------------------------------------
def _list(args: argparse.Namespace) -> int:
    from .runtime.handles import list_instances
    from .runtime.safe_pickle import safe_loads

    backend = _backend(args.store, "list", create=False)
    unreadable: list[str] = []

    def report(instance_id: str, error: Exception) -> None:
        unreadable.append(instance_id)
        print(f"durable list: {_unreadable(backend, instance_id, error)}", file=sys.stderr)

    try:
        try:
            found = list_instances(
                backend, status=args.status, program=args.program, loads=safe_loads,
                on_unreadable=report,
            )  # fmt: skip
        except Exception as error:
            raise CommandError(
                f"cannot list the instances of {backend.store!r}: {type(error).__name__}: "
                f"{_one_line(error)}",
                EXIT_UNREADABLE,
            ) from None
    finally:
        _close(backend)
    rows = [dataclasses.asdict(info) for info in found]
    if not args.status and not args.program:
        rows += [_row_of_unreadable(instance_id) for instance_id in unreadable]
    if args.limit is not None:
        rows = rows[: args.limit]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        _print_table(rows)
    return EXIT_UNREADABLE if unreadable else 0


def _row_of_unreadable(instance_id: str) -> dict[str, Any]:
    return {
        "instance_id": instance_id, "program": None, "status": "unreadable", "waiting_for": [],
        "deadline": None, "created_at": None, "updated_at": None,
    }  # fmt: skip


def _runner(backend, instance_id: str) -> str | None:
    """Who holds the lease of a running instance now (None: nobody, its runner is gone),
    told as the worker tells it: the lease is taken and given back at once when free."""
    holder = backend.acquire_instance(instance_id)
    if holder is None:
        backend.release_instance(instance_id)
    return holder


def _print_table(rows: list[dict[str, Any]]) -> None:
    def waiting(row: dict[str, Any]) -> str:
        shown = " or ".join(map(repr, row["waiting_for"]))
        if row["deadline"] is not None:
            shown = f"{shown} until {_when(row['deadline'])}" if shown else _when(row["deadline"])
        return shown or "-"

    table = [("ID", "PROGRAM", "STATUS", "WAITING FOR", "CREATED", "UPDATED")]
    table += [
        (
            row["instance_id"], row["program"] or "-", row["status"], waiting(row),
            _when(row["created_at"]), _when(row["updated_at"]),
        )
        for row in rows
    ]  # fmt: skip
    widths = [max(len(line[column]) for line in table) for column in range(len(table[0]))]
    for line in table:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        )


def _described(
    backend, instance_id: str, state: dict[str, Any] | None, trusted: bool
) -> tuple[dict[str, Any], list[str], list[str]]:
    """What `status` shows of `instance_id` (its `state`, read restricted): its fields
    (JSON-ready: a result or error as the text shown), the lines that show them, and the
    names of the stored objects in them that were not loaded."""
    from .runtime.safe_pickle import safe_loads

    if state is None:
        raise CommandError(f"no instance {instance_id!r} in {backend.store!r}", EXIT_NOT_FOUND)
    status = _known_status(backend, instance_id, state)
    fields: dict[str, Any] = {"instance_id": instance_id, "status": status}
    lines, unloaded = [status], []
    if status == "waiting":
        events = list(state.get("waiting_events") or [state.get("waiting_for")])
        fields["waiting_for"] = [name for name in events if isinstance(name, str)]
        lines.append(f"waiting for event: {' or '.join(map(repr, events))}")
        deadline = state.get("deadline")
        if isinstance(deadline, int | float):
            fields["deadline"] = deadline
            lines.append(f"deadline: {_when(deadline)} ({deadline - time.time():+.1f} s from now)")
        pending = backend.pending_events(instance_id, loads=safe_loads)
        fields["inbox"] = [event.name for event in pending if isinstance(event.name, str)]
        if pending:
            lines.append(f"events in its inbox: {', '.join(repr(e.name) for e in pending)}")
    elif status == "sleeping":
        wake_at = state.get("deadline")
        if isinstance(wake_at, int | float):
            fields["wake_at"] = wake_at
            lines.append(f"wakes up: {_when(wake_at)} ({wake_at - time.time():+.1f} s from now)")
    elif status == "running":
        runner = _runner(backend, instance_id)
        fields["runner"] = runner
        lines.append(f"runner: {runner or 'none (its runner is gone: a worker resumes it)'}")
    elif status in ("completed", "failed"):
        field = "result" if status == "completed" else "error"
        shown, unloaded = _shown(backend, instance_id, state.get(field), field, trusted)
        fields[field] = shown
        lines.append(f"{field}: {shown}")
    return fields, lines, unloaded


def _shown(
    backend, instance_id: str, blob: Any, field: str, trusted: bool
) -> tuple[str, list[str]]:
    """How the stored result or error `blob` is printed, and the names of the objects in it
    that were not loaded."""
    from .runtime import references
    from .runtime.safe_pickle import safe_loads, unloaded_names

    if blob is None:
        return "None", []
    if not isinstance(blob, bytes):
        raise CommandError(
            f"instance {instance_id!r} in {backend.store!r} cannot be read: its {field} is "
            f"not pickled bytes ({type(blob).__name__})",
            EXIT_UNREADABLE,
        )
    if trusted:
        try:
            value = references.loads(blob)
        except Exception as problem:
            # Signed, so not damage: a class of it that this process cannot import.
            return f"<cannot be loaded here: {type(problem).__name__}: {problem}>", []
        if field == "error":
            return f"{type(value).__name__}: {value}", []
        return repr(value), []
    try:
        value = safe_loads(blob)
    except Exception as error:
        raise _unreadable(backend, instance_id, error) from None
    if field == "error":
        error = _unloaded_error(value)
        if error is not None:
            name, arguments = error
            return f"{name}: {_exception_text(arguments)}", unloaded_names(arguments)
    return repr(value), unloaded_names(value)


def _unloaded_error(value: Any) -> tuple[str, tuple[Any, ...]] | None:
    """(class name, arguments) of an exception as the restricted unpickler records it: a
    call of the function stored exceptions are rebuilt by (`references.pickle_error`), whose
    arguments hold the exception's class name and arguments, enough to show it unloaded."""
    from .runtime import references
    from .runtime.safe_pickle import is_unloaded

    rebuild = references._rebuild_exception
    if not (
        is_unloaded(value) and value.unloaded_name == f"{rebuild.__module__}.{rebuild.__qualname__}"
    ):
        return None
    reduced = value.unloaded_args[0] if value.unloaded_args else None
    if not (isinstance(reduced, tuple) and len(reduced) >= 2):
        return None
    factory, arguments = reduced[0], reduced[1]
    if not (is_unloaded(factory) and isinstance(arguments, tuple)):
        return None
    return factory.unloaded_name.removeprefix("builtins."), arguments


def _exception_text(arguments: tuple[Any, ...]) -> str:
    """What ``str()`` of an exception with `arguments` says (BaseException's rule)."""
    if not arguments:
        return ""
    return str(arguments[0]) if len(arguments) == 1 else str(arguments)
