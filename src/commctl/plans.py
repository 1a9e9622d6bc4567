"""Saved plans: the exact change set `diff --plan-out` wrote, checked and applied later by `apply`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from .domain import Action, CommType
from .errors import InputError, UsageError
from .journal import now_iso, values
from .jsonout import Rows
from .models import VALUE_FIELDS, Item

KIND = "commctl-plan"


class PlannedChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    targetGroupId: int
    targetId: int
    communicationType: CommType
    channelId: int
    action: Literal["create", "update"]
    before: dict[str, Any] | None  # the value fields the plan expects live; None: absent
    after: dict[str, Any]  # the value fields to send

    @field_validator("before", "after")
    @classmethod
    def _every_value_field(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and sorted(value) != sorted(VALUE_FIELDS):
            raise ValueError(f"expected exactly the fields {', '.join(VALUE_FIELDS)}")
        return value


class Plan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["commctl-plan"]
    version: Literal[1]
    host: str
    createdAt: str
    command: str
    items: list[PlannedChange]

    @property
    def targets(self) -> list[tuple[int, int]]:
        return list(dict.fromkeys((c.targetGroupId, c.targetId) for c in self.items))


def plan_doc(items: list[Item], host: str, command: str) -> dict[str, Any]:
    """Only what would change: each item's key, the live value it expects, and the value it sends."""
    pending = [i for i in items if i.action in (Action.WOULD_CREATE, Action.WOULD_UPDATE)]
    rows = Rows(pending, _change)  # made one at a time as the plan file is written
    return {"kind": KIND, "version": 1, "host": host, "createdAt": now_iso(), "command": command, "items": rows}


def _change(i: Item) -> dict[str, Any]:
    return {
        **i.key_fields(),
        "action": "create" if i.live is None else "update",
        "before": values(i.live.api_dict()) if i.live else None,
        "after": values(i.desired),
    }


def load_plan(path: str) -> Plan:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read the plan {path}: {getattr(e, 'strerror', None) or e}") from None
    try:
        return Plan.model_validate(json.loads(text))
    except ValueError as e:
        first = e.errors()[0] if isinstance(e, ValidationError) else None
        where = ".".join(str(p) for p in first["loc"]) if first else ""
        reason = f"{where}: {first['msg']}" if first else "not JSON"
        raise InputError(
            [f"{path}: not a commctl plan ({reason})"], hint="make one with `commctl diff --plan-out`"
        ) from None
