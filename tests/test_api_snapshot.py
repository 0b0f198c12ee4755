"""The public API, name by name and signature by signature, against a stored snapshot.

Any change to the surface (a name added, removed or renamed, an argument renamed, reordered, made
keyword-only or given another default) changes ``tests/api_snapshot.txt`` and so shows in review.
After a deliberate change, regenerate the file and commit it with the change::

    .venv/bin/python tests/test_api_snapshot.py --update

The surface is every module listed in ``rivervalley.__all__`` (and the package itself), the
explorer and the figure registry: each name of the module's ``__all__``; for a function its
signature; for a class its constructor (or the factory that builds it) and its public methods and
properties. Defaults are rendered with ``repr`` and memory addresses are removed, so the file is
the same on every machine.
"""

from __future__ import annotations

import difflib
import inspect
import re
import sys
import types
from pathlib import Path

import rivervalley as rv
import rivervalley.explorer
import rivervalley.figures.registry

SNAPSHOT = Path(__file__).with_name("api_snapshot.txt")
_ADDRESS = re.compile(r" at 0x[0-9a-f]+")


def _signature(obj) -> str:
    try:
        sig = str(inspect.signature(obj))
    except (TypeError, ValueError):
        return "(...)"
    return _ADDRESS.sub("", sig)


def _class_lines(qual: str, cls: type) -> list[str]:
    factory = getattr(cls, "__factory__", None)
    if factory is not None:
        head = f"class {qual}: built by {factory}"
    elif issubclass(cls, tuple) and hasattr(cls, "_fields"):
        head = f"class {qual}(NamedTuple): fields {', '.join(cls._fields)}"
    elif issubclass(cls, BaseException):
        head = f"class {qual}({cls.__bases__[0].__name__})"
    else:
        head = f"class {qual}{_signature(cls)}"
    lines = [head]
    for name, member in sorted(vars(cls).items()):
        if name.startswith("_") or (issubclass(cls, tuple) and name in getattr(cls, "_fields", ())):
            continue
        if isinstance(member, property):
            lines.append(f"  {qual}.{name}: property")
        elif isinstance(member, (staticmethod, classmethod)):
            lines.append(f"  {qual}.{name}{_signature(member.__func__)}")
        elif inspect.isfunction(member):
            lines.append(f"  {qual}.{name}{_signature(member)}")
    return lines


def surface() -> list[str]:
    """One line per public name (and per public method of a public class), sorted by module."""
    modules = [("rivervalley", rv)] + [(f"rivervalley.{n}", getattr(rv, n)) for n in rv.__all__
                                       if isinstance(getattr(rv, n), types.ModuleType)]
    modules += [("rivervalley.explorer", rivervalley.explorer),
                ("rivervalley.figures.registry", rivervalley.figures.registry)]
    lines: list[str] = []
    for mod_name, mod in modules:
        names = list(getattr(mod, "__all__", []))
        lines.append(f"module {mod_name}")
        for name in sorted(names):
            obj = getattr(mod, name)
            qual = f"{mod_name}.{name}"
            if isinstance(obj, types.ModuleType):
                lines.append(f"  {qual}: module")
            elif inspect.isclass(obj):
                lines.extend("  " + line for line in _class_lines(qual, obj))
            elif callable(obj):
                lines.append(f"  def {qual}{_signature(obj)}")
            else:
                lines.append(f"  {qual}: {type(obj).__name__}")
    return lines


def test_public_api_matches_the_snapshot():
    now = surface()
    stored = SNAPSHOT.read_text(encoding="utf-8").splitlines() if SNAPSHOT.exists() else []
    if now != stored:
        diff = "\n".join(difflib.unified_diff(stored, now, "api_snapshot.txt", "now", lineterm="",
                                              n=1))
        raise AssertionError("the public API changed; if deliberate, regenerate the snapshot "
                             "with `.venv/bin/python tests/test_api_snapshot.py --update` and "
                             f"commit it:\n{diff}")


def test_key_is_keyword_only_wherever_randomness_is_drawn():
    """Every public function or constructor with a ``key`` argument takes it by keyword only.

    Exempt: the protocol methods the engine calls positionally (``sample_loss(params, key)``,
    ``noise.sample(key, step, problem, params)``), and the low-level key helpers of
    ``rivervalley.noise`` (``normal``, ``hash_bits``) whose key is already keyword-only."""
    positional = [line for line in surface() if re.search(r"[(,] ?key(: [^,)]*)?[,)]", line)
                  and "*" not in line.split("key")[0]
                  and not re.search(r"\.(sample_loss|sample)\(", line)]
    assert positional == [], "key must be keyword-only:\n" + "\n".join(positional)


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit("usage: python tests/test_api_snapshot.py --update")
    SNAPSHOT.write_text("\n".join(surface()) + "\n", encoding="utf-8")
    print(f"wrote {SNAPSHOT} ({len(surface())} lines)")
