"""Import TensorFlow without its start-up log lines.

TensorFlow's C++ runtime writes its start-up notices (oneDNN, CUDA probing,
absl's "log messages before InitializeLog") straight to file descriptor 2
while its shared libraries load, before any Python logging setting can act.
Jupyter kernels forward that descriptor into cell output, so a learner would
see red text in the first cell. We silence the descriptor only for the import.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys

__all__ = ["import_tensorflow"]


@contextlib.contextmanager
def _stderr_fd_silenced():
    try:
        sys.stderr.flush()
    except Exception:  # a closed or odd stderr must not block the import
        pass
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow():
    """Return the ``tensorflow`` module, imported with its log noise off.

    Sets ``TF_CPP_MIN_LOG_LEVEL=3`` (unless the user chose a level) and keeps
    TensorFlow's Python logger at ERROR.
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with _stderr_fd_silenced():
        try:
            import tensorflow as tf
        except ModuleNotFoundError as error:
            if error.name != "tensorflow":
                raise
            raise ModuleNotFoundError(
                "ckptwidgets needs TensorFlow: pip install 'ckptwidgets[tf]' "
                "(or tensorflow-cpu, or any TensorFlow distribution >= 2.16).",
                name="tensorflow",
            ) from None

        # The runtime probes devices lazily, on the first op: do it here too.
        tf.config.list_logical_devices()
        tf.constant(0)
    tf.get_logger().setLevel(logging.ERROR)
    with contextlib.suppress(Exception):
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    return tf
