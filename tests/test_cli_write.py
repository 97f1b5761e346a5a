"""The command line's subcommands (issue #12): ls, diff, rename, strip, promote-ema, average, convert;
a new one is one module in ``ckptwidgets/cli/`` plus its line in ``cli.SUBCOMMANDS`` (issue #24)."""
from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from ckptwidgets import cli as cli_package
from ckptwidgets.__main__ import main

from conftest import save_adam_checkpoint, save_graph_checkpoint

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "ckptwidgets", *map(str, args)], capture_output=True, text=True,
                          env=ENV, timeout=300, cwd=cwd)


def tf_values(prefix) -> dict:
    reader = tf.train.load_checkpoint(str(prefix))
    return {key: reader.get_tensor(key) for key in reader.get_variable_to_shape_map()}


@pytest.fixture
def trained(tmp_path):
    return save_adam_checkpoint(tmp_path / "trained.ckpt", ema_decay=0.5)


def test_every_subcommand_has_help():
    for command in cli_package.SUBCOMMANDS:
        run = cli(command, "--help")
        assert run.returncode == 0 and run.stdout.startswith(f"usage: ckptwidgets {command}"), (command, run.stderr)
    top = cli("--help")
    assert top.returncode == 0 and all(command in top.stdout for command in cli_package.SUBCOMMANDS)


def test_every_help_ends_with_the_exit_status(capsys):
    for command in (*cli_package.SUBCOMMANDS, None):
        with pytest.raises(SystemExit):
            main([command, "--help"] if command else ["--help"])
        words = " ".join(capsys.readouterr().out.split())
        assert words.endswith("Exit status: 0 done, 2 error."), (command, words[-80:])
        assert words.count("Exit status") == 1, command


def test_every_subcommand_module_is_registered():
    modules = {info.name for info in pkgutil.iter_modules(cli_package.__path__) if not info.name.startswith("_")}
    assert modules == set(cli_package.SUBCOMMANDS.values())
    for name in cli_package.SUBCOMMANDS:
        module = cli_package.subcommand(name)
        assert isinstance(module.HELP, str) and "\n" not in module.HELP and callable(module.add_arguments), name
        assert callable(module.run), name


COUNT_MODULE = '''
"""``count PATH``: how many entries a checkpoint holds (a subcommand the tests add)."""
HELP = "print how many entries a checkpoint holds"


def add_arguments(parser):
    parser.add_argument("path", metavar="PATH")


def run(args):
    from ckptwidgets import open_checkpoint

    print(len(open_checkpoint(args.path).entries))
    return 0
'''


@pytest.fixture
def count_subcommand(tmp_path, monkeypatch):
    """A new subcommand as a contributor adds one: a module in the cli package (here a folder
    added to its path) and one line in ``cli.SUBCOMMANDS``; nothing else."""
    folder = tmp_path / "more_subcommands"
    folder.mkdir()
    (folder / "count.py").write_text(COUNT_MODULE)
    monkeypatch.setattr(cli_package, "__path__", [*cli_package.__path__, str(folder)])
    monkeypatch.setitem(cli_package.SUBCOMMANDS, "count", "count")
    importlib.invalidate_caches()
    yield
    sys.modules.pop("ckptwidgets.cli.count", None)
    vars(cli_package).pop("count", None)


