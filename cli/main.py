"""`hashmatch` entry point."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence

from cli import (
    admin_command,
    audit_command,
    bench_command,
    evidence_command,
    hash_command,
    lists_command,
    match_command,
    scan_command,
    serve_command,
)
from cli.common import fail, fail_with, os_error
from hashing.errors import HashmatchError, ReasonCode

EXIT_INTERRUPTED = 130
DEBUG_VARIABLE = "HASHMATCH_DEBUG"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hashmatch", description="Hash media and match it against hash lists.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    hash_command.register(commands)
    lists_command.register(commands)
    match_command.register(commands)
    scan_command.register(commands)
    serve_command.register(commands)
    admin_command.register(commands)
    bench_command.register(commands)
    audit_command.register(commands)
    evidence_command.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except HashmatchError as exc:
        return fail_with(exc)
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        return fail_with(os_error(exc))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception:
        # A bug: users get one line and the reason code; the traceback is for whoever debugs it.
        if os.environ.get(DEBUG_VARIABLE):
            traceback.print_exc()
        return fail(ReasonCode.INTERNAL, f"unexpected failure; run again with {DEBUG_VARIABLE}=1 for the details")


if __name__ == "__main__":
    sys.exit(main())
