"""Plan a restore: which checkpoint key goes into which variable, checked before anything runs.

Example
-------
>>> import os, tempfile
>>> import tensorflow as tf
>>> import ckptwidgets
>>> source = {"v1": tf.Variable([1.0]), "v2": tf.Variable([2.0])}
>>> path = os.path.join(tempfile.mkdtemp(), "my_test_model.ckpt")
>>> path = tf.compat.v1.train.Saver(source).save(None, path)
>>> other = tf.Variable([0.0], name="other-v1")
>>> plan = ckptwidgets.plan_restore(path, [other], rules={"v1": "other-v1"})
>>> plan.mapping, plan.ok, [e.key for e in plan.unused]
({'other-v1': 'v1'}, True, ['v2'])
>>> ckptwidgets.restore(plan).restored
[('other-v1', 'v1')]
>>> other.numpy()
array([1.], dtype=float32)

Matching, per variable (dict lookups only, never a scan of the entries per variable):

1. ``rules``, with ``tf.compat.v1.train.init_from_checkpoint`` semantics:
   ``{"ckpt_scope/": "var_scope/"}``, ``"/"`` or ``""`` for the root on either side, and
   ``{"ckpt_key": "var_name"}`` (or ``{"ckpt_key": variable}``) for one variable. The most
   specific variable-side rule that yields a key present in the checkpoint wins (an exact
   name rule, then longer scopes, then the root). Two rules of one specificity giving two
   different present keys: problem ``duplicate_variable``.
2. Else the exact name (``ckpt.find(name)``: a key, or an object-based entry's name).
   A one-name rule whose key is absent (and no exact match) is kept: ``missing_key``.
   For a trackable root (module / Keras model), a variable that found nothing by its name is
   tried again, rules then exact, under its object path (``_functional/_operations/1/_kernel``).
3. ``prefer_ema=True``: when ``<matched name>/ExponentialMovingAverage`` exists, that shadow key
   replaces the match.
4. A Keras 3 model root and a checkpoint that is no Keras file: a variable still unmapped whose
   name begins with the model's own name (``classifier/dense/kernel``, an artifact of Keras 3
   paths) is tried again, rules then exact, without it (``dense/kernel``, as TF1 and Keras 2
   name it); ``plan.hints`` says so.

A Keras 3 model root's variables are those Keras saves (its ``weights``): a ``SeedGenerator``'s
state, which ``model.variables`` also lists and no Keras format stores, is not in the plan.

Structure, where the checkpoint has one (between the rules and the names of step 2):

- TF2 checkpoint, trackable root (a Keras 3 model, ``tf.train.Checkpoint(model=m)``, a
  ``tf.Module``): the checkpoint's object graph is walked from its root in parallel with the
  live objects, child by child by local name, as ``tf.train.Checkpoint.restore`` does
  (:mod:`ckptwidgets._planning.graph_match`), so a Keras 3 kernel keyed
  ``optimizer/_trainable_variables/0/...`` still finds its key. A bare model planned against
  ``tf.train.Checkpoint(model=m).write(...)`` is matched under the child ``model`` (and the
  other way round); ``plan.hints`` says so.
- Keras 3 file (``.weights.h5``, ``.keras``), Keras 3 model root: each variable gets the
  dataset ``model.load_weights`` reads into it (``layers/dense_1/vars/0``); keys the file
  lacks are ``missing_key`` problems. Keras variables in a list or dict are placed by their
  owner's name and their order (:mod:`ckptwidgets._planning.keras_match`).
- Legacy Keras 2 ``.h5``, Keras model root (Keras 3 or tf_keras): each of the model's layers
  takes the weights of the file's layer of the same name, in order, and the model's own weights
  ``top_level_model_weights``: ``model.load_weights(path, by_name=True)``. Layers the file
  lacks stay unmapped and ``plan.hints`` names them; ``match="order"`` is Keras' default for
  an ``.h5``, by position.

A ``torch.nn.Module`` (recognised through ``sys.modules``: nothing imports torch to look at
another object) is planned into its ``state_dict(keep_vars=True)`` names, parameters and
buffers: rules (a side ending in ``.`` is a scope too: ``{"old.": "new."}``), then the exact
name (a ``.pt`` / ``.safetensors`` of the module's ``state_dict``: identity), then EMA shadows;
no TensorFlow is imported, and :func:`ckptwidgets.restore` copies into the tensors all or
nothing. ``num_batches_tracked`` is bookkeeping: restored when a key has its name, never in
``plan.unmapped`` or ``plan.unused``, never a problem.

Across frameworks (torch names against Keras / TF names) each variable may carry a layout
transform (``Assignment.transform``, ``plan.transforms``, set by ``plan.assign(name, key,
transform=...)`` or by cross-framework matching, :mod:`ckptwidgets._planning.targets`): the
variable takes ``transform(*values of (key,) + extra_keys)`` and its shape is checked against
``transform.shape(*their shapes)``. ``print(plan)`` shows what each reads
(``lin.weight  transpose('dense/kernel')  [3, 4]``), ``repr(plan)`` lists them
(``transform: 'lin.weight' <- transpose('dense/kernel')``).

``match="order"``: a Keras 2 checkpoint (TF2 ``layer_with_weights-N`` objects, or a legacy
``.h5``, which ``model.load_weights`` also reads by order) into a Keras model of the same
architecture, by layer order and weight order within each layer, the model's own weights
(``self.bias = self.add_weight(...)``) with the saved model's (:mod:`ckptwidgets._planning.order`);
``plan.hints`` lists which layer went where and any counts that differ. No rules. Into a
torch module, a checkpoint with Keras/TF names pairs by layer order alone (each layer family
in order, never by name: :mod:`ckptwidgets._planning.cross`).

Partitioned variables (TF1 ``partitioner=``): a ``PartitionedVariable`` among the variables
stands for its parts, each a variable of the plan named as TensorFlow names it
(``"w/part_0"``; under a dict key ``K``, ``"K/part_0"``), and so does a variable carrying a
save slice info (``list(pv)``). A part is matched by the whole variable's name (``"w"``,
what rules see too) to the FULL key, whatever partitioning the checkpoint was saved with
(or none): the key's shape must be the full shape, and :func:`ckptwidgets.restore` reads
each part's slice of it. ``plan.var_list`` gives ``{key: [parts]}``, as ``Saver`` takes them.
"""
from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