def test_a_new_subcommand_is_one_module_and_one_registry_line(count_subcommand, base_ckpt, tmp_path, capsys):
    assert main(["count", base_ckpt]) == 0
    assert capsys.readouterr() == ("2\n", "")
    with pytest.raises(SystemExit) as info:
        main(["count", "--help"])
    assert info.value.code == 0 and capsys.readouterr().out.startswith("usage: ckptwidgets count [-h] PATH")
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "    count      print how many entries a checkpoint holds\n" in capsys.readouterr().out
    assert main(["cuont"]) == 2
    assert capsys.readouterr().err == "error: unknown command 'cuont' (did you mean 'count'?)\n"
    assert main(["frobnicate"]) == 2
    assert capsys.readouterr().err.endswith(", average, convert, export, count)\n")
    # A library error its run raises is the one error line, exit 2.
    assert main(["count", str(tmp_path / "missing.ckpt")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: No checkpoint at") and err.count("\n") == 1


def test_ls_and_the_bare_path_list_the_same(base_ckpt):
    assert cli("ls", base_ckpt).stdout == cli(base_ckpt).stdout != ""


def test_rename_dry_run_writes_nothing_then_writes(tmp_path, trained):
    out = tmp_path / "renamed.ckpt"
    dry = cli("rename", trained, out, "--rule", "net/=serving/", "--rule", "global_step -> step", "--dry-run")
    assert dry.returncode == 0 and "serving/w" in dry.stdout and "(dry run: nothing written)" in dry.stdout
    assert not list(tmp_path.glob("renamed.ckpt*"))
    run = cli("rename", trained, out, "--rule", "net/=serving/", "--rule", "global_step -> step")
    assert run.returncode == 0 and run.stdout.startswith("Wrote ") and str(out) in run.stdout
    values = tf_values(out)
    assert "serving/w" in values and "step" in values and "net/w" not in values


def test_strip_promote_ema_and_average(tmp_path, trained):
    assert cli("strip", trained, tmp_path / "s.ckpt").returncode == 0
    assert sorted(tf_values(tmp_path / "s.ckpt")) == ["global_step", "net/w", "net/w/ExponentialMovingAverage"]
    assert cli("promote-ema", trained, tmp_path / "p.ckpt", "--strip", "--state-file").returncode == 0
    original = tf_values(trained)
    np.testing.assert_array_equal(tf_values(tmp_path / "p.ckpt")["net/w"], original["net/w/ExponentialMovingAverage"])
    assert tf.train.latest_checkpoint(str(tmp_path)) == str(tmp_path / "p.ckpt")
    a = save_graph_checkpoint(tmp_path / "a.ckpt", {"w": [1.0, 2.0]})
    b = save_graph_checkpoint(tmp_path / "b.ckpt", {"w": [3.0, 5.0]})
    assert cli("average", tmp_path / "avg.ckpt", a, b).returncode == 0
    assert tf_values(tmp_path / "avg.ckpt")["w"].tolist() == [2.0, 3.5]


def test_diff(tmp_path):
    a = save_graph_checkpoint(tmp_path / "a.ckpt", {"w": [1.0, 2.0], "gone": [1.0]})
    b = save_graph_checkpoint(tmp_path / "b.ckpt", {"w": [1.0, 2.5], "new": [7.0, 8.0, 9.0]})
    run = cli("diff", a, b)
    assert run.returncode == 0, run.stderr
    assert "w" in run.stdout and "gone" in run.stdout and "new" in run.stdout


def tf1_and_a_model_module(tmp_path) -> str:
    """A TF1 checkpoint under ``old/`` and ``mymodels.py`` whose ``build()`` is a Keras model under ``net/``."""
    source = save_graph_checkpoint(tmp_path / "tf1.ckpt", {"old/dense/kernel": np.ones((2, 3), np.float32),
                                                           "old/dense/bias": [1.0, 2.0, 3.0]})
    (tmp_path / "mymodels.py").write_text(textwrap.dedent(
        """
        import keras

        def build():
            return keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, name="dense")], name="net")
        """
    ))
    return source


def test_convert_with_a_model_function(tmp_path):
    source = tf1_and_a_model_module(tmp_path)
    run = cli("convert", source, tmp_path / "tf2" / "ckpt", "--model", "mymodels:build", "--rule", "old/=net/",
              cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "object-based" in run.stdout
    values = tf_values(tmp_path / "tf2" / "ckpt")
    kernels = [key for key in values if key.startswith("model/") and "kernel" in key]
    assert "_CHECKPOINTABLE_OBJECT_GRAPH" in values and len(kernels) == 1
    np.testing.assert_array_equal(values[kernels[0]], np.ones((2, 3), np.float32))


def test_convert_dry_run_prints_the_plan_and_writes_nothing(tmp_path):
    source = tf1_and_a_model_module(tmp_path)
    before = sorted(os.listdir(tmp_path))
    run = cli("convert", source, tmp_path / "tf2" / "ckpt", "--model", "mymodels:build", "--rule", "old/=net/",
              "--dry-run", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "net/dense/kernel" in run.stdout and run.stdout.endswith("(dry run: nothing written)\n")
    assert sorted(os.listdir(tmp_path)) == before
    run = cli("convert", source, source, "--model", "mymodels:build", "--dry-run", cwd=tmp_path)  # onto its source
    assert run.returncode == 2 and "is the input checkpoint itself" in run.stderr, run.stderr
    run = cli("convert", source, tmp_path / "tf2" / "ckpt", "--model", "mymodels:build", "--dry-run", cwd=tmp_path)
    assert run.returncode == 2 and "the model does not fit" in run.stderr and "old/=net/" in run.stderr, run.stderr
    assert sorted(os.listdir(tmp_path)) == before


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("rename", "{missing}", "{out}", "--rule", "a/=b/"), "No checkpoint at"),
        (("rename", "{src}", "{out}", "--rule", "nonsense"), "is not OLD=NEW"),
        (("rename", "{src}", "{out}", "--rule", "old/=single"), "maps a scope to a single name"),
        (("strip", "{src}", "{src}"), "is the input checkpoint itself"),
        (("average", "{out}", "{src}"), "two checkpoints or more"),
        (("convert", "{src}", "{out}", "--model", "nope"), "is not MODULE:FUNCTION"),
        (("convert", "{src}", "{out}", "--model", "no_such_module_here:build"), "cannot import"),
        (("ls", "{src}", "--filter", "kind:slots"), "Unknown kind"),
    ],
)
def test_user_errors_exit_2_with_one_line(tmp_path, base_ckpt, args, fragment):
    values = {"src": base_ckpt, "out": tmp_path / "out.ckpt", "missing": tmp_path / "missing.ckpt"}
    run = cli(*[a.format(**values) for a in args])
    assert run.returncode == 2, (run.stdout, run.stderr)
    lines = run.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and fragment in lines[-1] and "Traceback" not in run.stderr, run.stderr
    assert not list(tmp_path.glob("out.ckpt*"))
