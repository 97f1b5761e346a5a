"""``python -m ckptwidgets PATH``: the entries table, filters (the widgets' language, --regex, --kind), errors, odd keys."""
from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from ckptwidgets import open_checkpoint
from ckptwidgets.__main__ import main
from ckptwidgets.cli.ls import format_key, report
from ckptwidgets.sources.arrays import ArraySource

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def run_cli(*args, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "ckptwidgets", *map(str, args)], capture_output=True, text=True, env=ENV, timeout=120, **kwargs
    )


def raw_checkpoint(prefix, names, dtype=tf.float32) -> str:
    names = sorted(names)
    tf.raw_ops.SaveV2(
        prefix=str(prefix), tensor_names=names, shape_and_slices=[""] * len(names),
        tensors=[tf.zeros([2], dtype)] * len(names),
    )
    return str(prefix)


def test_base_checkpoint_table(base_ckpt, capsys):
    assert main([base_ckpt]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out == (
        f"checkpoint {base_ckpt} (name-based, 2 entries, 1 data file)\n"
        "\n"
        "key  kind      dtype    shape  size\n"
        "v1   variable  float32  [1]    4 B\n"
        "v2   variable  float32  [1]    4 B\n"
        "\n"
        "kind      entries  size\n"
        "variable  2        8 B\n"
        "total     2        8 B\n"
    )


def test_totals_per_kind(ema_ckpt, capsys):
    assert main([os.path.dirname(ema_ckpt)]) == 0
    out = capsys.readouterr().out
    assert "v/ExponentialMovingAverage   ema       float32  []     4 B" in out
    assert out.endswith("kind      entries  size\nvariable  2        8 B\nema       2        8 B\ntotal     4        16 B\n")


def test_kind_and_filter(ema_ckpt, capsys):
    assert main([ema_ckpt, "--kind", "ema"]) == 0
    out = capsys.readouterr().out
    assert "2 of 4 entries" in out
    keys = [line.split()[0] for line in out.splitlines()[3:5]]
    assert keys == ["v/ExponentialMovingAverage", "v2/ExponentialMovingAverage"]
    assert "\nema    2        8 B\ntotal  2        8 B\n" in out

    assert main([ema_ckpt, "--regex", r"^v2"]) == 0
    out = capsys.readouterr().out
    assert "2 of 4 entries" in out and "\nv2 " in out and "\nv " not in out

    assert main([ema_ckpt, "--filter", "V2", "--kind", "variable", "--kind", "meta"]) == 0
    out = capsys.readouterr().out
    assert "1 of 4 entries" in out and out.count("variable") == 2  # the row and the total

    assert main([ema_ckpt, "--filter", "nothing-like-this"]) == 0
    assert "0 of 4 entries" in capsys.readouterr().out


def listed(out):
    lines = out.splitlines()
    return [line.split()[0] for line in lines[3:lines.index("", 2)]] if "no entries match" not in out else []


def test_filter_is_the_widgets_language(ema_ckpt, capsys):
    cases = {
        "v2": ["v2", "v2/ExponentialMovingAverage"],
        "!moving": ["v", "v2"],
        "!kind:ema": ["v", "v2"],
        "kind:ema": ["v/ExponentialMovingAverage", "v2/ExponentialMovingAverage"],
        "kind:variable,ema v2": ["v2", "v2/ExponentialMovingAverage"],
        '"v2/exp"': ["v2/ExponentialMovingAverage"],
        "^v2": [],  # a word, not a pattern
    }
    for text, keys in cases.items():
        assert main([ema_ckpt, "--filter", text]) == 0, text
        assert listed(capsys.readouterr().out) == keys, text
    # Every --filter, --regex and --kind must hold.
    assert main([ema_ckpt, "--filter", "v2", "--filter", "!kind:variable", "--regex", "Average$"]) == 0
    assert listed(capsys.readouterr().out) == ["v2/ExponentialMovingAverage"]
    assert main([ema_ckpt, "--filter", "kind:ema", "--kind", "variable"]) == 0
    assert "0 of 4 entries" in capsys.readouterr().out


def test_bad_filter_term_is_one_line_exit_2(ema_ckpt, capsys):
    for text, why in [("kind:slots", "Unknown kind 'slots' in filter term 'kind:slots'"),
                      ("v !kind:", "Filter term '!kind:' names no kind")]:
        assert main([ema_ckpt, "--filter", text]) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1 and "Traceback" not in err
        assert err.startswith(f"error: --filter {text!r}: {why}") and "variable, ema, slot, meta" in err


class DescribedSource(ArraySource):
    """A format that says what it is in the listing's header (the optional ``describe`` hook)."""

    def describe(self, shown: str) -> str:
        return f"described by its source, {shown}"


def test_the_header_is_the_sources_describe_else_its_format():
    tensors = {"w": np.zeros([2], np.float32), "b": np.zeros([], np.float32)}
    plain = open_checkpoint(ArraySource(tensors, location="mem"))
    assert report(plain, list(plain.entries), 2).splitlines()[0] == "checkpoint mem (arrays, 2 entries)"
    described = open_checkpoint(DescribedSource(tensors, location="mem"))
    entries = [e for e in described.entries if e.key == "w"]
    assert report(described, entries, 2).splitlines()[0] == "checkpoint mem (described by its source, 1 of 2 entries)"


def test_strings_are_unsized(tmp_path, capsys):
    module = tf.Module()
    module.w = tf.Variable([1.0, 2.0])
    prefix = tf.train.Checkpoint(m=module).write(str(tmp_path / "obj"))
    assert main([prefix]) == 0
    out = capsys.readouterr().out
    assert "object-based" in out
    row = next(line for line in out.splitlines() if line.startswith("_CHECKPOINTABLE_OBJECT_GRAPH"))
    assert row.split() == ["_CHECKPOINTABLE_OBJECT_GRAPH", "meta", "string", "[]", "-"]
    assert "sizes leave out string" in out


def test_keys_with_control_characters_stay_on_one_line(tmp_path, capsys):
    prefix = raw_checkpoint(tmp_path / "odd.ckpt", ["line\nbreak", "tab\there", "ünïcode/ok", "bell\x07"])
    assert main([prefix]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert len(lines) == 2 + 1 + 4 + 1 + 3  # title, blank, header, rows, blank, totals
    assert "'line\\nbreak'" in out and "'tab\\there'" in out and "'bell\\x07'" in out
    assert "\nünïcode/ok " in out
    assert format_key("a\u2028b") == "'a\\u2028b'"


@pytest.mark.parametrize("make", ["missing", "corrupt", "meta"])
def test_checkpoint_errors_exit_2_without_traceback(tmp_path, base_ckpt, capsys, make):
    if make == "missing":
        path = str(tmp_path / "nothing")
    elif make == "corrupt":
        pathlib.Path(base_ckpt + ".index").write_bytes(b"\0" * 10)
        path = base_ckpt
    else:
        path = base_ckpt + ".meta"
    assert main([path]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("error: ") and path in err and "Traceback" not in err and err.count("\n") == 1


def test_bad_regex_and_bad_kind(base_ckpt, capsys):
    assert main([base_ckpt, "--regex", "("]) == 2
    assert capsys.readouterr().err.startswith("error: --regex '(' is not a valid regular expression")
    assert main([base_ckpt, "--filter", "("]) == 0  # a word here
    assert "0 of 2 entries" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        main([base_ckpt, "--kind", "weights"])
    assert info.value.code == 2
    assert "invalid choice: 'weights'" in capsys.readouterr().err


def test_subprocess_module_run(ema_ckpt, tmp_path):
    ok = run_cli(ema_ckpt, "--kind", "variable")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines()[0] == f"checkpoint {ema_ckpt} (name-based, 2 of 4 entries, 1 data file)"
    assert ok.stderr == ""
    bad = run_cli(tmp_path / "nope")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith("error: No checkpoint at") and "Traceback" not in bad.stderr
    help_ = run_cli("ls", "--help")  # the listing's own options (the top-level help lists the commands)
    assert help_.returncode == 0 and "--kind KIND" in help_.stdout
    assert "--filter FILTER" in help_.stdout and "--regex REGEX" in help_.stdout and "!kind:slot" in help_.stdout
    filtered = run_cli(ema_ckpt, "--filter", "!kind:ema v2")
    assert filtered.returncode == 0 and filtered.stdout.splitlines()[0].endswith("(name-based, 1 of 4 entries, 1 data file)")
    bad = run_cli(ema_ckpt, "--filter", "kind:slots")
    assert bad.returncode == 2 and bad.stdout == "" and bad.stderr.count("\n") == 1
    assert bad.stderr.startswith("error: --filter 'kind:slots': Unknown kind 'slots'")


def test_console_script(base_ckpt):
    script = shutil.which("ckptwidgets", path=os.path.dirname(sys.executable))
    if script is None:
        pytest.skip("the package is not installed with its console script here")
    result = subprocess.run([script, base_ckpt], capture_output=True, text=True, env=ENV, timeout=120)
    assert result.returncode == 0 and "v2   variable  float32  [1]    4 B" in result.stdout


def test_closed_pipe_is_quiet(tmp_path):
    prefix = raw_checkpoint(tmp_path / "many.ckpt", [f"layer_{i:05d}/kernel" for i in range(3000)])
    result = subprocess.run(
        f"{sys.executable} -m ckptwidgets {prefix} | head -n 2", shell=True, capture_output=True, text=True, env=ENV, timeout=120
    )
    assert result.stdout.splitlines()[0].endswith("(name-based, 3000 entries, 1 data file)")
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr


def test_a_mistyped_option_names_the_one_meant(base_ckpt, tmp_path, capsys):
    """argparse (before Python 3.14) says 'unrecognized arguments'; the message names the option meant."""
    with pytest.raises(SystemExit) as info:
        main(["export", base_ckpt, str(tmp_path / "b.safetensors"), "--keep-optimiser", "--dry-rn"])
    assert info.value.code == 2 and not (tmp_path / "b.safetensors").exists()
    assert capsys.readouterr().err.endswith(
        "error: unrecognized arguments: --keep-optimiser (did you mean '--keep-optimizer'?) "
        "--dry-rn (did you mean '--dry-run'?)\n")
    with pytest.raises(SystemExit):
        main([base_ckpt, "--knd", "slot"])  # the bare path is 'ls'
    assert capsys.readouterr().err.endswith("unrecognized arguments: --knd (did you mean '--kind'?) slot\n")
