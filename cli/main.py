"""`hashmatch` entry point."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from cli import bench_command, hash_command, lists_command, match_command, serve_command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hashmatch", description="Hash media and match it against hash lists.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    hash_command.register(commands)
    lists_command.register(commands)
    match_command.register(commands)
    serve_command.register(commands)
    bench_command.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
