"""The `albsent` command: one thin subcommand per stage (see albsent/commands/)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from albsent import __version__
from albsent.errors import AlbsentError
from albsent.registry import COMMANDS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="albsent", description="Speech sentiment analysis at cluster scale.")
    parser.add_argument("--version", action="version", version=f"albsent {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings only, no progress bars")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:  # each albsent.commands.<name> defines add_parser(subparsers) and run(args) -> int
        importlib.import_module(f"albsent.commands.{name}").add_parser(sub)
    for sp in sub.choices.values():  # -v/-q also after the subcommand
        sp.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging")
        sp.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="warnings only, no progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        return int(args.func(args) or 0)
    except AlbsentError as exc:
        print(f"albsent {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
