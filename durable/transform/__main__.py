"""``python -m durable.transform module:function`` prints the compiled, resumable source."""

from __future__ import annotations

import importlib
import sys

from . import transform_to_durable_ast


def main(argv: list[str]) -> int:
    if len(argv) != 1 or ":" not in argv[0]:
        print("usage: python -m durable.transform module:function", file=sys.stderr)
        return 2
    module_name, _, qualname = argv[0].partition(":")
    sys.path.insert(0, "")
    target = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    target = getattr(target, "__wrapped__", target)
    print(transform_to_durable_ast(target).code, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
