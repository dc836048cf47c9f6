"""`hashmatch` entry point."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cli import hash_command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hashmatch", description="Hash media and match it against hash lists.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    hash_command.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
