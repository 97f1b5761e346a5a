"""EMAExplorer without a browser: move the controls, check the model's numbers and the image."""
from __future__ import annotations

import numpy as np
import pytest
from traitlets import TraitError

from ckptwidgets import EMAExplorer
from ckptwidgets.widgets import EMAModel
from ckptwidgets.widgets.ema_explorer import decay_options, training_trajectory

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def explorer():
    return EMAExplorer(decay=0.99, steps=400, target=10.0)


def test_first_step_is_scenario_3(explorer):
    model = explorer.model
    assert np.float32(model.first_step) == np.float32(0.099999905)
    assert model.first_step_text == "0.099999905"
    assert model.reach_step == 299  # 1 - 0.99**k >= 0.95
    assert explorer.summary.value.startswith("step 1: shadow 0.099999905 (decay used 0.99)")
    assert "95% of the way to 10 at step 299" in explorer.summary.value
    assert bytes(explorer.image.value).startswith(PNG) and bytes(explorer.image.value) == model.png
    assert model.figure.axes[0].title.get_text() == "ExponentialMovingAverage(decay=0.99)"


def test_decay_slider_redraws_in_place(explorer):
    model = explorer.model
    figure, lines, before = model.figure, list(model.figure.axes[0].lines), bytes(explorer.image.value)
    explorer.decay_slider.value = 0.9
    assert model.decay == 0.9 and model.reach_step == 29
    assert model.first_step_text == "1.0000002"  # (1 - 0.9) * 10 in float32
    assert bytes(explorer.image.value) != before and bytes(explorer.image.value).startswith(PNG)
    # The same figure and artists, new data: no rebuild between slider moves.
    assert model.figure is figure and list(figure.axes[0].lines) == lines
    assert "95% of the way to 10 at step 29" in explorer.summary.value


def test_decay_slider_is_logarithmic_near_one(explorer):
    values = [v for _, v in explorer.decay_slider.options]
    gaps = np.diff(np.log10(1 - np.array(values)))
    assert 0.99 in values and 0.9999 in values and values == sorted(values)
    assert np.all(gaps < 0) and np.all(np.abs(gaps) < 0.31)  # steps of at most ~2x in 1 - decay
    assert explorer.decay_slider.label == "0.99"


def test_model_decay_updates_slider_also_off_grid(explorer):
    explorer.model.decay = 0.98765
    assert explorer.decay_slider.value == 0.98765 and explorer.decay_slider.label == "0.98765"
    explorer.model.decay = 0.95
    assert explorer.decay_slider.value == 0.95


def test_revisiting_a_setting_uses_the_cache(explorer):
    model = explorer.model
    first = model.trace
    explorer.decay_slider.value = 0.9
    explorer.decay_slider.value = 0.99
    assert model.trace is first
    assert np.float32(model.first_step) == np.float32(0.099999905)


def test_num_updates_changes_the_decay_used(explorer):
    explorer.num_updates_box.value = True
    trace = explorer.model.trace
    assert trace.decay[0] == np.float32(2 / 11)  # min(0.99, (1 + 1) / (10 + 1))
    assert explorer.model.first_step == pytest.approx(10 * (1 - 2 / 11), rel=1e-6)
    assert "decay used 0.18181819" in explorer.summary.value
    assert explorer.model.reach_step < 299  # early steps move faster


def test_zero_debias_first_step_is_the_value(explorer):
    explorer.zero_debias_box.value = True
    assert explorer.model.first_step == pytest.approx(10.0, rel=1e-6)
    assert "zero_debias" in explorer.model.figure.axes[0].title.get_text()


def test_steps_slider(explorer):
    explorer.steps_slider.value = 50
    assert explorer.model.steps == 50 and len(explorer.model.trace) == 50
    assert explorer.model.reach_step is None
    assert "not reached in 50 steps" in explorer.summary.value
    explorer.model.steps = 9000  # beyond the slider: the slider grows
    assert explorer.steps_slider.max >= 9000 and explorer.steps_slider.value == 9000


def test_noisy_mode_smooths_a_trajectory(explorer):
    assert explorer.noise_slider.disabled
    plain = bytes(explorer.image.value)
    explorer.noisy_box.value = True
    model = explorer.model
    assert not explorer.noise_slider.disabled
    values = np.asarray(model.trace.values, dtype=np.float64)
    assert np.ptp(values) > 1.0
    # The shadow is much smoother than the raw trajectory it averages.
    assert np.std(np.diff(model.trace.shadow)) < 0.1 * np.std(np.diff(values))
    line = [a for a in model.figure.axes[0].lines if a.get_gid() == "values"][0]
    assert line.get_visible()
    assert bytes(explorer.image.value) != plain
    before = bytes(explorer.image.value)
    explorer.noise_slider.value = 3.0
    assert explorer.model.noise == 3.0 and bytes(explorer.image.value) != before


def test_training_trajectory_is_seeded_and_prefix_stable():
    a = training_trajectory(100, target=10.0, seed=3)
    b = training_trajectory(200, target=10.0, seed=3)
    assert np.array_equal(a, b[:100])
    assert not np.array_equal(a, training_trajectory(100, target=10.0, seed=4))


