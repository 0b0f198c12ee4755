"""The command line's error contract: a usage error (bad arguments) is one line on stderr and
exit 2; an internal error (inside a figure) keeps its traceback and exits 1.

Figures here are cheap fakes (``test_figure_runner.fake_figure``); no real figure is computed.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
from test_figure_runner import child_command, child_env, fake_figure  # noqa: E402

from rivervalley import cli  # noqa: E402
from rivervalley.figures import runner  # noqa: E402


def one_line_error(capsys, *needles: str) -> str:
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert "Traceback" not in captured.err
    return lines[0]


def blocked_folder(tmp_path: Path, kind: str) -> Path:
    """A folder path no process can create or write into.

    ``under_file``: a path below a regular file (fails for root too). ``read_only``: a folder
    chmod'ed read-only; root ignores the mode, so that case skips when the mode does not stop a
    write here.
    """
    if kind == "under_file":
        (tmp_path / "a_file").write_text("")
        return tmp_path / "a_file" / "sub"
    ro = tmp_path / "read_only"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        (ro / "probe").write_text("")
    except PermissionError:
        return ro / "sub"
    (ro / "probe").unlink()
    pytest.skip("running as root: a read-only mode does not stop writes (under_file covers it)")


@pytest.fixture(params=["under_file", "read_only"])
def blocked(request, tmp_path):
    return blocked_folder(tmp_path, request.param)


# -- usage errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("only", ["", ",", "fake_a,", "fake_a,,fake_b", " "])
def test_empty_figure_name_is_a_usage_error(fakes, tmp_path, capsys, only):
    fakes("fake_a")
    fakes("fake_b")
    out = tmp_path / "out"
    assert cli.main(["figures", "--fast", "--only", only, "--out", str(out)]) == 2
    one_line_error(capsys, "empty figure name", "known figures: fake_a, fake_b")
    assert not out.exists()  # nothing rendered, nothing created


def test_only_accepts_commas_spaces_and_repeats(fakes, tmp_path, capsys):
    for name in ("fake_a", "fake_b", "fake_c"):
        fakes(name)
    out = tmp_path / "out"
    assert cli.main(["figures", "--fast", "--only", "fake_c, fake_a", "--only", "fake_a",
                     "--out", str(out)]) == 0
    assert [ln.split()[0] for ln in capsys.readouterr().out.splitlines()] == ["fake_c", "fake_a"]
    assert sorted(p.name for p in out.glob("*.png")) == ["fake_a.png", "fake_c.png"]


def test_unknown_figure_is_checked_before_anything_is_created(fakes, tmp_path, capsys):
    fakes("fake_a")
    out = tmp_path / "out"
    assert cli.main(["figures", "--only", "fake_a,nosuch", "--out", str(out)]) == 2
    one_line_error(capsys, "unknown figure 'nosuch'", "known figures: fake_a")
    assert not out.exists()


def test_unwritable_out_is_a_usage_error(fakes, blocked, capsys):
    fakes("fake_a")
    assert cli.main(["figures", "--fast", "--out", str(blocked)]) == 2
    one_line_error(capsys, f"--out {str(blocked)!r} is not writable")


def test_out_that_is_a_file_is_a_usage_error(fakes, tmp_path, capsys):
    fakes("fake_a")
    (tmp_path / "f").write_text("")
    assert cli.main(["figures", "--fast", "--out", str(tmp_path / "f")]) == 2
    one_line_error(capsys, "is a file, not a folder")


@pytest.mark.parametrize("kind", ["under_file", "read_only"])
def test_unwritable_cache_under_the_working_directory(fakes, tmp_path, monkeypatch, capsys,
                                                      kind):
    """The default cache is relative to the working directory: run from a read-only folder, or
    (for root, whom the mode does not stop) from one where ``.cache`` is a regular file."""
    fakes("fake_a")
    if kind == "under_file":
        cwd = tmp_path / "cwd"
        cwd.mkdir()
        (cwd / ".cache").write_text("")
    else:
        cwd = blocked_folder(tmp_path, "read_only").parent
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(runner, "CACHE_DIR", Path(".cache/figures"))
    monkeypatch.delenv("RIVERVALLEY_CACHE")
    out = tmp_path / "out"
    assert cli.main(["figures", "--fast", "--out", str(out)]) == 2
    one_line_error(capsys, "the figure cache folder", "not writable",
                   "under the working directory", "RIVERVALLEY_CACHE", "--no-cache")
    # without the cache the same run works
    assert cli.main(["figures", "--fast", "--no-cache", "--out", str(out)]) == 0
    assert (out / "fake_a.png").exists()


def test_unwritable_cache_from_the_environment(fakes, tmp_path, blocked, monkeypatch, capsys):
    fakes("fake_a")
    monkeypatch.setattr(runner, "CACHE_DIR", blocked)
    monkeypatch.setenv("RIVERVALLEY_CACHE", str(blocked))
    assert cli.main(["figures", "--fast", "--out", str(tmp_path / "out")]) == 2
    one_line_error(capsys, "the figure cache folder", "set by RIVERVALLEY_CACHE")


def test_argparse_errors_are_one_line(capsys):
    assert cli.main(["figures", "--bogus"]) == 2
    one_line_error(capsys, "unrecognized arguments: --bogus")
    assert cli.main(["nosuchcommand"]) == 2
    one_line_error(capsys, "invalid choice", "figures", "explore")
    assert cli.main(["explore", "--num-steps", "many"]) == 2
    one_line_error(capsys, "rivervalley explore: error:", "invalid int value")
    assert cli.main([]) == 2
    one_line_error(capsys, "required")


@pytest.mark.parametrize("snapshot,message", [
    ("DIR", "is a folder"),
    ("", "is a folder"),
    ("explorer", "must end in .png"),
    ("explorer.pdf", "must end in .png"),
])
def test_bad_snapshot_path_is_a_usage_error(tmp_path, monkeypatch, capsys, snapshot, message):
    (tmp_path / "DIR").mkdir()
    monkeypatch.chdir(tmp_path)
    assert cli.main(["explore", "--snapshot", snapshot, "--num-steps", "10"]) == 2
    one_line_error(capsys, "rivervalley explore: error: --snapshot", message)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["DIR"]  # nothing written


def test_unwritable_snapshot_folder_is_a_usage_error(blocked, capsys):
    assert cli.main(["explore", "--snapshot", str(blocked / "x.png"), "--num-steps", "10"]) == 2
    one_line_error(capsys, "--snapshot", "its folder", "is not writable")


def test_too_few_explorer_steps_is_a_usage_error(capsys):
    assert cli.main(["explore", "--snapshot", "x.png", "--num-steps", "5"]) == 2
    one_line_error(capsys, "--num-steps 5", "at least 10")


def test_snapshot_writes_and_prints_the_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["explore", "--snapshot", "shots/explorer.PNG", "--num-steps", "400"]) == 0
    assert capsys.readouterr().out == "wrote shots/explorer.PNG\n"
    assert (tmp_path / "shots" / "explorer.PNG").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (tmp_path / "shots").iterdir()) == ["explorer.PNG"]


# -- internal errors ------------------------------------------------------------------------------

@pytest.mark.parametrize("stage", ["compute", "plot", "check"])
def test_value_error_inside_a_figure_is_internal(fakes, tmp_path, capsys, stage):
    fakes("fake_a")
    fakes("fake_b", **{stage: "raise ValueError('a bug inside the figure')"})
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="a bug inside the figure"):
        cli.main(["figures", "--fast", "--only", "fake_a,fake_b", "--out", str(out)])
    assert "error" not in capsys.readouterr().err
    # the figure finished before the failure is written and recorded
    assert (out / "fake_a.png").exists() and not (out / "fake_b.png").exists()


def test_failed_check_is_status_1_without_traceback(fakes, tmp_path, capsys):
    fakes("fake_a", check="assert False, 'the claim does not hold'")
    assert cli.main(["figures", "--fast", "--out", str(tmp_path / "out")]) == 1
    captured = capsys.readouterr()
    assert "CHECK FAILED: the claim does not hold" in captured.out
    assert captured.err == ""


def test_ctrl_c_is_one_line_and_status_130(fakes, tmp_path, capsys):
    fakes("fake_a", compute="raise KeyboardInterrupt")
    assert cli.main(["figures", "--fast", "--out", str(tmp_path / "out")]) == 130
    one_line_error(capsys, "rivervalley figures: interrupted")


def test_console_process_internal_error_has_traceback_and_status_1(tmp_path):
    mod = fake_figure(tmp_path, "fake_a", compute="raise ValueError('a bug inside the figure')")
    p = subprocess.run(child_command(tmp_path, [mod], ["figures", "--fast", "--only", "fake_a",
                                                       "--out", str(tmp_path / "out")]),
                       env=child_env(tmp_path / "cache"), capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 1
    assert "Traceback" in p.stderr and "ValueError: a bug inside the figure" in p.stderr
    assert "error: a bug" not in p.stderr


def test_console_process_usage_error_is_one_line_and_status_2(tmp_path):
    mod = fake_figure(tmp_path, "fake_a")
    (tmp_path / "f").write_text("")
    p = subprocess.run(child_command(tmp_path, [mod], ["figures", "--only", "fake_a", "--out",
                                                       str(tmp_path / "f" / "sub")]),
                       env=child_env(tmp_path / "cache"), capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 2
    assert len(p.stderr.splitlines()) == 1 and "is not writable" in p.stderr, p.stderr


# -- sub-commands ---------------------------------------------------------------------------------

def test_a_registered_sub_command_shares_the_error_contract(monkeypatch, capsys):
    monkeypatch.setattr(cli, "COMMANDS", dict(cli.COMMANDS))

    def arguments(p):
        p.add_argument("--n", type=int, required=True)

    def run(args):
        if args.n < 0:
            raise cli.UsageError(f"--n {args.n} is negative")
        print("n", args.n)
        return 0

    cli.register("demo", "a demo", arguments, run)
    with pytest.raises(ValueError, match="already registered"):
        cli.register("demo", "again", arguments, run)
    assert cli.main(["demo", "--n", "3"]) == 0
    assert capsys.readouterr().out == "n 3\n"
    assert cli.main(["demo", "--n", "-1"]) == 2
    one_line_error(capsys, "rivervalley demo: error: --n -1 is negative")
    assert cli.main(["demo"]) == 2
    one_line_error(capsys, "rivervalley demo: error:", "--n")
