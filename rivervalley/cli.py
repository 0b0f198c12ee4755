"""Command line: `rivervalley figures ...`, `rivervalley explore ...` and `rivervalley laws ...`.

Exit status: 0 done; 1 a figure's quantitative check failed, or an internal error (a bug or a
failure inside the computation: its traceback is printed); 2 a usage error (bad arguments: an
unknown figure, an empty name, an output path that cannot be written), reported in ONE line on
stderr, never a traceback; 130 interrupted (Ctrl-C).

Only :class:`UsageError` is a usage error, and only argument validation raises it: a
``ValueError`` raised inside a figure's compute / plot / check is an internal error.

Adding a sub-command: write a function that adds its arguments to an ``argparse`` parser and a
function that runs it (``Namespace -> int`` exit status, raising :class:`UsageError` for bad
arguments), and :func:`register` them at the end of this module. Import the implementing module
inside the two functions (not at the top of this file), so that it may itself import
:class:`UsageError` and the checks :func:`writable_folder` / :func:`png_path` from here::

    def _laws_arguments(p):
        from rivervalley import laws_cli
        laws_cli.add_arguments(p)

    def _laws(args):
        from rivervalley import laws_cli
        return laws_cli.run(args)

    register("laws", "fit loss-curve laws to a training log", _laws_arguments, _laws)
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path


class UsageError(ValueError):
    """Bad command-line arguments: the CLI reports them in one line and exits with status 2.

    ``prog`` names the command in the message (default ``rivervalley COMMAND``).
    """

    def __init__(self, message: str, *, prog: str | None = None):
        super().__init__(message)
        self.prog = prog


@dataclasses.dataclass(frozen=True)
class Command:
    """A sub-command: ``add_arguments(parser)`` declares its arguments, ``run(args)`` runs it."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


#: Registered sub-commands, in ``--help`` order.
COMMANDS: dict[str, Command] = {}


def register(name: str, help: str, add_arguments: Callable[[argparse.ArgumentParser], None],
             run: Callable[[argparse.Namespace], int]) -> None:
    """Add the sub-command ``rivervalley NAME`` (see the module docstring)."""
    if name in COMMANDS:
        raise ValueError(f"sub-command {name!r} is already registered")
    COMMANDS[name] = Command(name, help, add_arguments, run)


# -- argument checks shared by the sub-commands -----------------------------------------------------

