"""`durable.__version__`: the installed distribution's version (``durable-frames``), from its
metadata; from a source tree never installed, the version in the pyproject.toml beside it.
Read on first use: importing `importlib.metadata` costs every process ~40 ms at start."""

from __future__ import annotations

from pathlib import Path

DISTRIBUTION = "durable-frames"
#: The version of a copy of the package that is neither installed nor in its source tree.
UNKNOWN = "0+unknown"


def package_version() -> str:
    from importlib import metadata

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return source_version(Path(__file__).resolve().parents[1] / "pyproject.toml")


def source_version(pyproject: Path) -> str:
    """The version `pyproject` gives this distribution; `UNKNOWN` when it is missing or is
    another project's."""
    import tomllib  # only here: an installed package never reads it

    try:
        project = tomllib.loads(pyproject.read_text("utf-8")).get("project", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return UNKNOWN
    if project.get("name") != DISTRIBUTION or not isinstance(project.get("version"), str):
        return UNKNOWN
    return project["version"]
