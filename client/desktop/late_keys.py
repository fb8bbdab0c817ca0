"""Keys typed in the frame a text box opened in, given to the box.

Panda3D hands a frame's keystrokes to the focused DirectEntry in its data loop, before the
app hears that frame's keys; a box that a key opens (Enter the chat, F the directory) takes
the focus only then, so whatever was typed after that key in the same frame never reached
it, and the box opened empty. A frame is long on a slow or busy machine (a hall being built
on the software renderer, the CPU taken by something else): the fresh-clone CI lost the
first 61 characters of a chat line so (here, under load, a 2-second frame lost 17). The
window's ``keystroke`` events come in order with the keys, so the ones after the opening
key, in its frame, are the box's: ``LateKeys`` types them in, and says when an Enter of
that frame is the box's too.

``typed`` is the pure part (also the card editor's, whose fields take every keystroke so)."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import TYPE_CHECKING

from direct.showbase.DirectObject import DirectObject

if TYPE_CHECKING:
    from direct.gui.DirectEntry import DirectEntry


def typed(value: str, key: str, limit: int | None = None) -> str:
    """A value after one keystroke (a character) or ``"backspace"``; control characters
    (Tab, Enter, Esc arrive as their own keys) and format characters change nothing, nor
    does a character past ``limit``."""
    if key == "backspace":
        return value[:-1]
    if len(key) != 1 or unicodedata.category(key) in ("Cc", "Cf") or (limit is not None and len(value) >= limit):
        return value
    return value + key


class LateKeys(DirectObject):
    """The box opened last, and the frame it opened in: that frame's later keystrokes are its."""

    def __init__(self, frame: Callable[[], int]) -> None:
        super().__init__()
        self._frame = frame
        self._box: tuple[int, DirectEntry, Callable[[str], None] | None] | None = None
        self.accept("keystroke", self._keystroke)
        self.accept("backspace", self._keystroke, ["backspace"])
        self.accept("backspace-repeat", self._keystroke, ["backspace"])

    def opened(self, entry: DirectEntry, on_change: Callable[[str], None] | None = None) -> None:
        """``entry`` took the focus in a key's handler. ``on_change``: told the text after each
        character given (the entry's own typing events do not fire for text set from here)."""
        self._box = (self._frame(), entry, on_change)

    def pending(self, entry: DirectEntry) -> bool:
        """Whether ``entry`` opened in this frame and has the focus: an Enter now was typed
        into it (the entry did not see it), not one for the app."""
        return self._current() is entry

    def _current(self) -> DirectEntry | None:
        if self._box is None:
            return None
        frame, entry, _ = self._box
        if frame != self._frame() or entry.isEmpty() or not entry["focus"]:
            self._box = None  # a later frame: the entry has the keys itself (or was closed)
            return None
        return entry

    def _keystroke(self, key: str) -> None:
        entry = self._current()
        if entry is None or self._box is None:
            return
        before = entry.get()
        after = typed(before, key)
        if after != before:
            entry.enterText(after)
            if self._box[2] is not None:
                self._box[2](after)
