"""Small notebooks, one per widget, written by the browser tests.

Each starts with a setup cell and shows its widget as the last expression of one cell,
so the widget is the only widget output on the page. The widget of module ``<module>`` of
``ckptwidgets.widgets.WIDGETS`` is shown alone by ``<module>.ipynb`` (:func:`widget_notebook`). They are small and fixed on
purpose: the interaction tests depend on their exact contents, not on the teaching
notebooks (which the tests only run and check for errors).
"""
from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

HOSTILE_KEY = "<img src=x onerror=alert(1)>"

SETUP = '''\
from pathlib import Path

import ckptwidgets
import numpy as np

tf = ckptwidgets.import_tensorflow()  # without its C++ start-up log lines

v1_ = tf.compat.v1
# Checkpoints go next to the notebook (the test server's temporary root folder).
workdir = Path("checkpoints")
workdir.mkdir(exist_ok=True)
'''

MAPPER_CHECKPOINT = '''\
# The tiny base checkpoint: v1 = [1.0], v2 = [2.0].
with tf.Graph().as_default():
    saved = [v1_.Variable([1.0], name="v1"), v1_.Variable([2.0], name="v2")]
    with v1_.Session() as s:
        s.run(v1_.global_variables_initializer())
        prefix = v1_.train.Saver().save(s, str(workdir / "my_test_model.ckpt"))

# A model whose variables have other names: nothing matches automatically.
graph = tf.Graph()
with graph.as_default():
    a1 = v1_.Variable([0.0], name="other-v1")
    a2 = v1_.Variable([5.0], name="other-v2")
sess = v1_.Session(graph=graph)
'''

MAPPER_SHOW = '''\
mapper = ckptwidgets.VariableMapper(prefix, [a1, a2], session=sess)
mapper
'''

EMA_SHOW = '''\
explorer = ckptwidgets.EMAExplorer(decay=0.99, steps=500, target=10.0)
explorer
'''

BROWSER_CHECKPOINT = f'''\
# A checkpoint like a small trained model: variables, EMA shadows, Adam slots, a step
# counter, and one key that is also HTML ({HOSTILE_KEY!r}): it must show as text.
rng = np.random.default_rng(0)
tensors = {{}}
for layer, shape in (("dense", (64, 32)), ("dense_1", (32, 10))):
    kernel = rng.normal(0.0, 0.2, shape).astype(np.float32)
    bias = rng.normal(0.0, 0.05, shape[-1:]).astype(np.float32)
    for name, value in ((f"{{layer}}/kernel", kernel), (f"{{layer}}/bias", bias)):
        tensors[name] = value
        tensors[name + "/ExponentialMovingAverage"] = (0.97 * value + rng.normal(0, 0.01, value.shape)).astype(np.float32)
        tensors[name + "/Adam"] = (0.1 * value).astype(np.float32)
        tensors[name + "/Adam_1"] = (value * value).astype(np.float32)
tensors["global_step"] = np.array(1000, dtype=np.int64)
tensors[{HOSTILE_KEY!r}] = np.array([1.0, 2.0, 3.0], dtype=np.float32)
hostile_prefix = str(workdir / "model.ckpt")
tf.raw_ops.SaveV2(prefix=hostile_prefix, tensor_names=list(tensors), shape_and_slices=[""] * len(tensors),
                  tensors=[tf.constant(v) for v in tensors.values()])
'''

BROWSER_SHOW = '''\
browser = ckptwidgets.CheckpointBrowser(hostile_prefix, page_size=10)
browser
'''


DIFF_CHECKPOINTS = '''\
# Two steps of one run: the weights moved, one scope was renamed, one entry is new.
rng = np.random.default_rng(1)
kernel = rng.normal(0.0, 0.2, (16, 8)).astype(np.float32)
bias = rng.normal(0.0, 0.05, (8,)).astype(np.float32)
step_a = {"dense/kernel": kernel, "dense/bias": bias, "head/w": np.ones((8, 2), np.float32),
          "global_step": np.array(100, dtype=np.int64)}
step_b = {"dense/kernel": kernel + rng.normal(0.0, 0.02, kernel.shape).astype(np.float32),
          "dense/bias": bias * 0.5, "classifier/w": np.ones((8, 2), np.float32),
          "global_step": np.array(200, dtype=np.int64), "extra/scale": np.array([2.0], np.float32)}
prefixes = []
for name, tensors in (("step-100", step_a), ("step-200", step_b)):
    prefix = str(workdir / name)
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=list(tensors), shape_and_slices=[""] * len(tensors),
                      tensors=[tf.constant(v) for v in tensors.values()])
    prefixes.append(prefix)
'''

DIFF_SHOW = '''\
diff = ckptwidgets.CheckpointDiff(*prefixes)
diff
'''


LONG_CHECKPOINT = '''\
# Long names that differ only at their ends (issue #15: "..._BN/moving_mea" vs "..._BN/moving_var"),
# EMA shadows, a 4-d kernel, and variables of the same names in a graph.
long_names = [f"encoder/stage_{s}/block_{b}/depthwise_conv_{c}_BN/moving_{m}"
              for s in (1, 2) for b in (2, 10) for c in (1,) for m in ("mean", "variance")]
tensors = {n: np.full(64, 0.5, np.float32) for n in long_names}
for n in long_names[:4]:
    tensors[n + "/ExponentialMovingAverage"] = np.full(64, 0.45, np.float32)
kernel_key = "encoder/stage_2/block_10/depthwise_conv_1/depthwise_kernel_with_a_long_name"
tensors[kernel_key] = np.zeros((3, 3, 64, 128), np.float32)
long_prefix = str(workdir / "long-names.ckpt")
tf.raw_ops.SaveV2(prefix=long_prefix, tensor_names=list(tensors), shape_and_slices=[""] * len(tensors),
                  tensors=[tf.constant(v) for v in tensors.values()])
long_graph = tf.Graph()
with long_graph.as_default():
    long_vars = [v1_.Variable(np.zeros(64, np.float32), name=n) for n in long_names]
long_sess = v1_.Session(graph=long_graph)
'''

