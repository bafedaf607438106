"""The documentation site builds, and what it shows is real.

The site is built with ``mkdocs build --strict`` (broken links and anchors, docstrings the
reference cannot render fail it); the tutorial's console blocks are run, in order, in one
shell over the tutorial's app, and must print what the page shows.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import durable

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
TUTORIAL = DOCS / "tutorial.md"


@pytest.mark.slow
def test_the_site_builds_with_mkdocs_strict(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "reference" / "index.html").exists()


def test_every_public_name_is_in_the_api_reference():
    listed = set(re.findall(r"^\s+- (\w+)$", (DOCS / "reference.md").read_text(), re.M))
    missing = sorted(set(durable.__all__) - listed)
    assert not missing, f"names of durable.__all__ missing from docs/reference.md: {missing}"


# -- the tutorial ---------------------------------------------------------------------------
#: Commands that only read, run again until they print what the page shows (the worker and
#: the web server need a moment); every other command runs exactly once.
_READS = ("durable status ", "durable show ", "durable list ", "durable history ", "cat ", "tail ")
_GET = re.compile(r"^curl -s localhost:")


def console_steps(markdown: str) -> list[tuple[str, list[str]]]:
    """Each ``$ command`` of the page's console blocks, in order, with the lines shown under it."""
    steps: list[tuple[str, list[str]]] = []
    for block in re.findall(r"^```console\n(.*?)^```", markdown, re.M | re.S):
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], []))
            else:
                steps[-1][1].append(line)
    return steps


def normalized(lines: list[str]) -> list[str]:
    """Lines with what differs from run to run (times, durations, column widths) made equal."""
    out = []
    for line in lines:
        line = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(,\d+)?", "<time>", line)
        line = re.sub(r"\(\+[\d.]+ s from now\)", "(+<s> s from now)", line)
        line = re.sub(r"\b\d+\.\d ms\b", "<ms>", line)
        out.append(" ".join(line.split()))
    return out


class Shell:
    """One bash process fed the page's commands one by one, as a reader types them."""

    MARK = "@@tutorial-step-done@@"

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            ["bash", "--norc", "--noprofile"],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its background jobs share its process group
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.errors: list[str] = []
        threading.Thread(target=self._pump, args=(self.process.stdout, self.lines.put)).start()
        threading.Thread(target=self._pump, args=(self.process.stderr, self.errors.append)).start()

    @staticmethod
    def _pump(stream, put) -> None:
        for line in stream:
            put(line.rstrip("\n"))

    def run(self, command: str, timeout: float = 60) -> tuple[int, list[str]]:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{command}\necho {self.MARK}$?\n")
        self.process.stdin.flush()
        output, deadline = [], time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise AssertionError(f"{command!r} did not finish within {timeout} s") from None
            if line.startswith(self.MARK):
                return int(line[len(self.MARK) :]), output
            output.append(line)

    def close(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_the_tutorial_runs_as_written(tmp_path):
    steps = console_steps(TUTORIAL.read_text())
    assert len(steps) >= 20, "the tutorial's console blocks were not found"
    app = tmp_path / "tutorial"
    shutil.copytree(ROOT / "examples" / "tutorial" / "myapp", app / "myapp")
    port = str(free_port())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DURABLE_", "MYAPP_"))}
    # The venv's `durable` and `python` first; a shorter cooling-off keeps the test short
    # while leaving the steps between the approval and the kill ample time.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["MYAPP_PAYOUT_DELAY"] = "14"
    env.pop("PYTHONPATH", None)
    shell = Shell(app, env)
    transcript: list[str] = []
    try:
        for command, shown in steps:
            command = command.replace("8000", port)
            shown = [line.replace("8000", port) for line in shown]
            reads = command.startswith(_READS) or bool(_GET.match(command))
            deadline = time.monotonic() + 60
            while True:
                code, printed = shell.run(command)
                if normalized(printed) == normalized(shown) or not reads:
                    break
                if time.monotonic() > deadline:
                    break
                time.sleep(0.3)
            transcript += [f"$ {command}  (exit {code})", *printed]
            where = "\n".join(transcript[-40:]) + "\nstderr:\n" + "\n".join(shell.errors[-20:])
            assert code == 0, f"{command!r} exited with {code}:\n{where}"
            assert normalized(printed) == normalized(shown), (
                f"{command!r} printed what the tutorial does not show:\n{where}\n"
                "the tutorial shows:\n" + "\n".join(shown)
            )
    finally:
        shell.close()
