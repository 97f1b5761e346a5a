"""Restoring and saving what a mapper's plan maps: the Restore and "Save as checkpoint..."
buttons of :class:`~ckptwidgets.VariableMapper`, their progress and their report.

:class:`RestoreActions` is the part of
:class:`~ckptwidgets.widgets._mapper_model.MapperModel` that acts on the plan; like the rest
of the model it imports no ipywidgets.
"""
from __future__ import annotations

from traitlets import Any, Bool, HasTraits, Tuple, Unicode

from .._text.format import count_of, first_lines
from ..errors import CheckpointError, PlanError
from ..restore import restore as restore_plan
from ._mapper_text import full_report_text

__all__ = ["RestoreActions"]


class RestoreActions(HasTraits):
    """Restore or save a model's ``plan`` (with its ``session``, ``initialize_unmapped`` and the
    ``variables`` it plans into),
    saying what happened in its message (``_say``): the :class:`MapperModel` base that acts."""

    report = Any(None, read_only=True, help="The RestoreReport of the last restore, or None.")
    report_current = Bool(False, read_only=True, help="False once the plan changed (or a restore was refused) "
                          "since `report`: the view greys the old report out and hides the progress bar.")
    saved = Unicode("", read_only=True, help="Prefix of the checkpoint the last 'Save as' wrote ('' for none).")
    progress = Tuple((0, 0), read_only=True, help="(done, total) tensors of the running or last restore.")

    # --- restore -------------------------------------------------------------------------
    def restore(self, initialize_unmapped=None):
        """Restore the plan (as the Restore button does) and return the report.

        Parameters
        ----------
        initialize_unmapped : bool, optional
            Defaults to the ``initialize_unmapped`` trait (on in graph mode).

        Raises
        ------
        RestoreError, CorruptCheckpointError
            Also shown in ``message``; nothing was restored.
        """
        if self.plan is None:
            raise PlanError(f"Nothing to restore: {self.message}")
        if initialize_unmapped is None:
            initialize_unmapped = self.initialize_unmapped
        self._last_percent = -1
        try:
            report = restore_plan(self.plan, session=self.session, initialize_unmapped=bool(initialize_unmapped),
                                  progress=self._progress)
        except CheckpointError as error:
            # Nothing was restored: no old report or full bar above the refusal.
            self.set_trait("report_current", False)
            self.set_trait("progress", (0, 0))
            self._say(str(error))
            raise
        self.set_trait("report", report)
        self.set_trait("report_current", True)
        self.set_trait("progress", (len(report.restored), len(report.restored)))
        self._say(
            f"Restored {count_of(len(report.restored), 'variable')}, initialised {len(report.initialized)}, "
            f"left {len(report.left_alone)} alone, in {report.seconds:.2f} s.",
            "info",
        )
        return report

    def save_as(self, path, overwrite: bool = False):
        """Write what the plan maps, under the variables' names, as a new checkpoint at ``path``.

        The "Save as checkpoint..." button: :func:`ckptwidgets.write.from_plan` written with
        the writer's checks (nothing is written for a plan with problems or an existing
        ``path`` without ``overwrite``). ``path``'s ending picks the format (``.safetensors``,
        ``.pt``, else a TF prefix); ``.weights.h5`` for a mapper over a Keras model writes
        that model's weights file (``model.load_weights`` takes it). Returns the
        ``WriteReport``; errors are also said in ``message``.
        """
        from ..write import from_plan, model_option

        if self.plan is None:
            raise PlanError(f"Nothing to save: {self.message}")
        if not str(path).strip():
            error = PlanError("Type where to write: a TF prefix (mapped/model.ckpt), or a .safetensors, .pt or "
                              ".weights.h5 file.")
            self._say(str(error), "warning")
            raise error
        path = str(path).strip()
        try:
            report = from_plan(self.plan).write(path, overwrite=overwrite, progress=False,
                                                **model_option(path, self.variables))
        except CheckpointError as error:
            self._say(str(error))
            raise
        self.set_trait("saved", report.prefix)
        self._say(f"Saved {count_of(len(report.keys), 'tensor')} under the variables' names to {report.prefix!r}.", "info")
        return report

    def _progress(self, done, total):
        # Called per chunk, maybe from a TensorFlow thread; at most ~100 updates reach the browser.
        percent = 100 * done // total if total else 100
        if percent != self._last_percent or done == total:
            self._last_percent = percent
            self.set_trait("progress", (int(done), int(total)))

    # --- the report as text --------------------------------------------------------------
    def report_text(self, lines: int = 40) -> str:
        """The first ``lines`` lines of the last restore's report ('' before any restore)."""
        return first_lines(str(self.report), lines, "lines") if self.report is not None else ""

    def full_report_text(self) -> str:
        """The last report with every variable: each restored one (``name <- key``), initialised, left alone."""
        return full_report_text(self.report)
