"""Conversations kept in the server process, keyed by a random id carried in the page URL.

A reload of the page starts a new Streamlit session; the id in ``?s=`` finds
the same conversation and collection again. Nothing is written to disk: the
turns live as long as the server, and the least recently used conversations
are forgotten beyond a limit, so memory stays bounded.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from .export import Quote
from .ui import Turn

_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
MAX_TURNS = 50


def new_id() -> str:
    """An unguessable conversation id (128 bits)."""
    return secrets.token_urlsafe(16)


def valid_id(value: object) -> bool:
    return isinstance(value, str) and bool(_ID.fullmatch(value))


@dataclass
class Conversation:
    """One browser conversation: its turns and its collection of quotes, changed in place by the app."""

    turns: list[Turn] = field(default_factory=list)
    pins: list[Quote] = field(default_factory=list)
    used: float = field(default_factory=time.monotonic)

    def trim(self) -> None:
        """Keep the latest ``MAX_TURNS`` turns."""
        del self.turns[:-MAX_TURNS]


class Conversations:
    """Conversations by id, at most ``limit`` of them (least recently used forgotten first)."""

    def __init__(self, limit: int = 200) -> None:
        self._items: OrderedDict[str, Conversation] = OrderedDict()
        self._lock = threading.Lock()
        self.limit = limit

    def get(self, conversation_id: str) -> Conversation:
        """The conversation with this id, created empty if unknown."""
        with self._lock:
            item = self._items.get(conversation_id)
            if item is None:
                item = self._items[conversation_id] = Conversation()
            self._items.move_to_end(conversation_id)
            item.used = time.monotonic()
            while len(self._items) > self.limit:
                self._items.popitem(last=False)
            return item

    def __len__(self) -> int:
        return len(self._items)