def test_errors_show_as_message_and_clear(explorer):
    explorer.zero_debias_box.value = True
    explorer.model.initial = 1.0  # TF starts zero-debiased shadows at 0
    assert "zero_debias=True shadows start at 0" in explorer.message.value
    assert explorer.message.layout.display is None and explorer.model.trace is None
    explorer.model.initial = 0.0
    assert explorer.message.value == "" and explorer.model.trace is not None


@pytest.mark.parametrize("bad", [{"decay": 1.0}, {"decay": 0.0}, {"steps": 0}, {"target": float("nan")},
                                 {"fraction": 1.5}, {"noise": -1.0}])
def test_bad_arguments_are_refused_with_the_value(bad):
    (name, value), = bad.items()
    with pytest.raises(TraitError, match=name):
        EMAModel(**bad)


def test_model_alone_without_widgets():
    model = EMAModel(decay=0.5, steps=20, target=1.0)
    assert model.png.startswith(PNG)
    assert list(model.trace.shadow[:3]) == [0.5, 0.75, 0.875]
    before = model.png
    model.target = 2.0
    assert model.png != before and model.trace.shadow[0] == 1.0


def test_decay_options_include_a_custom_value():
    values = [v for _, v in decay_options(0.985)]
    assert values.count(0.985) == 1 and values == sorted(values)


def test_plain_text_repr(explorer):
    text = explorer._repr_mimebundle_()["text/plain"]
    assert text.startswith("EMAExplorer(decay=0.99, steps=400, target=10.0")
    assert "step 1: shadow 0.099999905" in text and len(text) > 110


def test_css_classes(explorer):
    assert "ckptwidgets-ema" in explorer._dom_classes
    assert "ckptwidgets-message" in explorer.message._dom_classes


# --- issue #14 item 8, issue #15 item 6 ------------------------------------------------------

def test_typed_decay_is_used_and_a_bad_one_is_said(explorer):
    model = explorer.model
    assert explorer.decay_box.value == "0.99" and explorer.decay_slider.readout is False
    explorer.decay_box.value = "0.995"  # Enter (continuous_update=False) or blur
    assert model.decay == 0.995 and explorer.decay_slider.value == 0.995
    assert explorer.decay_slider.label == "0.995"  # off the grid: the slider gains it
    assert model.reach_step is None and "not reached in 400 steps" in explorer.summary.value
    explorer.decay_box.value = "1.5"
    assert model.decay == 0.995 and explorer.decay_box.value == "0.995"
    assert "strictly between 0 and 1" in explorer.message.value and explorer.message.layout.display is None
    explorer.decay_box.value = "zero point nine"
    assert "must be a number" in explorer.message.value
    explorer.decay_box.value = "0.9"
    assert model.decay == 0.9 and explorer.message.value == ""
    explorer.decay_slider.value = 0.98
    assert explorer.decay_box.value == "0.98"


def test_compare_draws_fixed_decay_and_num_updates_on_one_plot(explorer):
    model = explorer.model
    assert model.compare_trace is None
    compare_line = [line for line in model.figure.axes[0].lines if line.get_gid() == "compare"][0]
    assert not compare_line.get_visible()
    explorer.compare_box.value = True
    assert model.compare_trace is not None and model.compare_trace.decay[0] == np.float32(2 / 11)
    assert compare_line.get_visible() and compare_line.get_label().startswith("num_updates")
    legend = [t.get_text() for t in model.figure.axes[0].get_legend().get_texts()]
    assert any(t.startswith("num_updates") for t in legend), legend
    assert "compared (num_updates): step 1 8.181818" in explorer.summary.value
    explorer.num_updates_box.value = True  # the other way round: fixed decay is compared
    assert model.compare_trace.decay[0] == np.float32(0.99)
    assert compare_line.get_label() == "fixed decay 0.99"
    explorer.compare_box.value = False
    assert model.compare_trace is None and not compare_line.get_visible()


def test_num_updates_turns_on_a_log_step_axis(explorer):
    ax = explorer.model.figure.axes[0]
    assert ax.get_xscale() == "linear" and not explorer.log_box.value
    explorer.num_updates_box.value = True
    assert explorer.model.log_steps and explorer.log_box.value and ax.get_xscale() == "log"
    assert "log" in ax.get_xlabel()
    explorer.log_box.value = False
    assert ax.get_xscale() == "linear"
    assert EMAExplorer(num_updates=True, steps=50).model.log_steps


def test_reach_label_sits_off_the_data_and_the_png_is_high_density(explorer):
    model = explorer.model
    ax = model.figure.axes[0]
    label = [t for t in ax.texts if t.get_gid() == "reach_label"][0]
    assert label.get_text() == "95% at step 299"
    assert label.xy[1] == 0.04 and label.get_bbox_patch() is not None  # axes height, boxed
    explorer.noisy_box.value = True
    assert label.xy[1] == 0.04
    from PIL import Image
    import io
    width, _ = Image.open(io.BytesIO(model.png)).size
    assert width == round(6.0 * 180)  # 2x dpi, shown at 540 CSS px
    assert explorer.image.layout.width == "540px"
