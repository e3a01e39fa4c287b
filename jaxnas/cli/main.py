"""The ``jaxnas`` command: a thin layer over the library.

Each sub-command lives in ``jaxnas/cli/<name>.py`` with ``register(subparsers)``, which adds its parser and
sets ``func(args) -> int``. Library errors (ValueError, FileNotFoundError) become one line on stderr, exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from jaxnas.platform import hostmem

COMMANDS = ("describe", "search", "train", "bench", "plot")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jaxnas", description="JAX-native neural architecture search")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"jaxnas.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"jaxnas.cli.{name}":
                continue  # a command not built yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        if not hostmem.accelerator_installed():  # XLA:CPU's buffers: huge pages (JAXNAS_CPU_MALLOC), before JAX
            if argv is None:  # run as a command, not called from Python: glibc reads its tunables at start-up only
                hostmem.reexec_with_hugepages()
            hostmem.keep_host_memory()  # JAXNAS_CPU_MALLOC=keep
    except ValueError as e:
        print(f"jaxnas: error: {e}", file=sys.stderr)
        return 2
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv and "search" in sub_names(parser):
        argv = ["search"]  # the main job: a small default search on the embedded data
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, KeyError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"jaxnas {args.command}: error: {msg}", file=sys.stderr)
        return 2


def sub_names(parser: argparse.ArgumentParser) -> set[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()


if __name__ == "__main__":
    sys.exit(main())
