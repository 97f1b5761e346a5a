"""How ``make test`` splits the suite over pytest-xdist workers (tests/conftest.py) stays true."""
from __future__ import annotations

import re
import types

import pytest

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


class _Worker:
    """Stands in for a pytest-xdist worker: records the tests it is sent."""

    shutting_down = False

    def __init__(self, name, collection):
        self.gateway = types.SimpleNamespace(id=name)
        self.collection, self.ran = collection, []

    def send_runtest_some(self, indices):
        self.ran.extend(self.collection[i] for i in indices)

    def shutdown(self):
        self.shutting_down = True


def test_the_scheduler_sends_each_unit_to_one_worker_in_the_collected_order(pytestconfig):
    """``--dist loadgroup`` with the conftest's scheduler: the notebook files go to one worker
    together, the browser-lab files to one, and units start in the order collected."""
    pytest.importorskip("xdist")
    import conftest

    class Options:
        dist, tx, loadscopereorder = "loadgroup", ["popen", "popen"], True

    class Config:
        option, rootpath = Options(), pytestconfig.rootpath

        def getoption(self, name):
            return getattr(self.option, name)

        getvalue = getoption

    collection = [
        "tests/browser/test_widgets_in_lab.py::test_a", "tests/browser/test_exercise_in_lab.py::test_b",
        "tests/test_notebooks.py::test_c", "tests/test_plan.py::test_d", "tests/test_exercises.py::test_e",
        "tests/test_plan.py::test_f", "tests/test_reader.py::test_g", "tests/test_reader.py::test_h",
    ]
    scheduler = conftest.pytest_xdist_make_scheduler(config=Config(), log=None)
    workers = [_Worker("gw0", collection), _Worker("gw1", collection)]
    for worker in workers:
        scheduler.add_node(worker)
        scheduler.add_node_collection(worker, collection)
    scheduler.schedule()
    while scheduler.workqueue:  # workers report done, one test at a time, taking the next unit
        for worker in workers:
            for nodeid in list(worker.ran):
                scheduler.mark_test_complete(worker, collection.index(nodeid))
    first, second = (worker.ran for worker in workers)
    assert first[:2] == collection[:2], "the first unit (browser-lab) goes whole to the first worker"
    assert second[:2] == ["tests/test_notebooks.py::test_c", "tests/test_exercises.py::test_e"]
    assert sorted(first + second) == sorted(collection)
    for unit in (["tests/test_plan.py::test_d", "tests/test_plan.py::test_f"],
                 ["tests/test_reader.py::test_g", "tests/test_reader.py::test_h"]):
        assert set(unit) <= set(first) or set(unit) <= set(second), (unit, first, second)
