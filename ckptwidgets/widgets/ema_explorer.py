"""EMAExplorer: watch TensorFlow's ExponentialMovingAverage move a shadow variable.

:class:`EMAModel` runs :func:`ckptwidgets.ema.ema_trace` (the real TF op), the float64
:func:`~ckptwidgets.ema.closed_form` and :func:`~ckptwidgets.ema.steps_to_reach`, and
renders one reused matplotlib figure to PNG bytes. :class:`EMAExplorer` puts sliders on
it and shows the bytes in an ``Image``, replacing them on each change (no flicker).

Example
-------
>>> from ckptwidgets import EMAExplorer
>>> explorer = EMAExplorer(decay=0.99, steps=400, target=10.0)   # doctest: +SKIP
>>> explorer.model.first_step, explorer.model.reach_step        # doctest: +SKIP
(0.09999990463256836, 299)
"""
from __future__ import annotations

import math
from collections import OrderedDict
from decimal import Decimal

import ipywidgets as widgets
import numpy as np
from traitlets import Any, Bool, Bytes, Float, HasTraits, Int, TraitError, Unicode, observe, validate

from .. import plots
from ..ema import closed_form, ema_trace, steps_to_reach
from ..errors import CheckpointError, PlanError
from ._base import WidgetRoot
from ._text import label_style, set_message, text_label

__all__ = ["EMAModel", "EMAExplorer", "decay_options", "training_trajectory", "MAX_STEPS"]

#: Above this a single redraw runs TensorFlow long enough to feel stuck.
MAX_STEPS = 100_000
_INPUTS = ("decay", "steps", "target", "initial", "num_updates", "zero_debias", "noisy", "noise", "seed", "fraction",
           "compare", "log_steps")
#: The EMA plot is drawn at twice the other figures' dpi and shown at their size: crisp on
#: high-density screens (each redraw costs about twice as much encoding).
EMA_DPI = 2 * plots.DPI
# 1 - decay on a roughly logarithmic 1-2-3-5-7 grid: equal slider moves, equal ratios.
_GAPS = ("0.5", "0.3", "0.2", "0.1", "0.07", "0.05", "0.03", "0.02", "0.01", "0.007", "0.005",
         "0.003", "0.002", "0.001", "0.0007", "0.0005", "0.0003", "0.0002", "0.0001")


def decay_options(include=None) -> list[tuple[str, float]]:
    """``(label, decay)`` pairs for a slider that is logarithmic in ``1 - decay``.

    Decimal arithmetic keeps the values exact (``0.99``, not ``0.9900000000000001``);
    ``include`` adds a decay that is not on the grid, in order.

    Examples
    --------
    >>> [label for label, _ in decay_options()][:4], decay_options()[8]
    (['0.5', '0.7', '0.8', '0.9'], ('0.99', 0.99))
    >>> [v for _, v in decay_options(0.985)][7:10]
    [0.98, 0.985, 0.99]
    """
    values = {float(Decimal(1) - Decimal(gap)) for gap in _GAPS}
    if include is not None:
        values.add(float(include))
    return [(repr(v), v) for v in sorted(values)]


def training_trajectory(steps: int, target: float, initial: float = 0.0, noise: float = 1.0,
                        seed: int = 0, rise: float = 100.0) -> np.ndarray:
    """A noisy value heading for ``target``, as a weight does during training.

    ``value_k = target + (initial - target) * exp(-k / rise) + noise * z_k`` with ``z_k``
    standard normal from ``seed``; the same seed gives the same trajectory (and a longer
    one starts with the shorter one).

    Examples
    --------
    >>> v = training_trajectory(3, target=10.0, noise=0.0)
    >>> np.round(v, 3)
    array([0.1  , 0.198, 0.296])
    """
    k = np.arange(1, steps + 1, dtype=np.float64)
    z = np.random.default_rng(seed).standard_normal(steps)
    return target + (initial - target) * np.exp(-k / rise) + noise * z


class EMASettingError(PlanError, TraitError):
    """A setting the explorer refuses (decay outside (0, 1), steps < 1, a non-finite number).

    A :class:`ckptwidgets.PlanError`, like the same mistake passed to ``ema_trace``, and a
    ``TraitError``, as ipywidgets' own validators raise.
    """


