"""Checks for the notebooks' exercises: each prints one line, ``Correct ...`` or ``Not yet ...``.

The contract between the notebooks, a class and the tests: an exercise cell (cell tag
``exercise``, a ``# %load solutions/<name>.py`` line naming its solution) is followed by a
check cell (tag ``check``) that calls one function of this package. Run before the exercise
is done, the check prints ``Not yet: <hint>``, where the hint says what to look at; after it,
``Correct: <why>``. A check never raises: a learner's wrong answer, a name they have not
defined yet, a value of the wrong type all become a ``Not yet`` with a hint.

A check run right after a cell that raised (in IPython: the cell run just before the check's
own) grades nothing: the variables may still hold an answer from an earlier run, so it says
``Not yet: the cell above raised <Error>: <message>; fix it and run it again.``, also when the
check cell itself is run again before the cell above succeeds.

Each check is written as a plain function returning a :class:`Result` (what the tests call,
as ``check.__wrapped__``) and decorated with :func:`check`, which prints the line instead.

Example
-------
>>> @check
... def answer_is_42(answer):
...     if answer == 42:
...         return correct("42 it is.")
...     return not_yet(f"you answered {answer!r}; count again.")
>>> answer_is_42(41)
Not yet: you answered 41; count again.
>>> answer_is_42(42)
Correct: 42 it is.
>>> answer_is_42.__wrapped__(42).ok
True
>>> answer_is_42()   # called before the answer exists: a hint, not a traceback
Not yet: answer_is_42 could not check this (TypeError: answer_is_42() missing 1 required positional argument: 'answer').
"""
from __future__ import annotations

import functools
import sys
from typing import NamedTuple

__all__ = ["Result", "correct", "not_yet", "check", "TODO"]


class _Todo:
    """What an exercise cell assigns before the learner has answered (``answer = TODO``)."""

    def __repr__(self) -> str:
        return "TODO"

    def __bool__(self) -> bool:
        return False


#: The placeholder an exercise starts from: ``my_answer = TODO``.
TODO = _Todo()


class Result(NamedTuple):
    """The outcome of one check: ``ok`` and the line shown to the learner."""

    ok: bool
    message: str

    def __str__(self) -> str:
        return f"{'Correct' if self.ok else 'Not yet'}: {self.message}"


def correct(message: str) -> Result:
    """A passed check; ``message`` says what the learner got right (one sentence)."""
    return Result(True, message)


def not_yet(hint: str) -> Result:
    """A check not passed yet; ``hint`` says what to look at next (one sentence)."""
    return Result(False, hint)


#: ``{source of a check cell: the error of the cell before it}``: a check cell run again
#: without the cell above having succeeded since still says that cell raised.
_RAISED_BEFORE: dict = {}

_LONGEST_ERROR = 200  # characters of an error's first line a check repeats


def _shell():
    """The running IPython shell, or None (plain Python, pytest); never imports IPython."""
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    return get_ipython() if callable(get_ipython) else None


def error_of_the_cell_above():
    """The exception the cell run before the current one raised, or None.

    IPython sets ``last_execution_result`` when a cell ends, so while a check cell runs it
    describes the cell run before it. That cell is the check cell itself when the learner
    runs the check again; then the error that cell's first run reported still holds.
    """
    shell = _shell()
    last = getattr(shell, "last_execution_result", None)
    if last is None:
        return None
    history = getattr(getattr(shell, "history_manager", None), "input_hist_raw", None) or [""]
    current = history[-1]
    if not last.success:
        error = last.error_in_exec or last.error_before_exec
        _RAISED_BEFORE[current] = error
        return error
    info = getattr(last, "info", None)
    if info is not None and info.raw_cell == current and current in _RAISED_BEFORE:
        return _RAISED_BEFORE[current]
    _RAISED_BEFORE.pop(current, None)
    return None


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    first = lines[0].strip() if lines else ""
    return first if len(first) <= _LONGEST_ERROR else first[: _LONGEST_ERROR - 1] + "…"


def cell_above_raised(error: BaseException) -> Result:
    """The answer of every check after a cell that raised ``error``: fix that cell first.

    >>> print(cell_above_raised(TypeError("unhashable type: 'list'")))
    Not yet: the cell above raised TypeError: unhashable type: 'list'; fix it and run it again.
    """
    message = _first_line(error)
    raised = f"{type(error).__name__}: {message}" if message else type(error).__name__
    return not_yet(f"the cell above raised {raised}; fix it and run it again.")


def check(function):
    """Make a check function print its :class:`Result` as one line, and never raise.

    Exceptions inside the check (a wrong type, a missing name) become ``Not yet`` naming the
    exception in one line; the undecorated function stays reachable as ``__wrapped__``.
    Right after a cell that raised, the check grades nothing (:func:`error_of_the_cell_above`).
    """

    @functools.wraps(function)
    def printed(*args, **kwargs) -> None:
        raised = error_of_the_cell_above()
        if raised is not None:
            print(cell_above_raised(raised))
            return
        try:
            result = function(*args, **kwargs)
            if not isinstance(result, Result):
                raise TypeError(f"{function.__name__} returned {result!r}, not a Result")
        except Exception as error:  # a learner's input must never produce a traceback here
            first = str(error).splitlines()[0] if str(error) else ""
            result = not_yet(f"{function.__name__} could not check this ({type(error).__name__}: {first}).")
        print(result)

    return printed
