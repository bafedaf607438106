"""The distribution `durable-frames`: its metadata has one version, and what `python -m build`
makes installs into a fresh virtual environment and runs the main example from there."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

import durable
from durable._version import UNKNOWN, source_version

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
VERSION = PROJECT["version"]
# The tests of what was built share one build and one install: one test process runs them all.
ONE_BUILD = pytest.mark.xdist_group("package")


def _run(command: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    # Nothing of the source tree or of this test process on the child's import path.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    return result


# -- the metadata -------------------------------------------------------------------------------
def test_the_version_is_pyprojects():
    assert durable.__version__ == VERSION


def test_a_source_tree_gives_its_pyprojects_version(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "durable-frames"\nversion = "9.8.7"\n')
    assert source_version(pyproject) == "9.8.7"


def test_a_copy_outside_any_source_tree_has_the_unknown_version(tmp_path):
    assert source_version(tmp_path / "pyproject.toml") == UNKNOWN == "0+unknown"


def test_another_projects_pyproject_gives_the_unknown_version(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "something-else"\nversion = "1.0"\n')
    assert source_version(pyproject) == UNKNOWN


def test_the_readme_installs_the_distributions_name():
    assert PROJECT["name"] == "durable-frames"
    assert "pip install durable-frames" in (ROOT / "README.md").read_text("utf-8")


def test_the_project_urls_all_point_into_the_homepages_repository():
    urls = PROJECT["urls"]
    assert set(urls) == {"Homepage", "Documentation", "Issues", "Changelog"}
    assert all(
        url.startswith(urls["Homepage"] + "/") for name, url in urls.items() if name != "Homepage"
    )


def test_the_changelog_has_an_entry_for_this_version():
    changelog = (ROOT / "CHANGELOG.md").read_text("utf-8")
    assert re.search(rf"^## \[?{re.escape(VERSION)}\]?", changelog, re.MULTILINE), changelog[:300]


def test_the_license_file_is_the_mit_license_of_the_durable_authors():
    text = (ROOT / "LICENSE").read_text("utf-8")
    assert text.startswith("MIT License") and "the durable authors" in text
    assert PROJECT["license"] == "MIT" and PROJECT["license-files"] == ["LICENSE"]


# -- built, installed, run ----------------------------------------------------------------------
def _readme_demo_output() -> list[str]:
    """The lines the README says `examples/approval.py demo` prints."""
    readme = (ROOT / "README.md").read_text("utf-8")
    block = re.search(r"The first prints[^\n]*\n\n```\n(.*?)```", readme, re.DOTALL)
    assert block, "the README no longer shows what the main example prints"
    return block.group(1).splitlines()


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """The sdist and the wheel `python -m build` makes of a copy of the source tree."""
    work = tmp_path_factory.mktemp("package")
    source = work / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "__pycache__", "*.egg-info", "build", "dist", ".*_cache",
            ".hypothesis", "approval.db*", "*.jsonl",
        ),
    )  # fmt: skip
    _run([sys.executable, "-m", "build", "--outdir", str(work / "dist"), str(source)], work, 300)
    (sdist,) = (work / "dist").glob("*.tar.gz")
    (wheel,) = (work / "dist").glob("*.whl")
    return {"work": work, "sdist": sdist, "wheel": wheel}


@pytest.mark.slow
@ONE_BUILD
def test_the_sdist_holds_the_license_the_readme_and_the_typing_marker(built):
    assert built["sdist"].name == f"durable_frames-{VERSION}.tar.gz"
    with tarfile.open(built["sdist"]) as sdist:
        names = {name.partition("/")[2] for name in sdist.getnames()}
    assert {"LICENSE", "README.md", "pyproject.toml", "durable/py.typed"} <= names
    assert "durable/__init__.py" in names


@pytest.mark.slow
@ONE_BUILD
def test_the_wheel_holds_the_package_and_its_license_but_not_the_tests(built):
    assert built["wheel"].name == f"durable_frames-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(built["wheel"]) as wheel:
        names = wheel.namelist()
        metadata = wheel.read(f"durable_frames-{VERSION}.dist-info/METADATA").decode()
    assert "durable/py.typed" in names and "durable/stores/sqlite.py" in names
    assert f"durable_frames-{VERSION}.dist-info/licenses/LICENSE" in names
    assert not [name for name in names if name.startswith(("tests/", "examples/", "bench/"))]
    assert "Name: durable-frames\n" in metadata and "License-Expression: MIT\n" in metadata


@pytest.fixture(scope="module")
def installed(built) -> Path:
    """A fresh virtual environment with the wheel installed in it (not editable)."""
    environment = built["work"] / "venv"
    venv.create(environment, with_pip=True)
    python = environment / ("Scripts" if os.name == "nt" else "bin") / "python"
    _run([str(python), "-m", "pip", "install", "--quiet", str(built["wheel"])], built["work"], 300)
    return python


@pytest.mark.slow
@ONE_BUILD
def test_the_installed_package_is_the_wheels_with_pyprojects_version(built, installed):
    result = _run(
        [
            str(installed),
            "-c",
            "import durable, importlib.metadata as m;"
            "print(durable.__file__); print(m.version('durable-frames')); print(durable.__version__)",
        ],
        built["work"],
    )
    location, metadata_version, version = result.stdout.splitlines()
    assert Path(location).is_relative_to(installed.parents[1])
    assert not Path(location).is_relative_to(ROOT)
    assert metadata_version == version == VERSION


@pytest.mark.slow
@ONE_BUILD
def test_the_console_script_of_the_installed_package_runs(installed, built):
    script = installed.parent / ("durable.exe" if os.name == "nt" else "durable")
    result = _run([str(script), "--help"], built["work"])
    assert "worker" in result.stdout and "publish" in result.stdout


@pytest.mark.slow
@ONE_BUILD
def test_the_main_example_runs_on_the_installed_package_as_the_readme_says(built, installed):
    run = built["work"] / "run"
    run.mkdir()
    shutil.copy(ROOT / "examples" / "approval.py", run / "approval.py")
    result = _run([str(installed), "approval.py", "demo"], run)
    assert result.stdout.splitlines() == _readme_demo_output(), result.stderr
