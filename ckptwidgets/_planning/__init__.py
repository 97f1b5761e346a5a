"""How a plan is made: the pieces behind :func:`ckptwidgets.plan_restore`.

- :mod:`.variables`: what a user passes as "the variables", named and described once;
  :mod:`.torch_vars`: a torch module's ``state_dict`` as such variables.
- :mod:`.targets`: the keys (and layout transforms) of a plan, whatever the target and across
  frameworks.
- :mod:`.kinds`: the one classifier of checkpoint entries (variable, ema, slot, meta).
- :mod:`.candidates`: which entries fit a variable (the mapper's dropdowns).
- :mod:`.rules`: ``init_from_checkpoint`` rules, checked and parsed.
- :mod:`.matching`: per-variable matching by rules, names and EMA shadows; include/exclude.
- :mod:`.structure`: the route to each key (``match="name"``: rules, structure, names; ``"order"``).
- :mod:`.graph_match`, :mod:`.keras_match`, :mod:`.order`: matching by structure (a TF2
  object graph, a Keras file's layout, Keras 2 layers by order).
- :mod:`.partitions`: where a part of a partitioned variable sits in its full tensor.
- :mod:`.problems`: a plan's checks and their messages (``Problem``).
- :mod:`.hints`: what to do when a plan maps nothing.

Nothing here imports ipywidgets; TensorFlow only when given TensorFlow variables.
"""
