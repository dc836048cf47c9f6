"""Arguments and output helpers shared by the `hashmatch` subcommands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.store import Store, default_db_path

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def add_db_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        type=Path,
        default=None,
        help=f"SQLite store (default: $HASHMATCH_DB or {default_db_path()})",
    )


def open_store(args: argparse.Namespace) -> Store:
    return Store(args.db or default_db_path())


def fail(message: str) -> int:
    sys.stderr.write(f"hashmatch: error: {message}\n")
    return EXIT_FAILED
