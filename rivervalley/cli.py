"""Command line: `rivervalley figures ...` and `rivervalley explore ...`.

Bad input prints one line on stderr and exits with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys


class UsageError(ValueError):
    """An error the CLI reports in one line with exit status 2."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rivervalley", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    f = sub.add_parser("figures", help="regenerate the registered figures")
    f.add_argument("--only", action="append", default=None, metavar="NAME",
                   help="only this figure (repeatable, or comma separated)")
    f.add_argument("--fast", action="store_true", help="small configurations (seconds, for tests)")
    f.add_argument("--list", action="store_true", help="list the registered figures and exit")
    f.add_argument("--out", default="figures", help="output folder (default: figures)")
    f.add_argument("--no-cache", action="store_true", help="recompute even when cached")

    e = sub.add_parser("explore", help="interactive river-valley explorer")
    e.add_argument("--snapshot", default=None, metavar="FILE",
                   help="write a PNG of the explorer instead of opening a window")
    e.add_argument("--num-steps", type=int, default=4000, help="steps per run (default 4000)")
    return p


def _figures(args: argparse.Namespace) -> int:
    from rivervalley.figures import registry, runner

    if args.list:
        for name, mod in registry.FIGURES.items():
            print(f"{name:22s} {mod.CAPTION.splitlines()[0]}")
        return 0
    names = None
    if args.only:
        names = [n for item in args.only for n in item.split(",") if n]
    return runner.build(names, fast=args.fast, out=args.out, use_cache=not args.no_cache)


def _explore(args: argparse.Namespace) -> int:
    from rivervalley import explorer

    return explorer.main(snapshot=args.snapshot, num_steps=args.num_steps)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "figures":
            return _figures(args)
        return _explore(args)
    except (UsageError, ValueError) as err:
        print(f"rivervalley {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
