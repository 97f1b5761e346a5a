"""Every layout a user has (issue #11): SavedModel folders, state files from another machine,
an empty basename, several steps of one run, and paths to the wrong file of a checkpoint."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from ckptwidgets import CheckpointNotFoundError, CheckpointWarning, open_checkpoint, plan_restore, restore

v1_ = tf.compat.v1


def saver_steps(folder, steps, max_to_keep=5):
    """Save ``v`` = step at each step with one Saver (its 'checkpoint' file names the last)."""
    graph = tf.Graph()
    with graph.as_default():
        v = v1_.Variable(0.0, name="v")
        saver = v1_.train.Saver(max_to_keep=max_to_keep)
        with v1_.Session(graph=graph) as sess:
            sess.run(v.initializer)
            prefixes = []
            for step in steps:
                sess.run(v.assign(float(step)))
                prefixes.append(saver.save(sess, str(folder / "model.ckpt"), global_step=step))
    return prefixes


# --- SavedModel -------------------------------------------------------------------------


@pytest.fixture
def saved_model(tmp_path):
    module = tf.Module()
    module.w = tf.Variable([[1.0, 2.0], [3.0, 4.0]])
    module.f = tf.function(lambda x: tf.matmul(x, module.w), input_signature=[tf.TensorSpec([None, 2])])
    folder = str(tmp_path / "exported")
    tf.saved_model.save(module, folder)
    return folder


def test_a_saved_model_folder_opens_its_variables(saved_model):
    prefix = os.path.join(saved_model, "variables", "variables")
    for path in (saved_model, saved_model + "/", os.path.join(saved_model, "saved_model.pb")):
        ckpt = open_checkpoint(path)
        assert ckpt.prefix.rstrip("/") == prefix and ckpt.object_based
    reader = tf.train.load_checkpoint(prefix)
    assert ckpt.keys() == sorted(reader.get_variable_to_shape_map())
    np.testing.assert_array_equal(ckpt.read("w"), reader.get_tensor("w/.ATTRIBUTES/VARIABLE_VALUE"))


def test_a_saved_model_without_its_variables_says_so(saved_model):
    shutil.rmtree(os.path.join(saved_model, "variables"))
    with pytest.raises(CheckpointNotFoundError, match="SavedModel without variables"):
        open_checkpoint(saved_model)


# --- a 'checkpoint' state file from another machine --------------------------------------


def test_state_file_with_another_machines_paths_opens_the_same_name_here(tmp_path):
    first = tmp_path / "on-the-authors-machine"
    first.mkdir()
    *_, last = saver_steps(first, [1, 2])
    moved = tmp_path / "handed-to-me"
    shutil.move(str(first), str(moved))  # the state file still names the old absolute paths
    with pytest.warns(CheckpointWarning) as caught:
        ckpt = open_checkpoint(moved)
    assert ckpt.prefix == str(moved / "model.ckpt-2") and ckpt.read("v") == np.float32(2.0)
    text = str(caught[0].message)
    assert last in text and str(moved / "model.ckpt-2") in text and "of that name in this folder" in text
    assert caught[0].filename == __file__  # the warning points at the caller's line


def test_state_file_naming_a_checkpoint_that_is_gone_opens_the_newest_here(tmp_path):
    saver_steps(tmp_path, [5, 6])
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "/elsewhere/run/model.ckpt-9"\n')
    with pytest.warns(CheckpointWarning, match="newest checkpoint in this folder") as caught:
        ckpt = open_checkpoint(tmp_path)
    assert ckpt.prefix == str(tmp_path / "model.ckpt-6") and "/elsewhere/run/model.ckpt-9" in str(caught[0].message)


def test_a_flipped_bit_in_the_state_file_opens_the_checkpoint_here(base_ckpt):
    # The name it points to: my_test_model -> my_uest_model (moved here from the bad inputs:
    # a valid checkpoint beside a damaged state file is opened, never called corrupt).
    state = os.path.join(os.path.dirname(base_ckpt), "checkpoint")
    data = bytearray(open(state, "rb").read())
    data[data.index(b"my_test_model") + 3] ^= 0x01
    open(state, "wb").write(bytes(data))
    with pytest.warns(CheckpointWarning, match="my_uest_model"):
        assert open_checkpoint(os.path.dirname(base_ckpt)).prefix == base_ckpt


# --- an empty basename ------------------------------------------------------------------


def test_a_prefix_with_an_empty_basename(tmp_path):
    folder = tmp_path / "dir"
    graph = tf.Graph()
    with graph.as_default():
        v = v1_.Variable([3.0], name="v")
        with v1_.Session(graph=graph) as sess:
            sess.run(v.initializer)
            prefix = v1_.train.Saver().save(sess, str(folder) + "/")
    assert prefix == str(folder) + "/" and (folder / ".index").exists()
    for path in (folder, str(folder) + "/", folder / ".index"):
        ckpt = open_checkpoint(path)
        assert ckpt.prefix == str(folder) + "/" and ckpt.read("v").tolist() == [3.0]
    with pytest.raises(CheckpointNotFoundError, match=repr(str(folder) + "/")):
        open_checkpoint(folder / ".meta")
    target = tf.Variable([0.0], name="v")
    restore(plan_restore(ckpt, [target]))
    assert target.numpy().tolist() == [3.0]


# --- several steps ----------------------------------------------------------------------


def test_several_steps_open_the_latest_and_list_the_others(tmp_path):
    prefixes = saver_steps(tmp_path, [0, 999, 1000])
    ckpt = open_checkpoint(tmp_path)
    assert ckpt.prefix == prefixes[-1] == tf.train.latest_checkpoint(str(tmp_path))
    assert ckpt.steps == ((0, prefixes[0]), (999, prefixes[1]), (1000, prefixes[2])) and ckpt.step == 1000
    other = open_checkpoint(dict(ckpt.steps)[999])
    assert other.read("v") == np.float32(999.0) and other.step == 999


def test_several_steps_without_a_state_file_open_the_highest_step(tmp_path):
    prefixes = saver_steps(tmp_path, [0, 999, 1000])
    os.remove(tmp_path / "checkpoint")
    with pytest.warns(CheckpointWarning, match="highest step"):
        ckpt = open_checkpoint(tmp_path)
    assert ckpt.prefix == prefixes[-1]  # 1000, not "999" (the last in text order)


def test_a_prefix_without_a_step_has_no_steps(base_ckpt):
    ckpt = open_checkpoint(base_ckpt)
    assert ckpt.steps == () and ckpt.step is None


# --- the wrong file of a checkpoint ------------------------------------------------------


@pytest.mark.parametrize("suffix", [".meta", ".data-00000-of-00001"])
def test_a_meta_or_data_path_names_the_prefix_that_then_opens(base_ckpt, suffix):
    with pytest.raises(CheckpointNotFoundError) as info:
        open_checkpoint(base_ckpt + suffix)
    assert f"pass the prefix {base_ckpt!r}" in str(info.value)
    assert open_checkpoint(base_ckpt).prefix == base_ckpt


def test_no_tensorflow_log_line_in_the_cli_output(tmp_path, base_ckpt):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    run = subprocess.run([sys.executable, "-m", "ckptwidgets", base_ckpt], capture_output=True, text=True,
                         env=env, timeout=120)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    assert run.stdout.splitlines()[0].startswith("checkpoint ") and "I0000" not in run.stdout
