"""Write SRC for another framework: OUT's suffix says the format (.safetensors, .pt, .weights.h5,
else a TF checkpoint prefix), a preset or a model says the names and layouts; without either,
every tensor but the optimizer's keeps its key.

``export SRC OUT --preset NAME`` renames and transposes by a preset of
:mod:`ckptwidgets.presets` (``bert``: a google-research/bert TF1 checkpoint for transformers'
``BertModel``); ``export SRC OUT --model MODULE:FUNCTION`` plans SRC into the Keras model or
``torch.nn.Module`` the function returns (``MODULE`` from the current folder or the Python
path, or a file ``path/to/models.py:build``) and writes what it maps under the model's names,
with the layout transforms the plan found; a ``.weights.h5`` is laid out as that Keras
model's ``save_weights`` would. ``--rule`` renames after the preset, or maps scopes for the
model. ``export SRC OUT`` alone writes every tensor OUT's format holds under its own key (a TF
checkpoint as one ``.safetensors`` file) but the optimizer's slots and counters, as ``strip``
does (no other framework's optimizer reads TF's; ``--keep-optimizer`` writes them too), and
says what it leaves out and why (TF's object graph, ``w/Adam``).
Nothing is read whole: the writers stream one tensor at a time. The first paragraph of this
docstring heads ``export --help``.

Example
-------
>>> from ckptwidgets.cli import parser
>>> args = parser().parse_args(["export", "bert_model.ckpt", "model.safetensors", "--preset", "bert", "--dry-run"])
>>> args.preset, args.model, args.dry_run, args.overwrite
('bert', None, True, False)
"""
from __future__ import annotations

import shlex

from .._text.format import count_of
from ..errors import PlanError
from ._common import PREFER_EMA_HELP, add_source_and_out, add_write_options, command_line_words, rules_of, write_or_show
from ._model_spec import model_builder

HELP = "write a checkpoint for another framework (safetensors, .pt, .weights.h5): by a preset, a model, or its weights under their own keys"

_SHOWN = 3  # reasons named in the error line

EPILOG = (
    "Examples: 'python -m ckptwidgets export bert_model.ckpt model.safetensors --preset bert --dry-run' shows "
    "which key becomes which (transposed, left out and why) and writes nothing; without --dry-run it writes "
    "model.safetensors for transformers' BertModel. 'python -m ckptwidgets export tf1.ckpt net.weights.h5 "
    "--model models.py:build --rule old/=/' writes the weights file of the Keras model build() returns."
)


def add_arguments(parser) -> None:
    """``SRC OUT``, ``--preset`` or ``--model``, ``--rule``, ``--prefer-ema``, the writing options."""
    from ..presets import PRESETS

    add_source_and_out(parser, out="the file to write: .safetensors, .pt, .weights.h5, else a TF checkpoint prefix")
    target = parser.add_mutually_exclusive_group()  # neither: every tensor under its own key
    target.add_argument("--preset", metavar="NAME", help=f"rename and transpose by a preset ({', '.join(PRESETS)})")
    target.add_argument("--model", metavar="MODULE:FUNCTION",
                        help="a function returning a Keras model or a torch.nn.Module (e.g. mymodels:build or "
                        "path/to/models.py:build); MODULE is imported from the current folder or the Python path")
    parser.add_argument("--rule", action="append", metavar="OLD=NEW",
                        help="with --preset (or neither): rename the output keys as 'rename --rule' does (e.g. "
                        "'pooler.dense.weight=pool.weight', '/=bert/'); with --model: map a checkpoint scope to "
                        "the model's (e.g. 'old_scope/=/'); repeat for several")
    parser.add_argument("--prefer-ema", action="store_true", help=PREFER_EMA_HELP)
    parser.add_argument("--keep-optimizer", action="store_true",
                        help="without --preset or --model: write the optimizer's slots and counters too ('w/Adam', "
                        "'beta1_power'), which are left out by default as 'strip' leaves them out")
    add_write_options(parser)


def run(args) -> int:
    """Write (or with ``--dry-run`` show) SRC for the model, the preset, or under its own keys."""
    if args.keep_optimizer and (args.model is not None or args.preset is not None):
        raise PlanError("--keep-optimizer keeps the optimizer's tensors under their own keys: a preset or a model "
                        "maps weights only. Leave out --keep-optimizer, or --preset/--model.")
    if args.model is not None:
        return _export_for_model(args)
    return write_or_show(_key_plan(args), args)


def _key_plan(args):
    """Every tensor of SRC (its shadows promoted with ``--prefer-ema``), renamed by the preset
    (which says what it leaves out), or without one, the optimizer's left out unless
    ``--keep-optimizer``; then renamed by the rules."""
    from ..presets import apply_preset
    from ..write import plan_write

    plan = plan_write(args.src)
    plan = plan.promote_ema() if args.prefer_ema else plan
    if args.preset is not None:
        plan = apply_preset(plan, args.preset)
    elif not args.keep_optimizer:
        plan = plan.strip()
    rules = rules_of(args)
    return plan.rename(rules) if rules else plan


def _export_for_model(args) -> int:
    """Plan SRC into the model, then write what the plan maps under the model's names."""
    import importlib.util

    from .._tf.quiet import import_tensorflow
    from ..plan import plan_restore
    from ..write import from_plan, model_option

    if importlib.util.find_spec("tensorflow") is not None:
        import_tensorflow()  # before the user's module, which would import it with its log lines
    model = model_builder(args.model)()
    plan = plan_restore(args.src, model, rules=rules_of(args), prefer_ema=args.prefer_ema)
    if plan.problems or plan.unmapped:
        if args.dry_run:
            print(command_line_words(str(plan)))
            print("(dry run: nothing written)")
            return 2
        raise PlanError(_does_not_fit(plan, args))
    return write_or_show(from_plan(plan), args, **model_option(args.out, model))


def _does_not_fit(plan, args) -> str:
    """One line: the first reasons the model does not fit SRC, and the rule that would map the most."""
    from .._planning.hints import best_rule

    reasons = [p.message.rstrip(".") for p in plan.problems]
    reasons += [f"variable {name!r} finds no key" for name in plan.unmapped]
    more = f" and {len(reasons) - _SHOWN} more" if len(reasons) > _SHOWN else ""
    text = (f"Nothing was written to {args.out!r}: the model does not fit {args.src!r} ({count_of(len(reasons), 'problem')}): "
            + "; ".join(reasons[:_SHOWN]) + more + ".")
    rule, count = best_rule(plan) if plan.unmapped else ({}, 0)
    if count:
        old, new = next(iter(rule.items()))
        text += f" Try --rule {shlex.quote(f'{old}={new}')} (it maps {count} of the {len(plan.unmapped)} unmapped variables)."
    return text + " --dry-run shows the whole plan."