class EMAModel(HasTraits):
    """State and computations of :class:`EMAExplorer`; drive it without widgets.

    Every change of an input trait recomputes the trace (cached), the closed form, the
    first-step value and the step where ``fraction`` of the target is reached, and then
    redraws ``png`` by moving the data of one reused figure.

    Examples
    --------
    >>> model = EMAModel(decay=0.99, steps=400, target=10.0)
    >>> model.first_step_text, model.reach_step
    ('0.099999905', 299)
    >>> model.decay = 0.9; model.reach_step
    29
    """

    decay = Float(0.99, help="EMA decay, strictly between 0 and 1.")
    steps = Int(500, help=f"Number of apply steps, 1 to {MAX_STEPS:,}.")
    target = Float(10.0, help="The value the variable is set to (the mean of the noisy trajectory).")
    initial = Float(0.0, help="The variable's initial value, where the shadow starts.")
    num_updates = Bool(False, help="Pass a step counter: decay used = min(decay, (1 + n) / (10 + n)).")
    zero_debias = Bool(False, help="Pass zero_debias=True (TF then debiases the shadow of a tensor).")
    noisy = Bool(False, help="Feed a noisy training trajectory instead of a constant target.")
    noise = Float(1.0, help="Standard deviation of the noise in noisy mode.")
    seed = Int(0, help="Random seed of the noisy trajectory.")
    fraction = Float(0.95, help="Mark the step where the shadow has closed this fraction of the gap.")
    compare = Bool(False, help="Also draw the shadow with the other num_updates setting (fixed decay vs num_updates).")
    log_steps = Bool(False, help="Logarithmic step axis; num_updates turns it on (its decay changes in the first steps).")

    trace = Any(None, read_only=True, help="The EMATrace from TensorFlow (None after an error).")
    compare_trace = Any(None, read_only=True, help="With `compare`: the EMATrace with num_updates flipped, else None.")
    closed = Any(None, read_only=True, help="The float64 closed form, one value per step.")
    first_step = Float(float("nan"), read_only=True, help="The shadow after step 1 (float32 value).")
    reach_step = Int(None, allow_none=True, read_only=True, help="First step reaching `fraction`, or None.")
    png = Bytes(b"", read_only=True, help="The plot as PNG bytes.")
    error = Unicode("", read_only=True, help="Why the last change could not be computed, '' if it could.")

    def __init__(self, cache_size: int = 64, **kwargs):
        self._cache: OrderedDict = OrderedDict()
        self._cache_size = cache_size
        self._figure = None
        self._drawn = None
        self._ready = False  # the constructor's trait notifications must not draw N times
        kwargs.setdefault("log_steps", bool(kwargs.get("num_updates", False)))
        super().__init__(**kwargs)
        self._ready = True
        self.recompute()

    # --- validation at the boundary ------------------------------------------------------
    @validate("decay")
    def _valid_decay(self, proposal):
        value = proposal.value
        if not 0.0 < value < 1.0 or not 0.0 < float(np.float32(value)) < 1.0:
            raise EMASettingError(f"decay must be strictly between 0 and 1 (in float32), got {value!r}")
        return value

    @validate("steps")
    def _valid_steps(self, proposal):
        if not 1 <= proposal.value <= MAX_STEPS:
            raise EMASettingError(f"steps must be between 1 and {MAX_STEPS:,}, got {proposal.value!r}")
        return proposal.value

    @validate("target", "initial", "noise")
    def _valid_finite(self, proposal):
        if not math.isfinite(proposal.value):
            raise EMASettingError(f"{proposal.trait.name} must be a finite number, got {proposal.value!r}")
        if proposal.trait.name == "noise" and proposal.value < 0:
            raise EMASettingError(f"noise must be >= 0, got {proposal.value!r}")
        return proposal.value

    @validate("fraction")
    def _valid_fraction(self, proposal):
        if not 0.0 < proposal.value <= 1.0:
            raise EMASettingError(f"fraction must be in (0, 1], got {proposal.value!r}")
        return proposal.value

    # --- computation ---------------------------------------------------------------------
    def values(self) -> np.ndarray:
        """The raw value fed at each step (constant target, or the noisy trajectory)."""
        if self.noisy:
            return training_trajectory(self.steps, self.target, self.initial, self.noise, self.seed)
        return np.full(self.steps, self.target)

    def _key(self, num_updates=None):
        values = ("noisy", self.noise, self.seed) if self.noisy else ("constant",)
        num_updates = self.num_updates if num_updates is None else num_updates
        return (self.decay, self.steps, self.target, self.initial, num_updates, self.zero_debias) + values

    def _computed(self, key):
        # Slider positions repeat (back and forth): keep recent traces, TF runs ~15 us/step.
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        values = self.values()
        args = dict(decay=self.decay, num_updates=key[4], zero_debias=self.zero_debias, initial=self.initial)
        trace = ema_trace(values, **args)
        closed = closed_form(values, **args)
        self._cache[key] = (trace, closed)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return trace, closed

    @observe(*_INPUTS)
    def _on_input(self, change):
        if self._ready:
            if change.name == "num_updates":
                # num_updates changes the decay in the first steps: show them (one redraw).
                self._ready = False
                try:
                    self.log_steps = change.new
                finally:
                    self._ready = True
            self.recompute()

    @property
    def compare_label(self) -> str:
        """The legend of the compared shadow: the other ``num_updates`` setting."""
        return (f"fixed decay {self.decay!r}" if self.num_updates
                else f"num_updates: min({self.decay!r}, (1+n)/(10+n))")

    def recompute(self) -> None:
        """Recompute trace, markers and picture for the current inputs (a no-op if unchanged)."""
        key = self._key() + (self.fraction, self.compare, self.log_steps)
        if key == self._drawn:
            return
        try:
            trace, closed = self._computed(self._key())
            other = self._computed(self._key(not self.num_updates))[0] if self.compare else None
        except CheckpointError as error:  # PlanError from ema.py: e.g. zero_debias with initial != 0
            self.set_trait("error", str(error))
            self.set_trait("trace", None)
            self.set_trait("compare_trace", None)
            self._drawn = None
            return
        self.set_trait("error", "")
        reach = steps_to_reach(trace, self.fraction, target=self.target) if self.target != self.initial else None
        self.set_trait("closed", closed)
        self.set_trait("first_step", float(trace.shadow[0]))
        self.set_trait("reach_step", reach)
        self.set_trait("compare_trace", other)
        self.set_trait("trace", trace)
        self._draw(trace, closed, reach)
        self._drawn = key

    def _draw(self, trace, closed, reach):
        compare = self.compare_trace.shadow if self.compare_trace is not None else None
        args = dict(closed=closed, target=self.target, reach_step=reach, reach_fraction=self.fraction,
                    title=self.title(), log_steps=self.log_steps, compare=compare, compare_label=self.compare_label)
        if self._figure is None:
            self._figure = plots.ema_figure(trace, dpi=EMA_DPI, **args)
        else:
            plots.update_ema_figure(self._figure, trace, **args)
        self.set_trait("png", plots.figure_to_png(self._figure))

    @property
    def figure(self):
        """The matplotlib figure behind ``png`` (reused between redraws)."""
        return self._figure

    # --- text ----------------------------------------------------------------------------
    @property
    def first_step_text(self) -> str:
        """The shadow after step 1 as TensorFlow prints the float32 (``'0.099999905'``)."""
        return plots.format_value(self.first_step) if self.trace is not None else ""

    def title(self) -> str:
        flags = [name for name in ("num_updates", "zero_debias", "noisy") if getattr(self, name)]
        return " · ".join([f"ExponentialMovingAverage(decay={self.decay!r})"] + flags)

    def summary(self) -> str:
        """One line: the first step, where ``fraction`` is reached, the final shadow."""
        if self.trace is None:
            return self.error
        trace = self.trace
        first_decay = plots.format_value(trace.decay[0])
        parts = [f"step 1: shadow {self.first_step_text} (decay used {first_decay})"]
        if self.reach_step is not None:
            parts.append(f"{self.fraction:.0%} of the way to {self.target:g} at step {self.reach_step:,}")
        else:
            parts.append(f"{self.fraction:.0%} of the way to {self.target:g} not reached in {self.steps:,} steps")
        parts.append(f"after {self.steps:,} steps: {plots.format_value(trace.shadow[-1])}")
        if self.compare_trace is not None:
            other = self.compare_trace
            reach = steps_to_reach(other, self.fraction, target=self.target) if self.target != self.initial else None
            where = f"{self.fraction:.0%} at step {reach:,}" if reach is not None else f"{self.fraction:.0%} not reached"
            parts.append(f"compared ({'fixed decay' if self.num_updates else 'num_updates'}): "
                         f"step 1 {plots.format_value(other.shadow[0])}, {where}")
        return " · ".join(parts)

    def set_decay_text(self, text: str) -> str:
        """Set ``decay`` from typed text (the box beside the slider); returns '' or why not.

        Examples
        --------
        >>> model = EMAModel(steps=10)
        >>> model.set_decay_text("0.995"), model.decay
        ('', 0.995)
        >>> model.set_decay_text("1.5")
        'decay must be strictly between 0 and 1 (in float32), got 1.5'
        """
        text = (text or "").strip()
        try:
            value = float(text)
        except ValueError:
            return f"decay must be a number strictly between 0 and 1, like 0.99; got {text!r}"
        try:
            self.decay = value
        except TraitError as error:
            return str(error)
        return ""

    def __repr__(self) -> str:
        inputs = ", ".join(f"{name}={getattr(self, name)!r}" for name in _INPUTS[:6])
        return f"EMAModel({inputs})\n{self.summary()}"


