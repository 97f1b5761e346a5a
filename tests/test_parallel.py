"""How ``make test`` splits the suite over pytest-xdist workers (tests/conftest.py) stays true."""
from __future__ import annotations

import re

from conftest import LONGEST_FIRST, SHARED_GROUPS, TESTS


def test_groups_and_the_longest_first_list_name_files_that_exist():
    for relative in SHARED_GROUPS:
        assert (TESTS / relative).is_file(), f"SHARED_GROUPS names {relative}, which is gone"
    groups = set(SHARED_GROUPS.values())
    for unit in LONGEST_FIRST:
        assert unit in groups or (TESTS / unit).is_file(), f"LONGEST_FIRST names {unit}, which is gone"
    assert len(LONGEST_FIRST) == len(set(LONGEST_FIRST))


def test_files_sharing_the_notebook_runs_are_one_group():
    """tests/_notebooks.executed runs each notebook once per process: every file that uses it
    runs in the same worker, or the notebooks run again in another one."""
    users = sorted(path.relative_to(TESTS).as_posix() for path in TESTS.rglob("test_*.py")
                   if re.search(r"^from _notebooks import .*\bexecuted\b", path.read_text(encoding="utf-8"), re.M))
    assert users, "no test file uses _notebooks.executed any more: update SHARED_GROUPS"
    assert {SHARED_GROUPS.get(user) for user in users} == {"notebooks"}, users
