"""Keys pressed in a widget's controls stay in the widget.

JupyterLab and Notebook 7 read every key that reaches the document as a notebook shortcut
unless its target takes text (an ``<input>`` or ``<textarea>``, ``:read-write``). A focused
dropdown (``<select>``), button or checkbox takes none, so without this module ArrowDown on
a closed key dropdown moves to the next cell instead of choosing the next key, and ``d``,
``d`` typed to jump to a key starting with "d" deletes the cell. Both applications listen on
the document (JupyterLab in the bubbling phase, Notebook 7 in the capture phase) through
Lumino's command registry, which matches no shortcut for a key whose target (or an element
between it and the binding's) has the attribute ``data-lm-suppress-shortcuts``. One listener
on ``window`` in the capture phase, which runs before both, sets that attribute on the
target of a key pressed inside a marked widget, for that key only: the control's own
listeners (a slider's arrow keys) and the browser (choose, click, toggle, move focus) still
get the key, and the notebook does nothing with it.

ipywidgets has no hook for a listener; :class:`KeyboardGuard`, a hidden anywidget child of
each widget, marks its parent box (``data-ckptwidgets-keyboard``) and adds the page's
listener once. Keys that mean something to the notebook whatever has focus pass through:
Escape (back to the cell), Shift+Enter (run it), and any combination with Ctrl, Cmd or Alt
(the application's own shortcuts).
"""
from __future__ import annotations

import anywidget
import ipywidgets as widgets

__all__ = ["KeyboardGuard", "keyboard_guard"]

_ESM = r"""
// One listener for the page, on window in the capture phase: it runs before the
// application's own (JupyterLab listens on document, bubbling; Notebook 7 capturing).
const FLAG = "__ckptwidgetsKeyboard";
const SUPPRESS = "data-lm-suppress-shortcuts";

function keepInside(event) {
  const target = event.target;
  if (!(target instanceof Element) || !target.closest("[data-ckptwidgets-keyboard]")) return;
  // The application leaves typing alone; an attribute someone else set stays theirs.
  if (target.matches(":read-write") || target.hasAttribute(SUPPRESS)) return;
  if (event.key === "Escape" || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === "Enter" && event.shiftKey) return;
  // Lumino matches no shortcut for a key whose target carries this attribute, for this one
  // key: the control's own listeners (a slider's arrows) and the browser still get it.
  target.setAttribute(SUPPRESS, "true");
  setTimeout(() => target.removeAttribute(SUPPRESS), 0);
}

export default {
  render({ el }) {
    if (!window[FLAG]) {
      window.addEventListener("keydown", keepInside, true);
      window[FLAG] = true;
    }
    let tries = 0;
    const mark = () => {
      if (el.parentElement) {
        el.parentElement.dataset.ckptwidgetsKeyboard = "kept";
      } else if (tries++ < 600) {
        requestAnimationFrame(mark);  // the box appends its children after rendering them
      }
    };
    mark();
  },
};
"""


class KeyboardGuard(anywidget.AnyWidget):
    """A hidden widget that keeps the keys pressed in its parent box's controls in the box.

    Put it among the children of a widget's outermost box (:func:`keyboard_guard` makes one).
    It has no state: all it does happens in the front end (see the module docstring).
    """

    _esm = _ESM


def keyboard_guard() -> KeyboardGuard:
    """A :class:`KeyboardGuard`, hidden (``display: none``), for a widget's outermost box."""
    return KeyboardGuard(layout=widgets.Layout(display="none"))
