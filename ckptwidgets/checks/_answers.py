"""What the checks of every notebook need to read a learner's answer: the placeholder, a
number typed several ways, a variable's name, the plan behind a widget.

Private to :mod:`ckptwidgets.checks`; each helper turns what a learner may have typed into a
plain value, or ``None`` where it cannot, so the check can answer with a hint.
"""
from __future__ import annotations

import numpy as np

from .._planning.variables import is_variable, variable_name
from ..plan import RestorePlan
from . import TODO


def is_todo(answer) -> bool:
    """The answer was not given: ``TODO`` (or ``None``, ``...``) still in the cell."""
    return answer is TODO or answer is None or answer is Ellipsis


def as_int(answer):
    """``answer`` as an int (an int, an integral float or a string of digits), else None."""
    if isinstance(answer, (bool, np.bool_)):
        return None
    if isinstance(answer, (int, np.integer)):
        return int(answer)
    if isinstance(answer, (float, np.floating)) and float(answer).is_integer():
        return int(answer)
    if isinstance(answer, str) and answer.strip().lstrip("-").isdigit():
        return int(answer.strip())
    return None


def label(obj) -> str:
    """A variable's name as the checkpoint would know it, anything else as its repr."""
    return variable_name(obj) if is_variable(obj) else repr(obj)


def plan_of(widget_or_plan):
    """``(plan, model)`` of a VariableMapper (or its model), ``(plan, None)`` of a plan itself,
    ``(None, None)`` of anything else."""
    if isinstance(widget_or_plan, RestorePlan):
        return widget_or_plan, None
    plan = getattr(widget_or_plan, "plan", None)
    if isinstance(plan, RestorePlan):
        return plan, getattr(widget_or_plan, "model", widget_or_plan)
    return None, None


def mapper_parts(mapper, trait: str):
    """``(model, plan)`` of a VariableMapper (or its model) whose model has ``trait``, else
    ``(None, None)``: the check was handed something else."""
    plan, model = plan_of(mapper)
    if model is None or not hasattr(model, trait):
        return None, None
    return model, plan