from ._planning.matching import skipped_names
from ._planning.partitions import var_list_names
from ._planning.problems import Analysis, Problem, all_fit, find_problems
from ._planning.structure import MATCHES
from ._planning.targets import KeyLayouts, plan_keys, read_as, settled
from ._planning.variables import VarInfo, collect_by_name, is_torch_module, is_variable, partitioned_parts, variable_name
from ._text.format import count_of
from .errors import PlanError
from .reader import Checkpoint, Entry, open_checkpoint

__all__ = ["plan_restore", "RestorePlan", "Problem", "Assignment", "VarInfo", "variable_name", "MATCHES"]

class Assignment(NamedTuple):
    """One mapped variable of a plan: what :func:`ckptwidgets.restore` and the code export read.

    Attributes
    ----------
    name : str
        The variable's name in the plan.
    key : str
        The checkpoint key read into it.
    entry : Entry or None
        The checkpoint's entry for ``key`` (None when the key is not in the checkpoint: a
        ``missing_key`` problem).
    info : VarInfo
        The variable, described once: ``.variable`` (as given), ``.tf_variable`` (what
        ``Saver`` and ``assign`` take; None for a torch tensor), ``.shape``, ``.dtype``,
        ``.graph``, ``.keras``, ``.ref``, ``.framework``, ``.layer``, ``.layer_kind``.
    transform : ckptwidgets.layouts.Transform or None
        How the variable's value is made from the keys' values (``transform(*values)`` of
        ``(key,) + extra_keys``, in that order): a layout transform between frameworks
        (``transpose`` of a Dense kernel for a Linear weight). None: the key's value as it is.
    extra_keys : tuple of str
        Further keys the transform reads after ``key`` (an LSTM's two biases).
    """

    name: str
    key: str
    entry: Entry | None
    info: VarInfo
    transform: object = None
    extra_keys: tuple = ()

    @property
    def keys(self) -> tuple:
        """Every key the assignment reads: ``(key,) + extra_keys``."""
        return (self.key,) + self.extra_keys


