"""Checks for the notebooks' exercises: each prints one line, ``Correct ...`` or ``Not yet ...``.

The contract between the notebooks, a class and the tests: an exercise cell (cell tag
``exercise``, a ``# %load solutions/<name>.py`` line naming its solution) is followed by a
check cell (tag ``check``) that calls one function of this package. Run before the exercise
is done, the check prints ``Not yet: <hint>``, where the hint says what to look at; after it,
``Correct: <why>``. A check never raises: a learner's wrong answer, a name they have not
defined yet, a value of the wrong type all become a ``Not yet`` with a hint.

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


def check(function):
    """Make a check function print its :class:`Result` as one line, and never raise.

    Exceptions inside the check (a wrong type, a missing name) become ``Not yet`` naming the
    exception in one line; the undecorated function stays reachable as ``__wrapped__``.
    """

    @functools.wraps(function)
    def printed(*args, **kwargs) -> None:
        try:
            result = function(*args, **kwargs)
            if not isinstance(result, Result):
                raise TypeError(f"{function.__name__} returned {result!r}, not a Result")
        except Exception as error:  # a learner's input must never produce a traceback here
            first = str(error).splitlines()[0] if str(error) else ""
            result = not_yet(f"{function.__name__} could not check this ({type(error).__name__}: {first}).")
        print(result)

    return printed
