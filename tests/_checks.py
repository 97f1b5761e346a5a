"""Calling a check of :mod:`ckptwidgets.checks` in a test and reading its answer.

- ``result(check, *args)``: the :class:`~ckptwidgets.checks.Result` the check returns
  (its undecorated function, ``check.__wrapped__``), instead of the line it prints;
- ``ok(res)``: assert the check said ``Correct``; returns ``res``;
- ``hint(res, *words)``: assert it said ``Not yet`` with every one of ``words`` in its hint.
"""
from __future__ import annotations


def result(check, *args, **kwargs):
    return check.__wrapped__(*args, **kwargs)


def ok(res):
    assert res.ok, res
    return res


def hint(res, *words):
    assert not res.ok, res
    for word in words:
        assert word in res.message, res
    return res
