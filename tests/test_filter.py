"""The one filter language: the command line's --filter, the browser's and the mapper's filter boxes."""
from __future__ import annotations

import numpy as np
import pytest

import ckptwidgets
from ckptwidgets import CheckpointBrowser, VariableMapper, open_checkpoint
from ckptwidgets._text import filter as _filter, format as _format
from ckptwidgets.__main__ import main
from ckptwidgets._text.filter import FILTER_SYNTAX, filter_entries, filter_names, parse_filter
from ckptwidgets.errors import PlanError
from ckptwidgets.reader import KINDS, Entry
from ckptwidgets.widgets._mapper_model import MapperModel

tf = ckptwidgets.import_tensorflow()
v1_ = tf.compat.v1


def entry(key, kind="variable", base=None):
    return Entry(key, key, (), "float32", 4, kind, base)


ENTRIES = [
    entry("Dense/kernel"),
    entry("dense/bias"),
    entry("dense/kernel/Adam", "slot", "Dense/kernel"),
    entry("dense/kernel/ExponentialMovingAverage", "ema", "Dense/kernel"),
    entry("global_step", "meta"),
    entry("block 1/conv"),
    entry("a.b[0]$x$ <img src=x>"),
    entry("变量/权重"),
]


def keys(text, kinds=None):
    return [e.key for e in filter_entries(ENTRIES, text, kinds)]


# --- the language -------------------------------------------------------------------------


def test_words_are_case_insensitive_substrings_and_all_must_hold():
    assert keys("") == keys("   ") == [e.key for e in ENTRIES]
    assert keys("KERNEL") == ["Dense/kernel", "dense/kernel/Adam", "dense/kernel/ExponentialMovingAverage"]
    assert keys("dense kernel adam") == ["dense/kernel/Adam"]
    assert keys("dense\tbias\n") == ["dense/bias"]


def test_bang_word_excludes():
    assert keys("dense !adam !moving") == ["Dense/kernel", "dense/bias"]
    assert keys("!E") == ["block 1/conv", "a.b[0]$x$ <img src=x>", "变量/权重"]


def test_words_are_plain_text_not_patterns():
    assert keys("a.b[0]") == keys("$x$") == keys("<img") == ["a.b[0]$x$ <img src=x>"]
    assert keys(".*") == [] and keys("^dense") == []
    assert keys("变量") == ["变量/权重"]


def test_quotes_hold_spaces():
    assert keys('"block 1"') == ["block 1/conv"]
    assert keys('!"block 1"') == [e.key for e in ENTRIES if e.key != "block 1/conv"]
    assert keys('"x$ <img"') == ["a.b[0]$x$ <img src=x>"]
    # A quote left open runs to the end (a box passes through it while one types).
    assert keys('"block 1') == ["block 1/conv"]
    # A quote opens only at the start of a term; inside a word it is a character.
    assert parse_filter('a"b').include == ('a"b',)
    # Quoted text is always a word: how to look for "!" or "kind:" in keys.
    assert parse_filter('"!x" "kind:slot"').include == ("!x", "kind:slot")


def test_empty_terms_keep_everything():
    for text in ("!", '""', '!""', "! !"):
        assert parse_filter(text).empty, text
        assert keys(text) == [e.key for e in ENTRIES]


def test_kind_terms():
    assert keys("kind:slot") == ["dense/kernel/Adam"]
    assert keys("!kind:slot dense") == ["Dense/kernel", "dense/bias", "dense/kernel/ExponentialMovingAverage"]
    assert keys("kind:variable,ema dense") == ["Dense/kernel", "dense/bias", "dense/kernel/ExponentialMovingAverage"]
    assert keys("!kind:slot,meta,variable") == ["dense/kernel/ExponentialMovingAverage"]
    assert keys("KIND:Meta") == ["global_step"]
    # All terms hold: two kind terms intersect.
    assert keys("kind:variable,ema !kind:variable") == ["dense/kernel/ExponentialMovingAverage"]
    assert keys("kind:slot kind:meta") == []
    assert parse_filter("kind:ema,slot").kinds == frozenset({"ema", "slot"})
    assert parse_filter("!kind:ema").kinds == frozenset(KINDS) - {"ema"}
    assert parse_filter("dense").kinds is None
    # Kinds of the caller (the browser's boxes, the CLI's --kind) apply too.
    assert keys("kind:variable,slot", kinds={"slot", "meta"}) == ["dense/kernel/Adam"]
    assert keys("dense", kinds=["ema"]) == ["dense/kernel/ExponentialMovingAverage"]


