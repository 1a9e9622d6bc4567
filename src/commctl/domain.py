"""Names the whole program shares: communication types, item actions, defaults. Standard library only."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, get_args

CommType = Literal["START", "FINISH", "CHANGE", "REMINDER"]
COMM_TYPES: tuple[str, ...] = get_args(CommType)
DEFAULT_CONCURRENCY = 8
MAX_CONCURRENCY = 64


class Action(StrEnum):
    """What is planned for one communication, and then what became of it."""

    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    CREATED = "created"
    UPDATED = "updated"
    FAILED = "failed"
    WOULD_CREATE = "would-create"
    WOULD_UPDATE = "would-update"

    @property
    def would(self) -> Action:
        """The dry-run form of a planned action (a forced unchanged item would be updated)."""
        return Action.WOULD_CREATE if self is Action.CREATE else Action.WOULD_UPDATE

    @property
    def done(self) -> Action:
        """The outcome of a planned action that the server accepted."""
        return Action.CREATED if self is Action.CREATE else Action.UPDATED

    @property
    def pending(self) -> bool:
        return self in (Action.WOULD_CREATE, Action.WOULD_UPDATE)


BASE_ACTIONS = (Action.CREATED, Action.UPDATED, Action.UNCHANGED, Action.FAILED)