class RestorePlan:
    """Which checkpoint key goes into which variable; build it with :func:`plan_restore`.

    Attributes
    ----------
    checkpoint : Checkpoint
    variables : dict
        ``{name: variable}`` for every variable of the plan, in input order.
    rules : dict
    prefer_ema : bool
    match : str
        ``"name"`` or ``"order"``, as given to :func:`plan_restore`.
    """

    def __init__(self, checkpoint, infos, mapping, duplicates, conflicts, rules, prefer_ema, shared=True, compatible=None,
                 given_root=False, match="name", notes=(), transforms=None, layout=()):
        self.checkpoint: Checkpoint = checkpoint
        self.match = match
        self._given_root = given_root  # the variables came as a model / module: named by object path
        self._notes = list(notes)  # how the structure was matched (a child descended into, counts that differ)
        self._hints = None  # (revision, hints)
        self._infos: dict[str, VarInfo] = infos
        self._variables: dict | None = None  # built on first use
        self._mapping: dict[str, str] = mapping
        self._duplicates = duplicates  # groups of same-named variables (cannot be edited away)
        self._shared = shared  # one object under two names: the analysis must look for it
        # Every mapped key present, fitting its variable: found while planning, None after an edit.
        self._compatible: bool | None = compatible
        self._conflicts: dict[str, list[str]] = conflicts  # name -> keys two rules gave it
        self._transforms: dict = dict(transforms or {})  # name -> (Transform, extra keys)
        self._layout = list(layout)  # (name or None, key or None, message): transforms cross matching could not decide
        self._key_layouts = None  # KeyLayouts: the transform of a key picked by hand, built on first use
        self.rules = dict(rules or {})
        self.prefer_ema = prefer_ema
        self._callbacks: list = []
        self._cache = None
        self._revision = 0

    # --- the mapping ---------------------------------------------------------
    @property
    def variables(self) -> dict:
        """``{name: variable}`` for every variable of the plan, in input order."""
        if self._variables is None:
            self._variables = {name: info.variable for name, info in self._infos.items()}
        return self._variables

    @property
    def infos(self) -> MappingProxyType:
        """``{name: VarInfo}`` for every variable of the plan, in input order (read-only)."""
        return MappingProxyType(self._infos)

    @property
    def assignments(self) -> list[Assignment]:
        """An :class:`Assignment` per mapped variable, in plan order."""
        find, infos, transforms = self.checkpoint.find, self._infos, self._transforms
        if not transforms:
            return [Assignment(name, key, find(key), infos[name]) for name, key in self._mapping.items()]
        return [Assignment(name, key, find(key), infos[name], *transforms.get(name, (None, ())))
                for name, key in self._mapping.items()]

    @property
    def transforms(self) -> dict:
        """``{variable name: Transform}`` of the assignments that transform their keys' values."""
        return {name: transform for name, (transform, _extra) in self._transforms.items()}

    def transform_of(self, variable_or_name) -> tuple | None:
        """``(Transform, keys)`` of a variable that transforms what it reads (``keys``: ``(key,) +
        extra_keys``), or None when it reads its key as it is or reads nothing."""
        name = self._name_of(variable_or_name)
        found = self._transforms.get(name)
        if found is None or name not in self._mapping:
            return None
        return found[0], (self._mapping[name],) + found[1]

    @property
    def target(self) -> str:
        """Whose variables the plan restores: ``"torch"`` for a torch module's tensors, else ``"tf"``
        (tf.Variables, Keras variables)."""
        first = next(iter(self._infos.values()), None)
        return "torch" if first is not None and first.framework == "torch" else "tf"

    @property
    def revision(self) -> int:
        """A number that changes on every edit: what caches built from a plan are keyed on."""
        return self._revision

    @property
    def graph(self):
        """The ``tf.Graph`` of the plan's variables, or None for eager ones.

        Raises :class:`PlanError` when the plan mixes several graphs (or graph and eager).
        """
        graphs = {id(i.graph): i.graph for i in self._infos.values()}
        if len(graphs) > 1:
            raise PlanError(
                "The plan mixes variables of several graphs (or graph and eager ones); make one plan per graph."
            )
        return next(iter(graphs.values()))

    @property
    def mapping(self) -> dict[str, str]:
        """``{variable name: checkpoint key}`` for mapped variables (a copy)."""
        return dict(self._mapping)

    @property
    def var_list(self) -> dict:
        """``{checkpoint key: tf.Variable}``, what ``tf.compat.v1.train.Saver(var_list=...)`` takes.

        Keras 3 variables appear as the ``tf.Variable`` they hold; the parts of a partitioned
        variable as a list, ``{key: [part, ...]}`` (each restores its slice). Raises
        :class:`PlanError` when one key feeds several variables (see :attr:`var_lists`).
        """
        lists = self.var_lists
        if len(lists) > 1:
            key = next(k for k in lists[1])
            names = [n for n, k in self._mapping.items() if k == key]
            raise PlanError(
                f"Key {key!r} feeds {len(names)} variables ({', '.join(map(repr, names))}); "
                "a dict var_list cannot say that: use plan.var_lists (one Saver per dict)."
            )
        return lists[0] if lists else {}

    @property
    def var_lists(self) -> list[dict]:
        """The mapping split into dicts with distinct keys: one ``Saver`` per dict.

        The parts of one partitioned variable mapped to one key share a list in one dict.
        """
        infos = self._infos
        return [
            {key: [infos[n].tf_variable for n in names] if isinstance(names, list) else infos[names].tf_variable
             for key, names in group.items()}
            for group in self.var_list_names
        ]

    @property
    def var_list_names(self) -> list[dict]:
        """:attr:`var_lists` with the variables' names: ``[{key: name or [part names]}]``.

        What the code export writes. A key read by several variables goes into one dict
        per variable; the parts of one partitioned variable (by ``SaveSliceInfo.full_name``)
        read from one key count as one variable, a list in one dict.
        """
        return var_list_names(self._mapping, self._infos)

    # --- analysis, cached until the next edit --------------------------------
    def _analysis(self) -> Analysis:
        if self._cache is None:
            # A pick whose layout cannot be decided is that problem, not also the raw key's shape.
            bound = {name for name, key, _message in self._layout if name is not None and key is not None}
            checked = {n: k for n, k in self._mapping.items() if n not in bound} if bound else self._mapping
            problems = [] if self._clean() else find_problems(
                self.checkpoint, self._infos, checked, self._duplicates, self._conflicts, self._transforms,
                self._layout,
            )
            extra = [k for _t, keys in self._transforms.values() for k in keys]
            self._cache = Analysis(problems, self._infos, self._mapping, self.checkpoint, extra)
        return self._cache

    def _clean(self) -> bool:
        """True when no check can fail, found without writing a message.

        The common case: no input problem, every mapped key present with a compatible shape
        and the same dtype. Anything else goes to ``find_problems``, which says what and why.
        """
        if self._duplicates or self._conflicts or self._shared or self._layout:
            return False
        if self._compatible is None:
            self._compatible = all_fit(self.checkpoint, self._infos, self._mapping, self._transforms)
        return self._compatible

    @property
    def problems(self) -> list[Problem]:
        """Every :class:`Problem`, in a stable order (input problems first, then by variable)."""
        return list(self._analysis().problems)

    @property
    def ok(self) -> bool:
        """True when the plan has no problems (it may still leave variables unmapped)."""
        return not self._analysis().problems

    @property
    def unmapped(self) -> list[str]:
        """Names of the variables no key is read into (in graph mode they stay uninitialised)."""
        return list(self._analysis().unmapped)

    @property
    def unused(self) -> list[Entry]:
        """Checkpoint entries of kind ``variable`` or ``ema`` that no variable reads."""
        return list(self._analysis().unused)

    def status(self, variable_or_name) -> str:
        """``"mapped"``, ``"unmapped"`` or the reason of the variable's first problem."""
        return self._analysis().status[self._name_of(variable_or_name)]

    # --- edits -----------------------------------------------------------------
    def _name_of(self, variable_or_name) -> str:
        if isinstance(variable_or_name, str):
            if variable_or_name not in self._infos:
                raise PlanError(f"No variable named {variable_or_name!r} in the plan.")
            return variable_or_name
        names = [n for n, i in self._infos.items() if i.variable is variable_or_name]
        if len(names) == 1:
            return names[0]
        if names:
            raise PlanError(f"That variable is in the plan under several names ({names}); pass the name.")
        parts = self._part_names(variable_or_name)
        if parts:
            raise PlanError(
                f"{variable_or_name.name!r} is a partitioned variable; pass one of its parts "
                f"({', '.join(map(repr, parts))})."
            )
        raise PlanError(f"{variable_or_name!r} is not a variable of the plan.")

    def _part_names(self, variable) -> list[str]:
        """The names of a ``PartitionedVariable``'s parts in the plan ([] for anything else)."""
        parts = partitioned_parts(variable)
        if not parts:
            return []
        ids = {id(p) for p in parts}
        return [n for n, i in self._infos.items() if id(i.variable) in ids]

    def _edited(self) -> None:
        self._cache = None
        self._compatible = None
        self._revision += 1
        for callback in list(self._callbacks):
            callback()

    def assign(self, variable_or_name, key, transform=None) -> None:
        """Read ``key`` (a key, an object-based entry's name, or an :class:`Entry`) into a variable.

        A key absent from the checkpoint is recorded and reported as ``missing_key``. A
        ``PartitionedVariable`` assigns the key to each of its parts. ``transform`` (a
        :class:`ckptwidgets.layouts.Transform`): the variable takes ``transform(value)``, e.g.
        ``transpose()`` of a Keras Dense kernel for a torch Linear weight; for a transform of
        several tensors ``key`` is a tuple of keys in the transform's argument order. Without
        one, in a plan across frameworks, the transform pairing the key's layer with the
        variable's gives (:class:`~ckptwidgets._planning.cross.KeyLayouts`), with the extra keys
        it reads; a key whose layout cannot be decided (a bias for a weight) is a
        ``layout_mismatch`` problem naming both shapes. Within one framework the key's value is
        taken as it is (an earlier transform is dropped).
        """
        names = self._part_names(variable_or_name) or [self._name_of(variable_or_name)]
        keys = tuple(key) if isinstance(key, (tuple, list)) and not isinstance(key, Entry) else (key,)
        keys = tuple(k.key if isinstance(k, Entry) else k for k in keys)
        if not keys or not all(isinstance(k, str) for k in keys):
            raise PlanError(f"A checkpoint key must be a str; got {type(key).__name__} {key!r}.")
        if transform is None and len(keys) > 1:
            raise PlanError(f"Several keys {list(keys)!r} go into one variable only through a transform of as "
                            "many tensors: pass transform=...")
        if transform is not None and getattr(transform, "arity", None) != len(keys):
            arity = getattr(transform, "arity", None)
            takes = "?" if arity is None else count_of(arity, "tensor")
            raise PlanError(f"Transform {getattr(transform, 'name', transform)!r} takes {takes}; "
                            f"{count_of(len(keys), 'key')} given: {list(keys)!r}.")
        if transform is not None and any(self._infos[n].part is not None for n in names):
            raise PlanError("A part of a partitioned variable reads its slice of a key as it is; it takes no transform.")
        found = [self.checkpoint.find(k) for k in keys]
        keys = tuple(e.key if e is not None else k for e, k in zip(found, keys))
        derive = transform is None and found[0] is not None
        if derive and self._key_layouts is None:
            self._key_layouts = KeyLayouts(self.checkpoint, self._infos)
        for name in names:
            read, through, problem = keys, transform, None
            if derive and self._infos[name].part is None:
                read, through, problem = read_as(self._key_layouts, name, keys[0])
            self._mapping[name] = read[0]
            self._conflicts.pop(name, None)
            self._forget_layout(name)
            if through is None:
                self._transforms.pop(name, None)
            else:
                self._transforms[name] = (through, read[1:])
            if problem is not None:
                self._layout.append((name, read[0], problem))
        self._edited()

    def unassign(self, variable_or_name) -> None:
        """Leave a variable (or every part of a ``PartitionedVariable``) out of the restore."""
        for name in self._part_names(variable_or_name) or [self._name_of(variable_or_name)]:
            self._mapping.pop(name, None)
            self._conflicts.pop(name, None)
            self._transforms.pop(name, None)
            self._forget_layout(name)
        self._edited()

    def _forget_layout(self, name: str) -> None:
        """An edit of a variable settles what cross matching could not decide about it (and a
        problem about no variable once every variable has a key)."""
        if self._layout:
            self._layout = settled([p for p in self._layout if p[0] != name], self._mapping, self._infos)

    def on_change(self, callback, remove: bool = False) -> None:
        """Call ``callback()`` after every edit (``remove=True`` stops it), as ipywidgets' ``on_click``."""
        if remove:
            self._callbacks.remove(callback)
        else:
            self._callbacks.append(callback)

    # --- candidates --------------------------------------------------------------
    def candidates(self, variable_or_name, limit: int | None = None) -> list[Entry]:
        """Entries a variable could take, best first, for a dropdown.

        Shape- and dtype-compatible entries come first: the current key, the exact name, its EMA
        shadow, entries ending with the variable's last name segment, then the others by key;
        after them the incompatible entries by key. EMA shadows and slots are included; the
        object graph is not. O(limit) per call (the index is built once per checkpoint).
        """
        info = self._infos[self._name_of(variable_or_name)]
        matched = info.name if info.part is None else info.part.full_name  # a part takes a full key
        return self.checkpoint.candidate_index.candidates(
            matched, info.shape, info.dtype, limit=limit, current=self._mapping.get(info.name)
        )

    def key_of(self, variable_or_name) -> str | None:
        """The key a variable reads, or None (cheaper than copying :attr:`mapping`)."""
        return self._mapping.get(self._name_of(variable_or_name))

    def describe(self, variable_or_name) -> tuple:
        """``(shape, dtype)`` of a variable: its static shape (None for unknown) and dtype name.

        For a part of a partitioned variable the full shape, the one its key must have (the
        part's own is ``plan.infos[name].part.shape``).
        """
        info = self._infos[self._name_of(variable_or_name)]
        return info.shape, info.dtype

    # --- output ------------------------------------------------------------------
    def to_code(self, style: str = "saver") -> str:
        """Python code performing this plan; ``style`` in ``"saver"``, ``"init_from_checkpoint"``, ``"checkpoint"``."""
        from .codegen import to_code

        return to_code(self, style)

    @property
    def hints(self) -> list[str]:
        """How the plan was matched, where that needs saying, and what to do when it maps
        none of its variables.

        First the notes of structural matching (the checkpoint's child the model was found
        under, ``match="order"``'s pairing of layers and any counts that differ), then, for
        a plan that maps nothing, e.g. an object-based checkpoint planned against a list of
        variables: pass the model; names under another scope: the rule that maps them
        (:mod:`ckptwidgets._planning.hints`).
        """
        if self._hints is None or self._hints[0] != self._revision:
            from ._planning.hints import hints

            self._hints = (self._revision, self._notes + hints(self, self._given_root))
        return list(self._hints[1])

    def __repr__(self) -> str:
        from ._text.restore_plan import plan_repr

        return plan_repr(self)

    def __str__(self) -> str:
        from ._text.restore_plan import plan_text

        return plan_text(self)


