"""Checks for the exercises of notebook 08, *Migrate a TF1 checkpoint to Keras 3*.

Each check prints one line, ``Correct: ...`` or ``Not yet: <hint>``; see
:mod:`ckptwidgets.checks`. :func:`mapper_maps_the_logits` reads the plan of a
:class:`~ckptwidgets.VariableMapper`, so the exercise is done in the widget (a key picked in a
dropdown, or a rule typed in the rules box); :func:`weights_file_key` reads the written
``.weights.h5`` through :func:`ckptwidgets.open_checkpoint`.

Example
-------
>>> mapper_maps_the_logits("mapper")
Not yet: pass the VariableMapper itself to the check, not a str.
>>> weights_file_key(TODO, "net.weights.h5")
Not yet: replace TODO with the dataset's path inside the file, a str like 'layers/<...>/vars/<i>'.
"""
from __future__ import annotations

from ._answers import is_todo, plan_of
from . import TODO, check, correct, not_yet  # the docstrings' examples use TODO

__all__ = ["mapper_maps_the_logits", "weights_file_key", "EXPECTED_MAPPING"]

#: Notebook 08's answer: the Keras 3 variables and the TF1 keys they take.
EXPECTED_MAPPING = {
    "net/hidden/kernel": "mlp/hidden/kernel",
    "net/hidden/bias": "mlp/hidden/bias",
    "net/logits/kernel": "mlp/output/kernel",
    "net/logits/bias": "mlp/output/bias",
}


@check
def mapper_maps_the_logits(mapper, expected=None, renamed=("output", "logits")):
    """Every variable of the mapper's plan takes its TF1 weights (``expected``: {variable: key})."""
    expected = dict(EXPECTED_MAPPING if expected is None else expected)
    plan, model = plan_of(mapper)
    if model is None:
        return not_yet(f"pass the VariableMapper itself to the check, not a {type(mapper).__name__}.")
    old, new = renamed
    for problem in plan.problems:
        if problem.variable in expected:
            return not_yet(f"the mapper shows a problem for {problem.variable!r}: {problem.message}")
    picks = set(getattr(model, "manual_picks", ()))  # rows whose key was picked by hand
    for name, key in expected.items():
        got = plan.key_of(name)
        # A rule cannot change a row picked by hand: every hint for one says how to free it.
        picked = name in picks
        free = ""
        if picked:
            free = (" It was picked by hand (its row says '✎ by hand'), and rules never change a pick: "
                    + ("click 'Let rules decide' above the table, and the rules give it the right key."
                       if model.automatic_key(name) == key else
                       "click 'Let rules decide' above the table before adding a rule, or pick in the dropdown."))
        if got is None:
            return not_yet(
                f"{name!r} has no key yet: pick one in its dropdown (the 2018 code called this layer {old!r}), "
                f"or add the rule 'mlp/{old}/ -> net/{new}/' to the rules box.{free}"
            )
        if got != key:
            entry = plan.checkpoint.find(got)
            if entry is not None and entry.kind == "slot":
                return not_yet(
                    f"{name!r} takes {got!r}, an optimizer slot (Adam's running average) of the same shape: "
                    f"pick the weights themselves, the key without the optimizer's suffix.{free}"
                )
            leaf = name.rsplit("/", 1)[-1]
            return not_yet(
                f"{name!r} takes {got!r}, which is not this layer's {leaf!r}: look for the key ending in "
                f"'/{leaf}' under the scope the 2018 code gave this layer ('mlp/{old}/' for {new!r}).{free}"
            )
    return correct(
        f"all {len(expected)} variables take the 2018 weights; the two of {new!r} come from the scope "
        f"'mlp/{old}/' (a dropdown each, or one rule 'mlp/{old}/ -> net/{new}/')."
    )


@check
def weights_file_key(answer, path, name="hidden/vars/1", variable="net/hidden/bias"):
    """``answer`` is the dataset path, inside the Keras weights file ``path``, of the record ``name``."""
    from ..reader import open_checkpoint

    if is_todo(answer):
        return not_yet("replace TODO with the dataset's path inside the file, a str like 'layers/<...>/vars/<i>'.")
    if not isinstance(answer, str):
        return not_yet(f"the path is a str, like 'layers/<...>/vars/<i>'; that is a {type(answer).__name__}.")
    ckpt = open_checkpoint(str(path))
    entry = ckpt.find(name)
    if entry is None:
        return not_yet(f"{str(path)!r} holds no {name!r}: run the cells above that write it first.")
    answer = answer.strip().strip("/")
    layer = name.split("/", 1)[0]
    if answer == entry.key:
        return correct(
            f"{variable!r} is {entry.key!r}: Keras 3 files each layer under layers/<class name in snake_case, "
            "counted> (dense, then dense_1 for the second Dense) and its variables by index (kernel 0, bias 1)."
        )
    if answer == name:
        return not_yet(
            f"{name!r} is the name ckptwidgets shows (the layer's own name); the key is the dataset's path in "
            "the file, where Keras names the layer by its class instead."
        )
    if f"/{layer}/" in f"/{answer}/":
        return not_yet(
            f"Keras does not use the layer's name {layer!r} in the path, but its class name in snake_case with "
            "a counter: 'dense' for the first Dense of the model, 'dense_1' for the second."
        )
    other = ckpt.find(answer)
    if other is None:
        return not_yet(f"the file has no dataset {answer!r}; its paths look like {ckpt.entries[0].key!r}.")
    group, _, index = entry.key.rpartition("/")
    if other.key.rpartition("/")[0] == group:
        return not_yet(
            f"{answer!r} is the right layer, but variable {other.key.rpartition('/')[2]} of it (shape "
            f"{list(other.shape)}); a Dense layer saves its kernel first, then its bias."
        )
    return not_yet(
        f"{answer!r} is {other.name!r}, a variable of another layer; count the Dense layers of the model up to "
        f"the one named {layer!r}: the first is 'dense', the second 'dense_1'."
    )
