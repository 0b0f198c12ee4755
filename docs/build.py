"""Build the documentation strictly: ``python docs/build.py [--out site]`` (what ``make docs`` runs).

1. ``sphinx-build -W --keep-going -E -a -b html docs <out>``: every warning is an error (a broken
   cross-reference, an undocumented public name, a failing notebook cell, a reST error in a
   docstring), all reported before it fails; ``-E -a``: a fresh read every time, so a warning is
   never hidden by a cached page. The doctrees go to a temporary folder, not into the site.
2. Every local link of the built HTML (``href`` and ``src``, with its ``#fragment``) must point at
   a file of the site and an id in it.

Prints the seconds each part took; exits 1 when either fails (the links are checked after a
failed build too, so one run reports every problem).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("id", "name") if tag in ("a", "span", "div", "section", "dt", "p") else ("id",):
            if a.get(key):
                self.ids.add(a[key])
        for key in ("href", "src"):
            if a.get(key) and tag in ("a", "img", "link", "script", "source", "iframe"):
                self.links.append(a[key])


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8", errors="replace"))
    return page


def check_links(site: Path) -> list[str]:
    """Every broken local link of the built site, as ``page: link (why)``."""
    pages = {p: _parse(p) for p in sorted(site.rglob("*.html"))}
    broken = []
    for page, parsed in pages.items():
        for link in parsed.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith(("mailto:", "data:", "javascript:")):
                continue  # external: not checked (CI may have no network)
            target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            rel = page.relative_to(site)
            if not target.exists():
                broken.append(f"{rel}: {link} (no such file)")
                continue
            frag = unquote(parts.fragment)
            if frag and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parse(target).ids
                if frag not in ids:
                    broken.append(f"{rel}: {link} (no id {frag!r} in {target.relative_to(site)})")
    return broken


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python docs/build.py", description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "site"), help="output folder (default: site/)")
    ap.add_argument("-j", "--jobs", default="1",
                    help="Sphinx processes for reading (default 1; 'auto': one per core)")
    args = ap.parse_args(argv)
    out = Path(args.out).resolve()
    from sphinx.cmd.build import build_main

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rv-doctrees-") as doctrees:
        status = build_main(["-W", "--keep-going", "-E", "-a", "-q", "-j", args.jobs, "-b", "html",
                             "-d", doctrees, str(DOCS), str(out)])
    t1 = time.perf_counter()
    print(f"docs: sphinx-build {'ok' if status == 0 else 'FAILED'} in {t1 - t0:.1f} s", flush=True)
    if not (out / "index.html").exists():
        return 1
    broken = check_links(out)  # also after a failed build (--keep-going wrote it): report all
    for b in broken:
        print(f"docs: broken link: {b}", file=sys.stderr)
    print(f"docs: link check {'ok' if not broken else f'{len(broken)} broken'} in "
          f"{time.perf_counter() - t1:.1f} s; site in {out}", flush=True)
    return 1 if broken or status != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