def plan_restore(ckpt, variables, rules=None, prefer_ema=False, include=None, exclude=None, match="name") -> RestorePlan:
    """Match checkpoint keys to variables and check the result.

    Parameters
    ----------
    ckpt : Checkpoint or str or os.PathLike
        A checkpoint, or anything :func:`ckptwidgets.open_checkpoint` takes.
    variables : list, tuple, dict, tf.Module / Keras model or torch.nn.Module
        ``tf.Variable`` s (graph or eager, resource or reference) or Keras 3 variables, named by
        :func:`variable_name`; a dict ``{name: variable}``; or a trackable root, whose variables
        are named by object path (``"l1/kernel"``), Keras models' by ``.path``, tf_keras models'
        by their variables' names (``"dense/kernel"``, object paths when two share one); or a torch
        module, whose parameters and buffers are named as its ``state_dict``. A
        ``PartitionedVariable`` (in a list, a dict, or alone) stands for its parts, named
        ``"w/part_0"``...; each part reads its slice of the whole variable's key.
    rules : dict, optional
        ``{checkpoint scope or key: variable scope or name}`` as ``init_from_checkpoint``'s
        assignment map; ``"/"`` is the root (for a torch module a side ending in ``.`` is a
        scope too). See the module docstring for the precedence.
    prefer_ema : bool
        Read each variable's ``ExponentialMovingAverage`` shadow when the checkpoint has one.
    include, exclude : str or list of str, optional
        Regular expressions (``re.search`` on variable names): variables not included, or
        excluded, get no key (partial restore, as tf-slim's ``get_variables_to_restore``).
        They stay in the plan as unmapped, so ``restore(..., initialize_unmapped=True)``
        initialises them in graph mode.
    match : {"name", "order"}
        ``"name"`` (the default): rules, then structure where the checkpoint has one (a TF2
        object graph walked as TensorFlow restores, the dataset a Keras 3 file holds for each
        variable), then names. ``"order"``: a Keras 2 checkpoint (TF2 ``layer_with_weights-N``
        or legacy ``.h5``) into a Keras model of the same architecture, by layer order and
        weight order within each layer (:mod:`ckptwidgets._planning.order`); no rules. Into
        a torch module: the checkpoint's layers by order alone, each with its layout transform.

    Returns
    -------
    RestorePlan

    Raises
    ------
    PlanError
        A non-variable among ``variables`` (named with its type), no variables, bad rules, an
        unknown ``match`` or one that does not fit the checkpoint and variables.

    Examples
    --------
    >>> plan = plan_restore("model.ckpt", [v1], rules={"old/": "new/"})   # doctest: +SKIP
    >>> plan.problems                                                     # doctest: +SKIP
    []
    """
    if match not in MATCHES:
        raise PlanError(f"Unknown match {match!r}; choose one of {', '.join(map(repr, MATCHES))}.")
    ckpt = open_checkpoint(ckpt)
    infos, duplicates, shared = collect_by_name(variables)
    given_root = is_torch_module(variables) or (
        not isinstance(variables, (list, tuple, Mapping)) and not is_variable(variables))
    # Filtered-out variables stay in the plan, unmapped: in graph mode they still need an
    # initializer, and the plan must be able to say so (the scenario 1 error).
    skipped = skipped_names(infos, include, exclude)
    found = plan_keys(ckpt, variables, infos, skipped, rules, prefer_ema, given_root, match)
    return RestorePlan(ckpt, infos, found.mapping, duplicates, found.conflicts, rules, prefer_ema, shared,
                       found.compatible, given_root, match, found.notes, found.transforms, found.layout)