@pytest.mark.parametrize(
    "text, term, wrong",
    [("kind:slots", "kind:slots", "'slots'"), ("dense !kind:slot,Weights", "!kind:slot,Weights", "'weights'"),
     ("kind:", "kind:", None), ("!kind:,", "!kind:,", None)],
)
def test_bad_kind_terms_name_the_term_and_the_kinds(text, term, wrong):
    with pytest.raises(PlanError) as info:
        parse_filter(text)
    message = str(info.value)
    assert repr(term) in message and "variable, ema, slot, meta" in message and "\n" not in message
    if wrong:
        assert f"Unknown kind {wrong}" in message
    assert isinstance(info.value, ckptwidgets.CheckpointError)


def test_a_filter_is_text():
    with pytest.raises(PlanError, match="not int: 3"):
        parse_filter(3)
    assert parse_filter(None).empty


def test_names_take_words_but_no_kinds():
    names = ["net/l1/kernel", "net/l1/bias", "net/l2/kernel", "head block/w"]
    assert filter_names(names, "L1 !bias") == ["net/l1/kernel"]
    assert filter_names(names, '"head block"') == ["head block/w"]
    assert filter_names(names, "") == names
    for text in ("kind:slot", "kernel !kind:slot"):
        with pytest.raises(PlanError, match=r"kinds \(variable, ema, slot, meta\) apply to checkpoint entries"):
            filter_names(names, text)


def test_one_implementation():
    # _format re-exports the language; the widgets and the CLI import it from _filter.
    assert _format.filter_entries is _filter.filter_entries and _format.filter_names is _filter.filter_names
    assert "!kind:slot" in FILTER_SYNTAX and all(kind in FILTER_SYNTAX for kind in KINDS)


def test_ten_thousand_entries_filter_fast_enough_for_typing():
    import time

    many = [entry(f"layer_{i:05d}/kernel", "slot" if i % 3 else "variable") for i in range(10_000)]
    parsed = parse_filter("layer_0 kernel !layer_00 !kind:slot")
    start = time.perf_counter()
    kept = parsed.entries(many)
    seconds = time.perf_counter() - start
    assert [e.key for e in kept][:2] == ["layer_01002/kernel", "layer_01005/kernel"]
    assert seconds < 0.5, seconds  # about 5 ms; a keystroke must not lag


# --- TF1 and TF2 optimizer slots: !kind:slot covers both, !Adam only TF1 ----------------


@pytest.fixture(scope="module")
def tf1_adam(tmp_path_factory):
    """A Saver checkpoint after one Adam step: w, w/Adam, w/Adam_1, beta1_power, beta2_power."""
    graph = tf.Graph()
    with graph.as_default():
        w = v1_.Variable([1.0, 2.0], name="dense/kernel")
        train = v1_.train.AdamOptimizer(0.1).minimize(v1_.reduce_sum(w * w))
        with v1_.Session(graph=graph) as sess:
            sess.run(v1_.global_variables_initializer())
            sess.run(train)
            return v1_.train.Saver().save(sess, str(tmp_path_factory.mktemp("tf1") / "adam.ckpt"))


@pytest.fixture(scope="module")
def tf2_adam(tmp_path_factory):
    """An object-based checkpoint after one Adam step: slots under /.OPTIMIZER_SLOT/ named m and v."""
    w = tf.Variable([1.0, 2.0])
    optimizer = v1_.train.AdamOptimizer(0.1)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(w * w)
    optimizer.apply_gradients([(tape.gradient(loss, w), w)])
    return tf.train.Checkpoint(dense=tf.Module(), kernel=w, optimizer=optimizer).write(
        str(tmp_path_factory.mktemp("tf2") / "adam"))


