"""Fuzzing: mutated copies of real checkpoints are opened, planned and restored (issue #6).

Two real sources (name-based with EMA shadows and seven dtypes incl. strings and bools;
object-based from a ``tf.Module``) are mutated with a seeded ``random.Random``: bit flips,
truncation, zeroed and random byte ranges, in the ``.index`` and in the data file; a third
of the index mutations get their block checksums recomputed so that the damage reaches the
entry parsers instead of stopping at TensorFlow's crc32c. Every mutant runs in a worker
subprocess (``tests/_fuzz_worker.py``), so a TensorFlow abort or segfault shows up as a
crash of that mutant, not of pytest.

Asserted for every mutant: the process survives; every exception is a
``ckptwidgets.CheckpointError``; after a failed restore every variable (eager and graph
mode) holds exactly its previous value; after a successful one exactly the checkpoint's
value. The exact rule for "successful": TensorFlow checks the crc32c of every index block
and of every tensor's bytes on read, so a random mutation that restores must restore the
original values, bit for bit (it only touched bytes no variable reads: the footer's
padding, the object graph, zeros zeroed again). Mutants with recomputed block checksums
may legitimately decode to other keys, shapes or offsets; those must restore exactly what
TensorFlow's own reader returns for the key each variable was mapped to.

Sample size: ``pytest --fuzz-count=1000`` (or ``CKPTWIDGETS_FUZZ_COUNT=1000``), default 100;
``--fuzz-seed`` picks another sample. Stand-alone: ``python tests/_fuzz_worker.py --fuzz 1000``.
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import ckptwidgets

sys.path.insert(0, os.path.dirname(__file__))
import _fuzz_worker as fw  # noqa: E402

DEFAULT_COUNT = 100


def _count(config) -> int:
    value = config.getoption("--fuzz-count", default=None)
    if value is None:
        value = int(os.environ.get("CKPTWIDGETS_FUZZ_COUNT", DEFAULT_COUNT))
    return value


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    return fw.build_sources(tmp_path_factory.mktemp("fuzz-sources"))


@pytest.fixture(scope="module")
def fuzzed(request, sources, tmp_path_factory):
    count = _count(request.config)
    seed = request.config.getoption("--fuzz-seed", default=None) or 0
    root = tmp_path_factory.mktemp("fuzz")
    specs = fw.make_mutants(sources, root / "mutants", count, seed)
    results, crashes = fw.run_mutants(sources, specs, str(root))
    summary = fw.summarize(specs, results)
    print(f"\nfuzz: {count} mutants, seed {seed}")
    for line, n in summary.items():
        print(f"{n:5d}  {line}")
    return specs, results, crashes


def _describe(spec, result=None) -> str:
    text = f"mutant {spec['id']} ({spec['kind']} {spec['file']}: {spec['what']}{', crc fixed' if spec['fix_crc'] else ''}) at {spec['prefix']}"
    return text + (f": {result}" if result is not None else "")


def test_no_mutant_crashes_the_process(fuzzed):
    specs, _results, crashes = fuzzed
    assert not crashes, "processes died:\n" + "\n".join(
        f"{_describe(c)} in phase {c['phase']!r}; alone it {'dies too' if c['reproduced_alone'] else 'survives'}; "
        f"{c['worker']}" for c in crashes
    )


def test_every_mutant_has_a_result(fuzzed):
    specs, results, _crashes = fuzzed
    assert sorted(results) == [s["id"] for s in specs]


def test_only_package_errors(fuzzed):
    specs, results, _crashes = fuzzed
    bad = [_describe(s, results[s["id"]]["other"]) for s in specs if results[s["id"]].get("other")]
    assert not bad, "exceptions other than ckptwidgets errors:\n" + "\n".join(bad)


def test_no_variable_half_restored_and_restored_values_exact(fuzzed):
    specs, results, _crashes = fuzzed
    wrong = []
    for spec in specs:
        result = results[spec["id"]]
        if result["outcome"].startswith("open:"):
            continue  # nothing was planned
        for mode in ("eager", "graph"):
            if result.get(mode) not in ("restored", "unchanged"):
                wrong.append(_describe(spec, f"{mode}: {result.get(mode)}"))
    assert not wrong, "\n".join(wrong)


def test_the_sample_covers_every_mutation_and_damage_is_noticed(fuzzed):
    specs, results, _crashes = fuzzed
    if len(specs) < 50:
        pytest.skip("too few mutants to judge coverage")
    combos = {(s["file"], s["op"]) for s in specs}
    assert combos == {(f, op) for f in ("index", "data") for op in fw.OPS}
    assert any(s["fix_crc"] for s in specs)
    # Damage must be noticed, not restored: every truncated named data file, and most changes.
    for spec in specs:
        outcome = results[spec["id"]]["outcome"]
        if spec["kind"] == "named" and spec["op"] == "truncate":
            assert outcome != "restored", _describe(spec, outcome)
    errors = sum(results[s["id"]]["outcome"] != "restored" for s in specs)
    assert errors > len(specs) / 2


def test_a_random_mutation_that_restores_touched_no_byte_a_variable_reads(fuzzed, sources):
    """The exact rule, checked from the other side: without recomputed checksums, a data file
    mutation that restored changed no byte of any key the plan read (TensorFlow checks every
    crc32c); and every mutation of such bytes failed."""
    specs, results, _crashes = fuzzed
    layout = {}
    for kind, prefix in sources.items():
        with open(prefix + ".index", "rb") as f:
            entries = fw.index_entries(f.read())
        with open(prefix + ".data-00000-of-00001", "rb") as f:
            layout[kind] = (entries, f.read())
    checked = 0
    for spec in specs:
        result = results[spec["id"]]
        if spec["file"] != "data" or not result.get("keys"):
            continue
        entries, original = layout[spec["kind"]]
        with open(spec["prefix"] + ".data-00000-of-00001", "rb") as f:
            mutated = f.read()
        touched = [
            key for key in result["keys"]
            if original[entries[key].offset : entries[key].offset + entries[key].size]
            != mutated[entries[key].offset : entries[key].offset + entries[key].size]
        ]
        if result["outcome"] == "restored":
            assert not touched, _describe(spec, f"restored although the bytes of {touched} changed")
        else:
            assert touched, _describe(spec, f"{result['outcome']} although no byte the plan reads changed")
        checked += 1
    assert checked > 0


# --- the harness itself can fail ----------------------------------------------------------


def test_a_killed_worker_is_a_crash_naming_the_mutant(sources, tmp_path):
    specs = fw.make_mutants(sources, tmp_path / "mutants", 3, seed=5)
    specs[1]["simulate"] = "abort"
    results, crashes = fw.run_mutants(sources, specs, str(tmp_path))
    assert [c["id"] for c in crashes] == [1]
    assert crashes[0]["phase"] == "open" and crashes[0]["reproduced_alone"]
    assert results[1]["outcome"] == "CRASH"
    assert "outcome" in results[0] and "outcome" in results[2] and results[2]["outcome"] != "CRASH"


@pytest.fixture(scope="module")
def worker(sources):
    return fw._Worker(sources, announce=False)


def test_the_check_sees_a_half_restore(worker, sources, tmp_path, monkeypatch):
    def half_restore(plan, session=None, **kwargs):
        name = next(iter(plan.mapping))
        variable = plan.variables[name]
        if session is None:
            variable.assign(plan.checkpoint.read(plan.mapping[name]))
        else:
            with session.graph.as_default():
                session.run(variable.assign(plan.checkpoint.read(plan.mapping[name])))
        raise ckptwidgets.CorruptCheckpointError("damaged, after one assign")

    monkeypatch.setattr(ckptwidgets, "restore", half_restore)
    spec = fw.make_mutants(sources, tmp_path / "m", 1)[0]
    spec.update(prefix=sources["named"], kind="named", fix_crc=False)
    result = worker.run(spec)
    assert result["eager"].startswith("HALF-RESTORED: dense/kernel")
    assert result["graph"].startswith("HALF-RESTORED: dense/kernel")


def test_the_check_sees_wrong_values_and_foreign_exceptions(worker, sources, tmp_path, monkeypatch):
    real_restore = ckptwidgets.restore

    def shifted(plan, session=None, **kwargs):
        report = real_restore(plan, session=session, **kwargs)
        variable = plan.variables["ids"]
        if session is None:
            variable.assign_add(np.ones(40, np.int64))
        else:
            with session.graph.as_default():
                session.run(variable.assign_add(np.ones(40, np.int64)))
        return report

    spec = fw.make_mutants(sources, tmp_path / "m", 1)[0]
    spec.update(prefix=sources["named"], kind="named", fix_crc=False)
    assert worker.run(spec)["eager"] == "restored"
    monkeypatch.setattr(ckptwidgets, "restore", shifted)
    result = worker.run(spec)
    assert result["eager"] == result["graph"] == "WRONG VALUES after a successful restore: ids"

    def foreign(plan, session=None, **kwargs):
        raise ValueError("not ours")

    monkeypatch.setattr(ckptwidgets, "restore", foreign)
    result = worker.run(spec)
    assert [o["type"] for o in result["other"]] == ["ValueError", "ValueError"]
    assert result["eager"] == "unchanged"
