"""Fuzzing helper: build real checkpoints, mutate them, and open/plan/restore each mutant.

Used by ``tests/test_fuzz.py`` in two roles:

- imported, it builds the source checkpoints (:func:`build_sources`), writes mutants
  (:func:`make_mutants`) and runs them in worker subprocesses (:func:`run_mutants`),
  restarting a worker that died and naming the mutant that killed it;
- run as a script (``python tests/_fuzz_worker.py SPECS.json``), it is the worker: for
  each mutant of the JSON list it prints ``{"begin": id, "phase": ...}`` lines while it
  works and one ``{"id": ..., ...}`` result line when done, flushed, so that a TensorFlow
  abort or segfault is pinned to one mutant and one phase.

Per mutant the worker:

1. opens it (``open_checkpoint``) and reads every entry (``Checkpoint.read``, what the
   browser does on a click);
2. plans and restores into eager variables holding sentinel values;
3. plans and restores into graph-mode variables (a fresh graph and session), same check;
4. records every exception: a ``ckptwidgets.CheckpointError`` subclass is expected, any
   other type is a finding;
5. checks the variables: after a failed restore each one must still hold its sentinel
   (nothing half-restored); after a successful one each must hold exactly the original
   value. TensorFlow checks the crc32c of every index block and of every tensor's bytes,
   so a random mutation can never slip a changed value through. Mutants whose index blocks
   got fresh checksums (``fix_crc``) get past TensorFlow's block checks on purpose, to reach
   the entry parser; a successful restore of one of those must hold exactly what
   TensorFlow's own reader (``tf.train.load_checkpoint(...).get_tensor``) returns for the
   key each variable was mapped to.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import struct
import subprocess
import sys
import time

from _bundle_bytes import block_handles, read_varint, reseal

# --- the source checkpoints ---------------------------------------------------------------

#: Name-based source: name -> (dtype, shape). Float variables also get EMA shadows.
NAMED = {
    "dense/kernel": ("float32", (3, 4)),
    "dense/bias": ("float64", (4,)),
    "emb": ("float16", (5, 2)),
    "counts": ("int32", (2, 3)),
    "mask": ("bool", (6,)),
    "ids": ("int64", (40,)),
    "labels": ("string", (3,)),
}
NAMED_EMA = ("dense/kernel", "dense/bias")
#: Object-based source (``tf.train.Checkpoint(net=module)``): object path -> (dtype, shape).
OBJECT = {
    "net/l1/kernel": ("float32", (2, 3)),
    "net/l1/bias": ("float32", (3,)),
    "net/scale": ("float64", ()),
    "net/ids": ("int32", (4,)),
}


def _original(name, dtype, shape, seed):
    """A value no sentinel equals, element by element."""
    import numpy as np

    rng = np.random.default_rng(seed)
    if dtype == "string":
        words = [b"alpha", "\u53d8\u91cf".encode(), b"", b"<b>", b"x\x00y"]
        return np.array([words[i % len(words)] for i in range(int(np.prod(shape)))], dtype=object).reshape(shape)
    if dtype == "bool":
        return (np.arange(int(np.prod(shape))) % 3 == 0).reshape(shape)
    if dtype.startswith("int"):
        return rng.integers(1, 1000, size=shape).astype(dtype)
    return (1.0 + rng.random(size=shape)).astype(dtype)


def _sentinel(dtype, shape, original):
    import numpy as np

    if dtype == "string":
        return np.full(shape, b"sentinel", dtype=object)
    if dtype == "bool":
        return ~original
    return np.full(shape, -7, dtype=dtype)


def build_sources(root) -> dict:
    """Write the two source checkpoints under ``root``; return ``{kind: prefix}``."""
    import ckptwidgets

    tf = ckptwidgets.import_tensorflow()  # without its C++ start-up log lines

    v1 = tf.compat.v1
    root = os.fspath(root)
    named_prefix = os.path.join(root, "named", "model.ckpt")
    os.makedirs(os.path.dirname(named_prefix), exist_ok=True)
    graph = tf.Graph()
    with graph.as_default():
        variables = {}
        for i, (name, (dtype, shape)) in enumerate(NAMED.items()):
            variables[name] = v1.Variable(_original(name, dtype, shape, i), name=name, dtype=dtype)
        ema = v1.train.ExponentialMovingAverage(0.9)
        update = ema.apply([variables[n] for n in NAMED_EMA])
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            sess.run(update)
            sess.run(update)
            named_prefix = v1.train.Saver().save(sess, named_prefix)

    class Layer(tf.Module):
        def __init__(self):
            super().__init__()
            self.kernel = tf.Variable(_original("k", "float32", (2, 3), 11))
            self.bias = tf.Variable(_original("b", "float32", (3,), 12))

    class Net(tf.Module):
        def __init__(self):
            super().__init__()
            self.l1 = Layer()
            self.scale = tf.Variable(_original("s", "float64", (), 13))
            self.ids = tf.Variable(_original("i", "int32", (4,), 14))

    object_prefix = tf.train.Checkpoint(net=Net()).write(os.path.join(root, "object", "ckpt-1"))
    return {"named": named_prefix, "object": object_prefix}


# --- the index's entries --------------------------------------------------------------


def index_entries(buf: bytes) -> dict:
    """``{key: BundleEntryProto}`` of an intact ``.index`` file (the header entry ``""`` left out)."""
    from tensorflow.core.protobuf import tensor_bundle_pb2

    out = {}
    for offset, size in block_handles(buf)[1:]:
        block = buf[offset : offset + size]
        (restarts,) = struct.unpack_from("<I", block, len(block) - 4)
        limit = len(block) - 4 - 4 * restarts
        pos, key = 0, b""
        while pos < limit:
            shared, pos = read_varint(block, pos)
            unshared, pos = read_varint(block, pos)
            length, pos = read_varint(block, pos)
            key = key[:shared] + block[pos : pos + unshared]
            pos += unshared
            if key:
                out[key.decode()] = tensor_bundle_pb2.BundleEntryProto.FromString(block[pos : pos + length])
            pos += length
    return out


# --- mutants ----------------------------------------------------------------------------

OPS = ("bitflip", "truncate", "zero", "random")


def _mutate(data: bytes, op: str, rng: random.Random, lo: int = 0, hi: int | None = None):
    """Return ``(mutated bytes, description)``; positions drawn in ``[lo, hi)``."""
    buf = bytearray(data)
    hi = len(buf) if hi is None else hi
    if not buf or hi <= lo:
        return bytes(buf), f"{op} of an empty range: unchanged"
    if op == "bitflip":
        flips = [(rng.randrange(lo, hi), rng.randrange(8)) for _ in range(rng.choice((1, 1, 1, 2, 3, 8)))]
        for pos, bit in flips:
            buf[pos] ^= 1 << bit
        return bytes(buf), "flip " + ", ".join(f"bit {b} of byte {p}" for p, b in flips)
    if op == "truncate":
        cut = rng.randrange(lo, hi)
        return bytes(buf[:cut]), f"truncate to {cut} of {len(buf)} bytes"
    start = rng.randrange(lo, hi)
    length = min(rng.choice((1, 2, 4, 8, 16, 64, 512)), len(buf) - start)
    if op == "zero":
        buf[start : start + length] = bytes(length)
        return bytes(buf), f"zero bytes [{start}, {start + length})"
    buf[start : start + length] = bytes(rng.randrange(256) for _ in range(length))
    return bytes(buf), f"random bytes [{start}, {start + length})"


def make_mutants(sources: dict, root, count: int, seed: int = 0) -> list[dict]:
    """Write ``count`` mutated copies of the sources under ``root``; return their specs.

    Each mutant changes one file of one source (its ``.index`` about half the time, else its
    data shard) by one operation of :data:`OPS`. A third of the index mutations fall inside
    the index's blocks and get their block checksums recomputed (``fix_crc``), so that
    TensorFlow's entry parser, not its checksum, meets the damage.
    """
    rng = random.Random(seed)
    root = os.fspath(root)
    files = {}
    for kind, prefix in sources.items():
        with open(prefix + ".index", "rb") as f:
            index = f.read()
        with open(prefix + ".data-00000-of-00001", "rb") as f:
            data = f.read()
        files[kind] = (prefix, index, data, block_handles(index))
    specs = []
    kinds = sorted(sources)
    for i in range(count):
        kind = kinds[i % len(kinds)]
        prefix, index, data, handles = files[kind]
        op = rng.choice(OPS)
        target = "index" if rng.random() < 0.5 else "data"
        fix_crc = False
        if target == "index":
            fix_crc = op != "truncate" and rng.random() < 1 / 3
            body_end = max(o + s for o, s in handles)  # the blocks, not their trailers or the footer
            new_index, what = _mutate(index, op, rng, 0, body_end if fix_crc else None)
            if fix_crc:
                new_index = bytearray(new_index)
                reseal(new_index, handles)
                new_index = bytes(new_index)
            new_data = data
        else:
            new_data, what = _mutate(data, op, rng)
            new_index = index
        folder = os.path.join(root, f"m{i:04d}")
        os.makedirs(folder, exist_ok=True)
        base = os.path.join(folder, os.path.basename(prefix))
        with open(base + ".index", "wb") as f:
            f.write(new_index)
        with open(base + ".data-00000-of-00001", "wb") as f:
            f.write(new_data)
        specs.append({"id": i, "kind": kind, "prefix": base, "file": target, "op": op, "fix_crc": fix_crc,
                      "what": what, "changed": new_index != index or new_data != data})
    return specs


# --- the worker ---------------------------------------------------------------------------


def _emit(record):
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


class _Worker:
    def __init__(self, sources, announce=True):
        self.announce = announce  # print the progress lines a parent uses to pin a crash
        import numpy as np

        import ckptwidgets

        tf = ckptwidgets.import_tensorflow()

        self.np, self.tf, self.ck = np, tf, ckptwidgets
        self.layout = {"named": dict(NAMED), "object": dict(OBJECT)}
        self.layout["named"]["kernel_ema"] = NAMED["dense/kernel"]
        self.rules = {"named": {"dense/kernel/ExponentialMovingAverage": "kernel_ema"}, "object": None}
        self.originals, self.sentinels = {}, {}
        for kind, prefix in sources.items():
            reader = tf.train.load_checkpoint(prefix)
            plan = ckptwidgets.plan_restore(prefix, self._eager(kind, zeros=True), rules=self.rules[kind])
            assert plan.ok and not plan.unmapped, plan
            self.originals[kind] = {n: reader.get_tensor(k) for n, k in plan.mapping.items()}
            self.sentinels[kind] = {
                n: _sentinel(self.layout[kind][n][0], self.layout[kind][n][1], v) for n, v in self.originals[kind].items()
            }

    def _eager(self, kind, zeros=False):
        tf = self.tf
        out = {}
        for name, (dtype, shape) in self.layout[kind].items():
            value = self.np.zeros(shape, dtype=object if dtype == "string" else dtype) if zeros else self.sentinels[kind][name]
            if dtype == "string" and zeros:
                value = self.np.full(shape, b"", dtype=object)
            out[name] = tf.Variable(value, dtype=dtype)
        return out

    def _same(self, a, b) -> bool:
        np = self.np
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        if a.dtype.kind == "f":  # bitwise, so that NaN payloads and -0.0 count
            return a.tobytes() == b.tobytes()
        return bool(np.array_equal(a, b))

    def _check(self, kind, values, restored, expected):
        """'restored', 'unchanged' or a description of what is wrong.

        After a restore, mapped variables must hold ``expected`` and unmapped ones (a key
        renamed by the mutation) their sentinel; after a failure every one its sentinel.
        """
        want = dict(self.sentinels[kind])
        if restored:
            want.update(expected)
        bad = [n for n, v in values.items() if not self._same(v, want[n])]
        if not bad:
            return "restored" if restored else "unchanged"
        return ("WRONG VALUES after a successful restore: " if restored else "HALF-RESTORED: ") + ", ".join(bad)

    def run(self, spec):
        ck, tf = self.ck, self.tf
        kind, prefix = spec["kind"], spec["prefix"]
        result = {"id": spec["id"], "errors": [], "other": []}

        def note(phase, error):
            entry = {"phase": phase, "type": type(error).__name__, "message": str(error)[:400]}
            if isinstance(error, ck.CheckpointError):
                result["errors"].append(entry)
            else:
                result["other"].append(entry)

        def phase(name):
            if self.announce:
                _emit({"begin": spec["id"], "phase": name})

        phase("open")
        if spec.get("simulate") == "abort":  # the harness's own test: a process killed mid-mutant
            os.abort()
        try:
            ckpt = ck.open_checkpoint(prefix)
        except Exception as error:
            note("open", error)
            result["outcome"] = "open:" + type(error).__name__
            return result
        phase("read")
        reads = {"ok": 0, "failed": 0}
        for entry in ckpt.entries:
            try:
                ckpt.read(entry.key)
                reads["ok"] += 1
            except Exception as error:
                reads["failed"] += 1
                note("read", error)
        result["reads"] = reads

        outcomes = []
        for mode in ("eager", "graph"):
            phase(mode)
            outcome, check = self._restore(kind, ckpt, mode, note, spec, phase)
            result[mode] = check
            outcomes.append(outcome)
        result["outcome"] = outcomes[0] if outcomes[0] == outcomes[1] else "/".join(outcomes)
        result["keys"] = sorted(spec.pop("_keys", ()))
        return result

    def _expected(self, ckpt, plan, spec, kind, phase):
        if not spec.get("fix_crc"):
            return self.originals[kind]  # every variable, mapped or not: the index cannot have changed
        phase("tf-reference-read")
        reader = self.tf.train.load_checkpoint(ckpt.prefix)
        return {n: reader.get_tensor(k) for n, k in plan.mapping.items()}

    def _restore(self, kind, ckpt, mode, note, spec, phase):
        ck, tf = self.ck, self.tf
        if mode == "eager":
            variables, session, graph = self._eager(kind), None, None
        else:
            graph = tf.Graph()
            with graph.as_default():
                variables = {
                    n: tf.compat.v1.Variable(self.sentinels[kind][n], name=f"var{i}", dtype=d)
                    for i, (n, (d, _s)) in enumerate(self.layout[kind].items())
                }
                init = tf.compat.v1.global_variables_initializer()
            session = tf.compat.v1.Session(graph=graph)
            session.run(init)

        def values():
            if session is not None:
                return dict(zip(variables, session.run(list(variables.values()))))
            return {n: v.numpy() for n, v in variables.items()}

        try:
            try:
                plan = ck.plan_restore(ckpt, variables, rules=self.rules[kind])
            except Exception as error:
                note(f"{mode} plan", error)
                return "plan:" + type(error).__name__, self._check(kind, values(), False, None)
            keys = spec.setdefault("_keys", set())
            keys.update(plan.mapping.values())
            try:
                ck.restore(plan, session=session)
            except Exception as error:
                note(f"{mode} restore", error)
                return "restore:" + type(error).__name__, self._check(kind, values(), False, None)
            expected = self._expected(ckpt, plan, spec, kind, phase)
            return "restored", self._check(kind, values(), True, expected)
        finally:
            if session is not None:
                session.close()


def worker_main(argv):
    try:  # a crash is reported with its mutant, which reproduces it: no core files
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ImportError, ValueError, OSError):
        pass
    with open(argv[1]) as f:
        job = json.load(f)
    worker = _Worker(job["sources"])
    _emit({"ready": True})
    for spec in job["specs"]:
        try:
            result = worker.run(spec)
        except BaseException as error:  # a bug of this harness or the package, reported as such
            result = {"id": spec["id"], "outcome": "harness:" + type(error).__name__,
                      "other": [{"phase": "harness", "type": type(error).__name__, "message": str(error)[:400]}],
                      "errors": []}
        _emit(result)


# --- the parent side ------------------------------------------------------------------------


def _run_worker(sources, specs, workdir, timeout):
    """Run one worker over ``specs``; return ``(results, died_on, tail)``.

    ``died_on`` is ``(spec id, phase)`` of the mutant being worked on when the worker died,
    or None when it finished.
    """
    job = os.path.join(workdir, f"job-{specs[0]['id']:04d}-{len(specs)}.json")
    with open(job, "w") as f:
        json.dump({"sources": sources, "specs": specs}, f)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONFAULTHANDLER="1")
    try:
        proc = subprocess.run([sys.executable, __file__, job], capture_output=True, text=True, timeout=timeout, env=env)
        stdout, stderr, code = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as expired:
        stdout = expired.stdout.decode() if isinstance(expired.stdout, bytes) else (expired.stdout or "")
        stderr = expired.stderr.decode() if isinstance(expired.stderr, bytes) else (expired.stderr or "")
        code = "timeout"
    results, current = {}, None
    ready = False
    for line in stdout.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if "ready" in record:
            ready = True
        elif "begin" in record:
            current = (record["begin"], record["phase"])
        elif "id" in record:
            results[record["id"]] = record
            current = None
    if len(results) == len(specs):
        return results, None, None
    tail = f"exit {code}; stderr: " + "\n".join(stderr.strip().splitlines()[-15:])
    if not ready:
        raise RuntimeError(f"the fuzz worker did not start: {tail}")
    if current is None:  # died between mutants: blame the next one
        done = set(results)
        current = (next(s["id"] for s in specs if s["id"] not in done), "start")
    return results, current, tail


def run_mutants(sources, specs, workdir, batch=250, timeout=600):
    """Run every spec in worker subprocesses; return ``(results, crashes)``.

    A worker that dies (abort, segfault, timeout) is restarted after the mutant it was
    working on; that mutant is run once more alone to confirm it kills a fresh process
    (the result of a bisection, found directly from the worker's progress lines).
    """
    results, crashes = {}, []
    by_id = {s["id"]: s for s in specs}
    pending = list(specs)
    while pending:
        chunk, pending = pending[:batch], pending[batch:]
        while chunk:
            got, died, tail = _run_worker(sources, chunk, workdir, timeout)
            results.update(got)
            if died is None:
                break
            culprit, phase = died
            alone, again, tail_alone = _run_worker(sources, [by_id[culprit]], workdir, timeout)
            crashes.append({**by_id[culprit], "phase": phase, "worker": tail,
                            "reproduced_alone": again is not None, "alone": tail_alone})
            results[culprit] = {"id": culprit, "outcome": "CRASH", "errors": [], "other": []}
            chunk = [s for s in chunk if s["id"] not in results]
    return results, crashes


def summarize(specs, results) -> dict:
    """Counts per (file, op, outcome)."""
    counts: dict = {}
    for spec in specs:
        r = results.get(spec["id"], {"outcome": "MISSING"})
        key = f"{spec['kind']:6} {spec['file']:5} {spec['op']:8}{' fix_crc' if spec['fix_crc'] else '        '} -> {r['outcome']}"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def _cli():
    """``python tests/_fuzz_worker.py --fuzz N [--seed S] [--dir D]``: a stand-alone run."""
    import argparse
    import tempfile

    parser = argparse.ArgumentParser()
    parser.add_argument("--fuzz", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir")
    args = parser.parse_args()
    root = args.dir or tempfile.mkdtemp(prefix="ckptfuzz-")
    start = time.time()
    sources = build_sources(os.path.join(root, "sources"))
    specs = make_mutants(sources, os.path.join(root, "mutants"), args.fuzz, args.seed)
    results, crashes = run_mutants(sources, specs, root)
    for line, n in summarize(specs, results).items():
        print(f"{n:5d}  {line}")
    bad = [r for r in results.values() if r.get("other") or any(
        str(r.get(m, "")).startswith(("HALF", "WRONG")) for m in ("eager", "graph"))]
    print(json.dumps({"crashes": crashes, "bad": bad[:20], "n_bad": len(bad), "seconds": round(time.time() - start, 1)},
                     indent=1, ensure_ascii=False))
    if not args.dir:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1].endswith(".json"):
        worker_main(sys.argv)
    else:
        _cli()