@pytest.mark.parametrize("which", ["tf1_adam", "tf2_adam"])
def test_bang_kind_slot_hides_optimizer_state_in_tf1_and_tf2(which, request):
    ckpt = open_checkpoint(request.getfixturevalue(which))
    slots = [e.key for e in ckpt if e.kind == "slot"]
    assert len(slots) == 2
    kept = [e.key for e in filter_entries(ckpt.entries, "!kind:slot")]
    assert kept and not set(kept) & set(slots)
    assert [e.key for e in filter_entries(ckpt.entries, "kind:slot")] == slots
    # What the README warns about: !Adam hides TF1's slots only.
    by_name = [e.key for e in filter_entries(ckpt.entries, "!Adam")]
    if which == "tf1_adam":
        assert not set(by_name) & set(slots)
    else:
        assert set(slots) <= set(by_name) and all(".OPTIMIZER_SLOT" in key for key in slots)


# --- the same language in all three places -------------------------------------------------


def test_cli_browser_and_mapper_agree(tf2_adam, capsys):
    text = "kernel !kind:slot"
    expected = [e.key for e in filter_entries(open_checkpoint(tf2_adam).entries, text)]
    assert expected

    assert main([tf2_adam, "--filter", text]) == 0
    out = capsys.readouterr().out
    rows = [line.split()[0] for line in out.splitlines()[3:3 + len(expected)]]
    assert rows == expected and f"{len(expected)} of " in out.splitlines()[0]

    browser = CheckpointBrowser(tf2_adam)
    browser.filter_box.value = text
    assert [e.key for e in browser.model.matches] == expected

    names = {"net/kernel": tf.Variable([0.0, 0.0]), "net/bias": tf.Variable([0.0, 0.0]),
             "head/kernel": tf.Variable([0.0, 0.0])}
    mapper = VariableMapper(tf2_adam, names)
    mapper.filter_box.value = "KERNEL !head"
    assert mapper.model.rows == ("net/kernel",) == tuple(filter_names(names, "KERNEL !head"))


def test_bad_kind_everywhere(ema_ckpt, capsys):
    assert main([ema_ckpt, "--filter", "kind:slots"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith("error: --filter 'kind:slots': Unknown kind 'slots'") and "variable, ema, slot, meta" in err

    browser = CheckpointBrowser(ema_ckpt)
    browser.filter_box.value = "v2"
    browser.filter_box.value = "v2 kind:slots"
    assert "Unknown kind 'slots'" in browser.filter_message.value
    assert browser.filter_message.layout.display is None
    # The last filter that worked stays applied until the term is fixed.
    assert [e.key for e in browser.model.matches] == ["v2", "v2/ExponentialMovingAverage"]
    browser.filter_box.value = "v2 kind:ema"
    assert browser.filter_message.value == "" and browser.filter_message.layout.display == "none"
    assert [e.key for e in browser.model.matches] == ["v2/ExponentialMovingAverage"]


def test_mapper_box_says_kinds_are_for_entries(base_ckpt):
    names = {"v1": tf.Variable([0.0]), "v2": tf.Variable([0.0])}
    mapper = VariableMapper(base_ckpt, names)
    mapper.filter_box.value = "V2"
    assert mapper.model.rows == ("v2",)
    mapper.filter_box.value = "v !kind:slot"
    message = mapper.filter_message.value
    assert "'!kind:slot'" in message and "apply to checkpoint entries" in message and "no kind" in message
    assert mapper.filter_message.layout.display is None
    assert mapper.model.rows == ("v2",)  # the last filter that worked
    mapper.filter_box.value = '!"v2"'
    assert mapper.model.rows == ("v1",) and mapper.filter_message.value == ""
    assert mapper.filter_message.layout.display == "none"


def test_mapper_model_filter_error_trait(base_ckpt):
    model = MapperModel(base_ckpt, {"v1": tf.Variable([0.0]), "v2": tf.Variable([0.0])})
    model.filter_text = "kind:variable"
    assert "apply to checkpoint entries" in model.filter_error and model.rows == ("v1", "v2")
    model.filter_text = ""
    assert model.filter_error == ""
    # A bad filter stays a message when the rows are recomputed for another reason.
    model.filter_text = "v1 kind:ema"
    model.show = "mapped"
    assert model.filter_error and model.rows == ("v1", "v2")
    assert np.all([model.plan.status(n) == "mapped" for n in model.rows])
