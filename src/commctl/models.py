"""The three kinds of model: what users write (strict), what the API returns (lenient), what we plan.

Input models refuse unknown keys and wrong types; wire models accept whatever the real API has been
seen to send (see "Unknowns a client must tolerate" in the API reference).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .domain import Action, CommType
from .errors import error_dict

INT32_MAX = 2**31 - 1
Id = Annotated[int, Field(ge=1, le=2**63 - 1)]
ChannelId = Annotated[int, Field(ge=1, le=INT32_MAX)]
OffsetDays = Annotated[
    int, Field(ge=0, le=INT32_MAX, description="Delivery offset in days (REMINDER: days before the period ends)")
]

# The fields of a communication that the user sets and the API stores, in wire order.
VALUE_FIELDS = ("sender", "subjectTemplate", "messageTemplate", "offsetDays", "active")
WIRE_ORDER = ("active", "channelId", "communicationType", "messageTemplate", "offsetDays", "sender", "subjectTemplate")
CREATE_DEFAULTS: dict[str, Any] = {"active": True, "offsetDays": 0, "sender": "", "subjectTemplate": ""}
# Pairs of keys of which at most one may be given in one mapping.
EXCLUSIVE = (
    ("channelId", "channel"),
    ("messageTemplate", "messageTemplateFile"),
    ("subjectTemplate", "subjectTemplateFile"),
)


# defer_build: a model's validator is built when first used, not at import; each costs ~2 ms of start-up,
# and a command uses either the input models (files) or the wire models (replies), rarely both.


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)


class CommunicationFields(_Strict):
    """Fields that may appear both in `defaults` and in a communication."""

    model_config = ConfigDict(json_schema_extra={"allOf": [{"not": {"required": list(pair)}} for pair in EXCLUSIVE]})

    channelId: ChannelId | None = Field(None, description="Channel id from `commctl channels`")
    channel: str | None = Field(None, min_length=1, description="Channel name (e.g. EMAIL, SMS), resolved online")
    sender: str | None = None
    subjectTemplate: str | None = None
    subjectTemplateFile: str | None = Field(None, min_length=1, description="Path relative to this file")
    messageTemplate: str | None = None
    messageTemplateFile: str | None = Field(None, min_length=1, description="Path relative to this file")
    offsetDays: OffsetDays | None = None
    active: bool | None = None

    @model_validator(mode="after")
    def _at_most_one_of_each_pair(self) -> CommunicationFields:
        for a, b in EXCLUSIVE:
            if getattr(self, a) is not None and getattr(self, b) is not None:
                raise ValueError(f"give either {a} or {b}, not both")
        return self


class CommunicationIn(CommunicationFields):
    communicationType: CommType


class TargetIn(_Strict):
    targetId: Id
    communications: list[CommunicationIn] = Field(min_length=1)


class DocumentIn(_Strict):
    """One target group: its defaults and the communications of its targets."""

    model_config = ConfigDict(title="commctl communications file")
    targetGroupId: Id
    defaults: CommunicationFields | None = None
    targets: list[TargetIn] = Field(min_length=1)


# ---- what the API returns (lenient) ----


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow", defer_build=True)


class Communication(_Lenient):
    id: int | None = None
    targetGroupId: int | None = None
    targetId: int | None = None
    communicationType: str
    channelId: int
    sender: str = ""
    subjectTemplate: str = ""
    messageTemplate: str = ""
    offsetDays: int = 0
    active: bool = True
    attribution: dict[str, Any] | None = None

    @field_validator("sender", "subjectTemplate", "messageTemplate", mode="before")
    @classmethod
    def _null_is_empty(cls, v: Any) -> Any:
        return "" if v is None else v

    @property
    def key(self) -> tuple[str, int]:
        return (self.communicationType, self.channelId)

    def values(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in VALUE_FIELDS}

    def api_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class Channel(_Lenient):
    id: int
    name: str = ""

    @field_validator("name", mode="before")
    @classmethod
    def _null_is_empty(cls, v: Any) -> Any:
        return "" if v is None else v


class Entity(_Lenient):
    """A target group or a target: only its id is relied on; everything else is passed through."""

    id: int


TOKEN_TTL_MAX = 30 * 24 * 3600  # the longest lifetime Capillary grants an API client's token


class Token(_Lenient):
    accessToken: str
    ttlSeconds: int | None = None

    @field_validator("ttlSeconds", mode="after")
    @classmethod
    def _sane_ttl(cls, v: int | None) -> int | None:
        """No lifetime (renew after a 401 only) for nonsense; at most the API's own maximum."""
        return None if v is None or v <= 0 else min(v, TOKEN_TTL_MAX)


# ---- what we plan ----


@dataclass(slots=True)
class Desired:
    """One communication the user asked for: its key and only the fields the user gave."""

    group: int
    target: int
    type: str
    channel: int | str  # an id, or a name still to be resolved online
    fields: dict[str, Any]
    where: str = ""  # FILE:LINE:COL of the mapping that declared it, for messages
    channel_name: str | None = None
    locs: Mapping[str, str] = field(default_factory=dict)  # field -> FILE:LINE:COL

    @property
    def label(self) -> str:
        return f"group {self.group} target {self.target} {self.type}/{self.channel_name or self.channel}"


@dataclass(slots=True)
class Item:
    """The plan and then the outcome for one communication.

    A run may hold 50,000: what can be worked out from the fields (changes, the body to send) is
    worked out when asked, not kept.
    """

    group: int
    target: int
    type: str | None
    channel: int | None
    action: Action  # planned (create, update, unchanged), then the outcome
    live: Communication | None = None
    desired: dict[str, Any] | None = None  # the full merged value fields to send
    result: dict[str, Any] | None = None  # what the API holds after the write (see `communication`)
    failure: BaseException | None = None

    @property
    def key(self) -> tuple[str | None, int | None]:
        return (self.type, self.channel)

    def key_fields(self) -> dict[str, Any]:
        """The communication's key as the JSON documents (results, plans, the journal) name it."""
        return {
            "targetGroupId": self.group,
            "targetId": self.target,
            "communicationType": self.type,
            "channelId": self.channel,
        }

    @property
    def label(self) -> str:
        """`group G target T TYPE/CHANNEL`, or just the target when the item stands for a target not read."""
        what = f" {self.type}/{self.channel}" if self.type is not None and self.channel is not None else ""
        return f"group {self.group} target {self.target}{what}"

    @property
    def changes(self) -> dict[str, dict[str, Any]]:
        """`{field: {"from": live value, "to": desired value}}` for each value field the plan changes."""
        after = self.desired
        if after is None:
            return {}
        before = self.live.values() if self.live else {}
        return {
            f: {"from": before.get(f), "to": after[f]} for f in VALUE_FIELDS if f in after and before.get(f) != after[f]
        }

    def wire(self) -> dict[str, Any]:
        """The body to send: the desired fields and the key, in the API's field order."""
        assert self.desired is not None
        full = {**self.desired, "communicationType": self.type, "channelId": self.channel}
        return {k: full[k] for k in WIRE_ORDER}

    @property
    def communication(self) -> dict[str, Any] | None:
        """The communication as the results show it: what the API holds, or what a dry run would send."""
        return self.wire() if self.action.pending else self.result

    @property
    def error(self) -> dict[str, Any] | None:
        """`{status, code, message}` of the failure, as the JSON results show it."""
        return error_dict(self.failure) if self.failure else None


def json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of the communication file format."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **DocumentIn.model_json_schema()}