LONG_SHOW = '''\
long_mapper = ckptwidgets.VariableMapper(long_prefix, long_vars, session=long_sess, page_size=5)
long_mapper
'''

LONG_BROWSER = '''\
long_browser = ckptwidgets.CheckpointBrowser(long_prefix, page_size=5)
long_browser
'''


MOBILENET_CHECKPOINT = '''\
# A MobileNetV2-sized teacher (issue #23): 16 blocks, each BatchNorm with 4 variables, every
# variable with an EMA shadow, so keys are long and differ in the middle ("block_1_" vs
# "block_12_") and at the end ("gamma" vs "moving_variance"); a student of the same layers.
layers = {"Conv1/kernel": (3, 3, 3, 32), "Conv_1/kernel": (1, 1, 32, 1280), "Logits/kernel": (1280, 5)}
bn = {"bn_Conv1": 32, "Conv_1_bn": 1280}
for i in range(1, 17):
    layers[f"block_{i}_expand/kernel"] = (1, 1, 16, 96)
    layers[f"block_{i}_depthwise/depthwise_kernel"] = (3, 3, 96, 1)
    layers[f"block_{i}_project/kernel"] = (1, 1, 96, 16)
    bn.update({f"block_{i}_expand_BN": 96, f"block_{i}_depthwise_BN": 96, f"block_{i}_project_BN": 16})
for name, size in bn.items():
    for v in ("gamma", "beta", "moving_mean", "moving_variance"):
        layers[f"{name}/{v}"] = (size,)
tensors = {}
for name, shape in layers.items():
    tensors[f"teacher/{name}"] = np.full(shape, 0.5, np.float32)
    tensors[f"teacher/{name}/ExponentialMovingAverage"] = np.full(shape, 0.45, np.float32)
teacher = str(workdir / "teacher.ckpt")
tf.raw_ops.SaveV2(prefix=teacher, tensor_names=list(tensors), shape_and_slices=[""] * len(tensors),
                  tensors=[tf.constant(v) for v in tensors.values()])
tensors["teacher/Logits/kernel"] = np.full((1280, 5), 0.7, np.float32)
teacher_later = str(workdir / "teacher-later.ckpt")
tf.raw_ops.SaveV2(prefix=teacher_later, tensor_names=list(tensors), shape_and_slices=[""] * len(tensors),
                  tensors=[tf.constant(v) for v in tensors.values()])
student_graph = tf.Graph()
with student_graph.as_default():
    student = [v1_.Variable(np.zeros(shape, np.float32), name=f"student/{name}") for name, shape in layers.items()]
student_sess = v1_.Session(graph=student_graph)
# A check's line with shapes in it, long enough to wrap: never inside a number.
print("Not yet: 'student/Logits/kernel' is [1280, 5]; the shapes: " + ", ".join(f"[1280, {1280 + i}]" for i in range(60)))
'''

MOBILENET_MAPPER = '''\
mobile_mapper = ckptwidgets.VariableMapper(teacher, student, session=student_sess, rules="teacher/ -> student/",
                                           prefer_ema=True, page_size=25)
mobile_mapper
'''

MOBILENET_BROWSER = '''\
mobile_browser = ckptwidgets.CheckpointBrowser(teacher, page_size=12)
mobile_browser
'''

MOBILENET_DIFF = '''\
mobile_diff = ckptwidgets.CheckpointDiff(teacher, teacher_later)
mobile_diff
'''


def _notebook(*sources):
    nb = new_notebook(cells=[new_code_cell(source) for source in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


NOTEBOOKS = {
    "mapper.ipynb": (SETUP, MAPPER_CHECKPOINT, MAPPER_SHOW),
    "ema_explorer.ipynb": (SETUP, EMA_SHOW),
    "browser.ipynb": (SETUP, BROWSER_CHECKPOINT, BROWSER_SHOW),
    "diff.ipynb": (SETUP, DIFF_CHECKPOINTS, DIFF_SHOW),
    "long_names.ipynb": (SETUP, LONG_CHECKPOINT, LONG_SHOW, LONG_BROWSER, EMA_SHOW),
    "reload.ipynb": (SETUP + "from ckptwidgets.widgets import reload_hint\nreload_hint()\n", EMA_SHOW),
    "mobilenet.ipynb": (SETUP + "from ckptwidgets.widgets import reload_hint\nreload_hint()\n", MOBILENET_CHECKPOINT,
                        MOBILENET_MAPPER, MOBILENET_BROWSER, MOBILENET_DIFF),
}


def widget_notebook(module):
    """The name of the fixture notebook that shows the widget of ``module`` (of
    ``ckptwidgets.widgets.WIDGETS``) alone: ``<module>.ipynb``."""
    return f"{module}.ipynb"


def write(name, folder):
    """Write fixture notebook ``name`` into ``folder``; return its path."""
    path = folder / name
    nbformat.write(_notebook(*NOTEBOOKS[name]), path)
    return path
