"""Every tutorial notebook executes top to bottom in fast mode (RIVERVALLEY_FAST=1, Agg)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("nbclient", reason="nbclient is needed to execute the notebooks")
pytest.importorskip("ipykernel", reason="ipykernel provides the python3 kernel")

from rivervalley import notebooks_runner  # noqa: E402

FOLDER = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(FOLDER.glob("*.ipynb"))
EXPECTED = ["01_quickstart", "02_schedules_and_plans", "03_theory_vs_simulation", "04_bigram",
            "05_exploring", "06_your_own_model", "07_your_own_log"]


def test_the_notebooks_exist_stripped_and_open_with_markdown():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED
    for p in NOTEBOOKS:
        nb = json.loads(p.read_text())
        first = nb["cells"][0]
        assert first["cell_type"] == "markdown" and "What you will learn" in "".join(
            first["source"]), p.name
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert cell.get("outputs") == [] and cell.get("execution_count") is None, \
                    f"{p.name}: outputs are not stripped"
        assert any("RIVERVALLEY_FAST" in "".join(c["source"]) for c in nb["cells"]), p.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path):
    seconds = notebooks_runner.run_notebook(path, fast=True, timeout=300)
    assert seconds > 0


def test_runner_fails_on_a_broken_notebook(tmp_path, capsys):
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    nb = new_notebook(cells=[new_markdown_cell("# broken"), new_code_cell("1 / 0")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, tmp_path / "bad.ipynb")
    assert notebooks_runner.main([str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "FAILED" in out and "bad.ipynb" in out
    assert "ZeroDivisionError" in out
