"""The ``durable`` command line: ``worker`` runs instances from a store, ``publish`` sends an
event to an instance, ``status`` shows where an instance is (``python -m durable`` too).

Every subcommand takes ``--store URL``: ``file:///path/to/dir``, ``sqlite:///relative.db``,
``sqlite:////absolute.db``. Without it, the ``DURABLE_STORE`` environment variable; without
that, ``sqlite:///durable.db``: the SQLite store ``durable.db`` in the current directory.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import os
import signal
import sys
import time
import traceback
from typing import Any

logger = logging.getLogger("durable.cli")

#: The store when neither ``--store`` nor ``DURABLE_STORE`` names one: ``durable.db`` in the
#: current directory (SQLite: indexed, so the worker asks it for the due instances).
DEFAULT_STORE = "sqlite:///durable.db"

#: Exit codes: 0 done, 1 the thing asked about does not exist, 2 a bad command line.
EXIT_NOT_FOUND = 1
EXIT_USAGE = 2


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
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    def store_option(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "--store",
            metavar="URL",
            help="the store: file:///path/to/dir, sqlite:///relative.db or "
            f"sqlite:////absolute.db (default: $DURABLE_STORE, else {DEFAULT_STORE}, the file "
            "durable.db in the current directory)",
        )

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
        help="with a SQLite store, give every write its own transaction, made on the event "
        "loop (by default concurrent runs share transactions, made by a committer thread)",
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

    publish = commands.add_parser(
        "publish",
        help="publish an event to an instance",
        description="Store an event in an instance's inbox; a worker resumes the instance "
        "if it waits for it.",
    )
    store_option(publish)
    publish.add_argument("instance_id", metavar="INSTANCE_ID")
    publish.add_argument("event", metavar="EVENT")
    publish.add_argument(
        "--json", metavar="PAYLOAD", help="the event's payload, as JSON (default: none)"
    )
    publish.set_defaults(command=_publish, name="publish")

    status = commands.add_parser(
        "status",
        help="show an instance's status, and its result or error once it ended",
        description="Print the status on the first line (enqueued, running, waiting, "
        "completed, failed), then details: the awaited event, the result or the error.",
    )
    store_option(status)
    status.add_argument("instance_id", metavar="INSTANCE_ID")
    status.set_defaults(command=_status, name="status")
    return parser


# -- shared ---------------------------------------------------------------------------------
def _store_url(given: str | None) -> tuple[str, bool]:
    """The store URL to use (``--store``, else ``DURABLE_STORE``, else the default one), and
    whether it is the default."""
    url = given or os.environ.get("DURABLE_STORE")
    return (url, False) if url else (DEFAULT_STORE, True)


def _backend(url: str | None, command: str, *, create: bool = True):
    """A backend over the store `url` names (see `_store_url`); the default store is named on
    stderr (the worker logs it). With `create` False, a default store that does not exist is
    not created: `CommandError` (not found)."""
    from .runtime.backend import DurableBackend, secret_key_from_environment
    from .stores import store_from_url

    url, default = _store_url(url)
    if default:
        path = os.path.abspath("durable.db")
        if not create and not os.path.exists(path):
            raise CommandError(
                f"no store: the default store {DEFAULT_STORE} ({path}) does not exist; pass "
                "--store URL or set DURABLE_STORE to look at another store",
                EXIT_NOT_FOUND,
            )
        message = f"no --store or DURABLE_STORE given: using the default store {DEFAULT_STORE} "
        if command == "worker":
            logger.info("%s(%s)", message, path)
        else:
            print(f"durable {command}: {message}({path})", file=sys.stderr)
    try:
        store = store_from_url(url)
    except ValueError as error:
        raise CommandError(str(error)) from None
    except Exception as error:
        raise CommandError(
            f"cannot open the store {url!r}: {type(error).__name__}: {error}"
        ) from None
    return DurableBackend(store, secret_key=secret_key_from_environment())


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

    for signum in _SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)
    for signum in early:
        on_signal(signum)
    try:
        await worker.run(stop)
    finally:
        for signum in _SIGNALS:
            loop.remove_signal_handler(signum)


# -- publish --------------------------------------------------------------------------------
def _publish(args: argparse.Namespace) -> int:
    payload: Any = None
    if args.json is not None:
        try:
            payload = json.loads(args.json)
        except json.JSONDecodeError as error:
            raise CommandError(f"--json {args.json!r} is not valid JSON: {error}") from None
    backend = _backend(args.store, "publish")
    try:
        try:
            backend.publish_event(args.instance_id, args.event, payload)
        except (ValueError, TypeError) as error:
            raise CommandError(str(error)) from None
        print(f"published event {args.event!r} to instance {args.instance_id!r}")
        if backend.read_state(args.instance_id) is None:
            print(
                f"note: instance {args.instance_id!r} does not exist (yet); the event waits in "
                "its inbox until it does",
                file=sys.stderr,
            )
    finally:
        _close(backend)
    return 0


# -- status ---------------------------------------------------------------------------------
def _status(args: argparse.Namespace) -> int:
    from .runtime import references

    _on_import_path()  # a result or error of a class of yours is loaded by its module name
    backend = _backend(args.store, "status", create=False)
    try:
        try:
            state = backend.read_state(args.instance_id)
        except ValueError as error:
            raise CommandError(str(error)) from None
        if state is None:
            raise CommandError(
                f"no instance {args.instance_id!r} in {backend.store!r}", EXIT_NOT_FOUND
            )
        status = state.get("status")
        print(status)
        if status == "waiting":
            events = state.get("waiting_events") or [state.get("waiting_for")]
            print(f"waiting for event: {' or '.join(map(repr, events))}")
            deadline = state.get("deadline")
            if deadline is not None:
                when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(deadline))
                print(f"deadline: {when} ({deadline - time.time():+.1f} s from now)")
            pending = [event.name for event in backend.pending_events(args.instance_id)]
            if pending:
                print(f"events in its inbox: {', '.join(map(repr, pending))}")
        elif status == "completed":
            print(f"result: {_loaded(references, state.get('result'))}")
        elif status == "failed":
            print(f"error: {_loaded(references, state.get('error'), error=True)}")
    finally:
        _close(backend)
    return 0


def _loaded(references, blob: bytes | None, *, error: bool = False) -> str:
    if blob is None:
        return "None"
    try:
        value = references.loads(blob)
    except Exception as problem:
        return f"<cannot be loaded here: {type(problem).__name__}: {problem}>"
    if error:
        return f"{type(value).__name__}: {value}"
    return repr(value)