def writable_folder(path: str | os.PathLike, what: str, hint: str = "") -> Path:
    """``path`` as a folder this process can write into, created when missing; else UsageError.

    The check creates the folder and a probe file in it (removed at once), so it also catches
    what permission bits do not show: a read-only file system, a path under a regular file, and
    a read-only folder when running as root. ``what`` names the argument in the message,
    ``hint`` is appended to it (how to fix it).
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UsageError(f"{what} {str(p)!r} is a file, not a folder{hint}")
    try:
        p.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=p, prefix=".rivervalley-write-check-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise UsageError(f"{what} {str(p)!r} is not writable: {err.strerror or err}{hint}") from None
    return p


def png_path(path: str | os.PathLike, what: str) -> Path:
    """``path`` as a PNG file that can be written (its folder is created when missing).

    A folder, or a name without the ``.png`` suffix, is a UsageError: the file written is always
    exactly ``path``.
    """
    p = Path(path)
    if str(path) == "" or p.is_dir():
        raise UsageError(f"{what} {str(path)!r} is a folder; give a file name ending in .png")
    if p.suffix.lower() != ".png":
        raise UsageError(f"{what} {str(path)!r} must end in .png (a PNG file is written)")
    writable_folder(p.parent, f"{what} {str(path)!r}: its folder")
    return p


# -- figures ---------------------------------------------------------------------------------------

def _figures_arguments(f: argparse.ArgumentParser) -> None:
    f.add_argument("--only", action="append", default=None, metavar="NAME",
                   help="only this figure (repeatable, or comma separated)")
    f.add_argument("--fast", action="store_true", help="small configurations (seconds, for tests)")
    f.add_argument("--list", action="store_true", help="list the registered figures and exit")
    f.add_argument("--out", default="figures", help="output folder (default: figures)")
    f.add_argument("--no-cache", action="store_true",
                   help="recompute even when cached (and write no cache); the cache folder is "
                        "$RIVERVALLEY_CACHE, default .cache/figures under the working directory")


def figure_names(only: list[str] | None) -> list[str] | None:
    """The figure names of ``--only`` (None: every figure); an empty or unknown name is a
    UsageError naming the known figures."""
    from rivervalley.figures import registry

    if only is None:
        return None
    known = ", ".join(registry.FIGURES)
    names: list[str] = []
    for item in only:
        parts = [n.strip() for n in item.split(",")]
        if not all(parts):
            raise UsageError(f"--only {item!r} contains an empty figure name; known figures: {known}")
        for n in parts:
            if n not in registry.FIGURES:
                raise UsageError(f"unknown figure {n!r}; known figures: {known}")
            if n not in names:
                names.append(n)
    return names


def _check_cache_folder(folder: Path) -> None:
    """The compute cache must be writable (it is relative to the working directory by default)."""
    if os.environ.get("RIVERVALLEY_CACHE"):
        hint = " (set by RIVERVALLEY_CACHE; point it to a writable folder, or pass --no-cache)"
    else:
        hint = (" (the default .cache/figures under the working directory; set RIVERVALLEY_CACHE "
                "to a writable folder, or pass --no-cache)")
    writable_folder(folder.absolute(), "the figure cache folder", hint)


def _figures(args: argparse.Namespace) -> int:
    from rivervalley.figures import registry, runner

    if args.list:
        for name, figure in registry.FIGURES.items():
            print(f"{name:22s} {figure.title}")
        return 0
    names = figure_names(args.only)
    out = writable_folder(args.out, "--out")
    if not args.no_cache:
        _check_cache_folder(runner.CACHE_DIR)
    return runner.build(names, fast=args.fast, out=out, use_cache=not args.no_cache)


# -- explore ---------------------------------------------------------------------------------------

def _control_value(name: str) -> Callable[[str], object]:
    """The argparse type of the control ``name``: its value, checked as the window checks it
    (a bad one is argparse's one-line error, naming the flag and the control's range)."""
    from rivervalley import explorer

    spec = explorer.SLIDERS.get(name)

    def parse(text: str):
        try:
            value = text if spec is None else int(text) if spec.step else float(text)
        except ValueError:
            kind = "an integer" if spec.step else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind} (the {name} slider takes "
                                             f"{kind} in [{spec.lo:g}, {spec.hi:g}])") from None
        try:
            return explorer.check_setting(name, value)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    return parse


def _explore_arguments(e: argparse.ArgumentParser) -> None:
    from rivervalley import explorer

    e.add_argument("--snapshot", default=None, metavar="FILE.png",
                   help="write a PNG of the explorer to FILE.png instead of opening a window")
    e.add_argument("--num-steps", type=int, default=explorer.DEFAULT_STEPS,
                   help=f"steps per run (default {explorer.DEFAULT_STEPS}, at least "
                        f"{explorer.MIN_STEPS})")
    defaults = explorer.Settings()
    # every control of the window, under its own name and with its own range
    for name, spec in explorer.SLIDERS.items():
        kind = "an integer" if spec.step else "a number"
        e.add_argument(f"--{name.replace('_', '-')}", type=_control_value(name), default=None,
                       metavar="N" if spec.step else "X",
                       help=f"slider {name}: {kind} in [{spec.lo:g}, {spec.hi:g}] (default "
                            f"{getattr(defaults, name):g})")
    for name, radio in explorer.RADIOS.items():
        e.add_argument(f"--{name.replace('_', '-')}", type=_control_value(name), default=None,
                       metavar="NAME", help=f"{radio.title}: one of {', '.join(radio.options)} "
                                            f"(default {getattr(defaults, name)})")


def _explore(args: argparse.Namespace) -> int:
    from rivervalley import explorer

    if args.num_steps < explorer.MIN_STEPS:
        raise UsageError(f"--num-steps {args.num_steps} is too small: at least "
                         f"{explorer.MIN_STEPS}")
    snapshot = None if args.snapshot is None else png_path(args.snapshot, "--snapshot")
    values = {name: getattr(args, name) for name in (*explorer.SLIDERS, *explorer.RADIOS)
              if getattr(args, name) is not None}
    return explorer.main(snapshot=snapshot, num_steps=args.num_steps,
                         settings=explorer.Settings(**values))


# -- the entry point -------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    """argparse's own errors (unknown option, missing value) as a UsageError: one line, exit 2."""

    def error(self, message: str):
        raise UsageError(f"{message} (see {self.prog} --help)", prog=self.prog)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="rivervalley", description="\n\n".join(__doc__.split("\n\n")[:2]),
                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    for cmd in COMMANDS.values():
        cmd.add_arguments(sub.add_parser(cmd.name, help=cmd.help))
    return p


def main(argv: list[str] | None = None) -> int:
    """Run ``rivervalley ARGV``; returns the exit status (see the module docstring).

    Only a :class:`UsageError` becomes one line on stderr and status 2; any other exception
    propagates with its traceback (the interpreter exits with status 1).
    """
    command = "rivervalley"
    try:
        args = _parser().parse_args(argv)
        command = f"rivervalley {args.command}"
        return COMMANDS[args.command].run(args)
    except UsageError as err:
        print(f"{err.prog or command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130


def _laws_arguments(p: argparse.ArgumentParser) -> None:
    from rivervalley import laws_cli

    laws_cli.add_arguments(p)


def _laws(args: argparse.Namespace) -> int:
    from rivervalley import laws_cli

    return laws_cli.run(args)


register("figures", "regenerate the registered figures", _figures_arguments, _figures)
register("explore", "interactive river-valley explorer", _explore_arguments, _explore)
register("laws", "fit loss-curve laws to training logs; predict and advise schedules",
         _laws_arguments, _laws)


if __name__ == "__main__":
    # `python -m rivervalley.cli`: run the imported module's main, so that this file's classes
    # (UsageError) are the ones the sub-commands' modules import
    from rivervalley.cli import main as _main

    sys.exit(_main())
