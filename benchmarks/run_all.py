"""Run every benchmark of this folder (``make bench``): each prints its own table."""

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).parent

if __name__ == "__main__":
    quick = "--quick" in sys.argv
    for script in sorted(HERE.glob("bench_*.py")):
        print(f"\n## {script.stem}\n", flush=True)
        sys.argv = [str(script)] + (["--quick"] if quick else [])
        try:
            runpy.run_path(str(script), run_name="__main__")
        except SystemExit as e:
            if e.code not in (0, None):
                raise
