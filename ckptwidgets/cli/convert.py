"""Convert a TF1 name-based checkpoint into a TF2 object-based one for the model that
MODULE:FUNCTION builds, as tf.train.Checkpoint(model=...) writes it. Needs TensorFlow.

``convert SRC OUT --model MODULE:FUNCTION``: the one place the package imports a module a user
names; the checkpoint is written by :func:`ckptwidgets.convert.convert`. TensorFlow is imported
quietly before the user's module, which would import it loudly. The first paragraph of this
docstring heads ``convert --help``.

Example
-------
>>> from ckptwidgets.cli import parser
>>> args = parser().parse_args(["convert", "tf1.ckpt", "tf2/ckpt", "--model", "mymodels:build", "--rule", "old/=net/"])
>>> args.model, args.rule, args.prefer_ema
('mymodels:build', ['old/=net/'], False)
"""
from __future__ import annotations


from ._common import PREFER_EMA_HELP, RULES_HELP, add_source_and_out, add_write_options, rules_of
from ._model_spec import model_builder

HELP = "write a TF2 object-based checkpoint for a model"


def add_arguments(parser) -> None:
    """``SRC OUT``, ``--model``, ``--rule``, ``--prefer-ema``, ``--dry-run``, ``--overwrite``."""
    add_source_and_out(parser, out="the TF checkpoint prefix to write (what tf.train.Checkpoint(model=...).read takes)")
    parser.add_argument("--model", required=True, metavar="MODULE:FUNCTION",
                        help="a function that builds the model (a Keras model or tf.Module), e.g. mymodels:build; "
                        "MODULE is imported from the current folder or the Python path")
    parser.add_argument("--rule", action="append", metavar="OLD=NEW", help=RULES_HELP.replace("renames", "maps"))
    parser.add_argument("--prefer-ema", action="store_true", help=PREFER_EMA_HELP)
    add_write_options(parser, state_file=False)


def run(args) -> int:
    """Build the model, convert, say what was written."""
    from .._tf.quiet import import_tensorflow

    # Before the user's module: it imports TensorFlow (or Keras) and would do it loudly.
    import_tensorflow()
    from ..convert import convert

    model = model_builder(args.model)()
    result = convert(args.src, args.out, model, rules=rules_of(args), prefer_ema=args.prefer_ema,
                     overwrite=args.overwrite, dry_run=args.dry_run)
    if args.dry_run:
        print(_plan_text(result))
        print("(dry run: nothing written)")
        return 0
    print(f"{result}: a TF2 object-based checkpoint for tf.train.Checkpoint(model=...)")
    return 0


def _plan_text(plan) -> str:
    """What a conversion would do: each variable of the model and the key it is loaded from."""
    from .._text.format import count_of, format_shape, text_table

    rows = [[a.name, a.key, format_shape(a.info.shape), a.info.dtype] for a in plan.assignments]
    head = (f"Load {count_of(len(rows), 'variable')} of the model from {plan.checkpoint.prefix!r}, then write them "
            "as a TF2 object-based checkpoint:")
    return head + "\n" + text_table(["variable", "key", "shape", "dtype"], rows)