class EMAExplorer(WidgetRoot):
    """Sliders for TensorFlow's ``ExponentialMovingAverage`` and a plot of the shadow.

    The shadow comes from the real TF op (:func:`ckptwidgets.ema.ema_trace`), the dotted
    overlay from the float64 closed form; the first-step value and the step where the
    shadow reaches 95% of the target are marked.

    Parameters
    ----------
    decay : float
        Start value of the decay slider (logarithmic in ``1 - decay``).
    steps : int
    target : float
    num_updates, zero_debias, noisy : bool
    **kwargs
        More :class:`EMAModel` traits: ``noise``, ``seed``, ``initial``, ``fraction``.

    Attributes
    ----------
    model : EMAModel

    Examples
    --------
    >>> explorer = EMAExplorer(decay=0.99, target=10.0)
    >>> explorer.model.first_step_text
    '0.099999905'
    >>> explorer.decay_slider.value = 0.9
    >>> explorer.model.reach_step
    29
    """

    def __init__(self, decay=0.99, steps=500, target=10.0, num_updates=False, zero_debias=False, noisy=False,
                 **kwargs):
        super().__init__(EMAModel(decay=decay, steps=steps, target=target, num_updates=num_updates,
                                  zero_debias=zero_debias, noisy=noisy, **kwargs))
        model = self.model
        self.decay_slider = widgets.SelectionSlider(
            options=decay_options(model.decay), value=model.decay, description="decay",
            tooltip="EMA decay; each slider step multiplies 1 - decay by about 1.5-2",
            # The readout of a SelectionSlider ignores typing: the box beside it takes it.
            readout=False, layout=widgets.Layout(width="20em", max_width="100%"),
        )
        # Any decay, typed: applied on Enter or when the box loses focus.
        self.decay_box = widgets.Text(value=repr(model.decay), continuous_update=False,
                                      placeholder="type a decay, Enter", layout=widgets.Layout(width="8em"))
        self.decay_box.add_class("ckptwidgets-decay-box")
        self.decay_box.observe(self._decay_typed, "value")
        self.steps_slider = widgets.IntSlider(
            value=model.steps, min=1, max=max(5000, model.steps), step=1, description="steps",
            continuous_update=False, layout=widgets.Layout(width="26em"),
        )
        self.target_box = widgets.FloatText(value=model.target, description="target", layout=widgets.Layout(width="12em"))
        self.num_updates_box = widgets.Checkbox(value=model.num_updates, description="num_updates", indent=False,
                                                layout=widgets.Layout(width="auto"))
        self.zero_debias_box = widgets.Checkbox(value=model.zero_debias, description="zero_debias", indent=False,
                                                layout=widgets.Layout(width="auto"))
        self.compare_box = widgets.Checkbox(value=model.compare, description="compare num_updates", indent=False,
                                            layout=widgets.Layout(width="auto"))
        self.log_box = widgets.Checkbox(value=model.log_steps, description="log steps", indent=False,
                                        layout=widgets.Layout(width="auto"))
        self.noisy_box = widgets.Checkbox(value=model.noisy, description="noisy training values", indent=False,
                                          layout=widgets.Layout(width="auto"))
        self.noise_slider = widgets.FloatSlider(value=model.noise, min=0.0, max=5.0, step=0.1, description="noise",
                                                continuous_update=False, disabled=not model.noisy)
        # Drawn at EMA_DPI, shown at the size of a DPI figure: crisp on high-density screens.
        width = round(plots.FIGSIZE[0] * plots.DPI)
        self.image = widgets.Image(value=model.png, format="png",
                                   layout=widgets.Layout(width=f"{width}px", max_width="100%", height="auto"))
        self.summary = text_label(model.summary(), style=label_style(font_family="monospace"))

        # Before the links: the slider must grow before it is given a larger value.
        model.observe(lambda c: setattr(self.steps_slider, "max", max(self.steps_slider.max, c.new)), "steps")
        for control, name in ((self.steps_slider, "steps"),
                              (self.num_updates_box, "num_updates"), (self.zero_debias_box, "zero_debias"),
                              (self.noisy_box, "noisy"), (self.noise_slider, "noise"),
                              (self.compare_box, "compare"), (self.log_box, "log_steps")):
            widgets.link((control, "value"), (model, name))
        # Not a link: a typed number the model refuses (inf, nan) is a message, not a traceback.
        self.target_box.observe(self._target_typed, "value")
        model.observe(lambda c: setattr(self.target_box, "value", c.new), "target")
        # Not a link: code may set a decay that is not on the slider's grid.
        self.decay_slider.observe(self._decay_moved, "value")
        model.observe(self._on_decay, "decay")
        model.observe(self._redrawn, "png")
        model.observe(self._on_error, "error")  # (the message line shows it)
        model.observe(lambda c: setattr(self.noise_slider, "disabled", not c.new), "noisy")

        self.show(
            widgets.HBox([self.decay_slider, self.decay_box, self.steps_slider],
                         layout=widgets.Layout(flex_flow="row wrap", align_items="center")),
            widgets.HBox([self.target_box, self.num_updates_box, self.compare_box, self.log_box, self.zero_debias_box,
                          self.noisy_box, self.noise_slider],
                         layout=widgets.Layout(flex_flow="row wrap", align_items="center")),
            self.image,
            self.summary,
            self.message,
        )

    def _target_typed(self, change):
        try:
            self.model.target = change.new
        except TraitError as error:
            set_message(self.message, str(error))
        else:
            set_message(self.message, self.model.error)

    def _decay_moved(self, change):
        self.model.decay = change.new

    def _decay_typed(self, change):
        if change.new.strip() == repr(self.model.decay):
            return
        why = self.model.set_decay_text(change.new)
        set_message(self.message, why or self.model.error)
        if why:  # the box shows what is used, the message says why the typed value was not
            self.decay_box.value = repr(self.model.decay)

    def _on_decay(self, change):
        if change.new not in [value for _, value in self.decay_slider.options]:
            self.decay_slider.options = decay_options(change.new)
        self.decay_slider.value = change.new
        self.decay_box.value = repr(change.new)

    def _redrawn(self, change):
        # Replacing the bytes swaps the picture in place: no clear, so no flicker.
        self.image.value = change.new
        self.summary.value = self.model.summary()

    def _on_error(self, change):
        if change.new:
            self.summary.value = ""

    def __repr__(self) -> str:
        return repr(self.model).replace("EMAModel(", "EMAExplorer(", 1)
