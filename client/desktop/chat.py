"""What the chat box sends and shows: prefixes pick the channel, lines are kept short."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from protocol.limits import MAX_CHAT_LEN

PROXIMITY, BOOTH, ANNOUNCEMENT = 0, 1, 2
PREFIXES = {"/booth": BOOTH, "/b": BOOTH, "/announce": ANNOUNCEMENT, "/say": PROXIMITY}
CHANNEL_TAGS = {PROXIMITY: "", BOOTH: "[booth] ", ANNOUNCEMENT: "[announcement] "}


@dataclass(frozen=True, slots=True)
class Outgoing:
    channel: int
    text: str


class ChatError(ValueError):
    """A line the server would refuse; the message is for the visitor."""


def parse(line: str) -> Outgoing | None:
    """``"/booth hi"`` -> booth channel; plain text -> proximity; blank -> None."""
    text = line.strip()
    if not text:
        return None
    channel = PROXIMITY
    if text.startswith("/"):
        word, _, rest = text.partition(" ")
        if word.lower() not in PREFIXES:
            raise ChatError(f"unknown command {word}: use /booth or /announce, or just type")
        channel, text = PREFIXES[word.lower()], rest.strip()
        if not text:
            return None
    if len(text) > MAX_CHAT_LEN:
        raise ChatError(f"too long: {len(text)} characters, at most {MAX_CHAT_LEN}")
    return Outgoing(channel, text)


class ChatLog:
    """The newest lines, formatted for the chat panel."""

    def __init__(self, keep: int = 8) -> None:
        self.lines: deque[str] = deque(maxlen=keep)

    def add(self, channel: int, name: str, text: str, booth: str | None = None) -> str:
        tag = CHANNEL_TAGS.get(channel, "")
        if channel == BOOTH and booth:
            tag = f"[{booth}] "
        line = f"{tag}{name}: {text}"
        self.lines.append(line)
        return line

    def note(self, text: str) -> None:
        """A line from the client itself (an error, a hint)."""
        self.lines.append(f"* {text}")
