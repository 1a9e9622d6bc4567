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
    SKIPPED = "skipped"  # never attempted: the run was interrupted or stopped by a fatal error
    CONFLICT = "conflict"  # apply/restore: the live value moved since the plan or run; not sent
    UNKNOWN = "unknown"  # the write's answer was lost and reading it back failed too

    @property
    def would(self) -> Action:
        """The dry-run form of a planned action (a forced unchanged item would be updated)."""
        return Action.WOULD_CREATE if self is Action.CREATE else Action.WOULD_UPDATE

    @property
    def pending(self) -> bool:
        return self in (Action.WOULD_CREATE, Action.WOULD_UPDATE)

    @property
    def planned(self) -> bool:
        """Still a plan (create, update, or a forced unchanged), not an outcome."""
        return self in (Action.CREATE, Action.UPDATE, Action.UNCHANGED)


BASE_ACTIONS = (Action.CREATED, Action.UPDATED, Action.UNCHANGED, Action.FAILED)
