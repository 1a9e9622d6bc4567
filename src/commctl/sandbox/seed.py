"""Seed files: the channels, target groups, targets and credentials a sandbox starts with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import InputError

DEFAULT_SEED = Path(__file__).with_name("default-seed.yaml")


class _Seed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChannelSeed(_Seed):
    id: int = Field(ge=1)
    name: str


class TargetSeed(_Seed):
    id: int = Field(ge=1)
    name: str = ""
    description: str = ""
    targetType: str = "SALES"


class GroupSeed(_Seed):
    id: int = Field(ge=1)
    name: str = ""
    description: str = ""
    targets: list[TargetSeed] = []


class BasicSeed(_Seed):
    username: str
    password: str


class OAuthSeed(_Seed):
    key: str
    secret: str
    ttlSeconds: int = Field(3600, ge=1)


class CredentialsSeed(_Seed):
    basic: list[BasicSeed] = []
    oauth: list[OAuthSeed] = []


class CommunicationSeed(_Seed):
    targetGroupId: int
    targetId: int
    communicationType: str
    channelId: int
    messageTemplate: str
    sender: str = ""
    subjectTemplate: str = ""
    offsetDays: int = 0
    active: bool = True


class Seed(_Seed):
    channels: list[ChannelSeed] = []
    targetGroups: list[GroupSeed] = []
    credentials: CredentialsSeed = CredentialsSeed()
    communications: list[CommunicationSeed] = []


def load_seed(path: Path | None) -> dict[str, Any]:
    import yaml

    path = path or DEFAULT_SEED
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return Seed.model_validate(data).model_dump()
    except OSError as e:
        raise InputError([f"{path}: cannot read seed: {e.strerror or e}"]) from None
    except yaml.YAMLError as e:
        raise InputError([f"{path}: invalid YAML: {e}"]) from None
    except ValidationError as e:
        lines = [f"{path}: {'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors()]
        raise InputError(lines) from None
