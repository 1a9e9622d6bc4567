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


def describe_credentials(stored: list[tuple[str, str, str, int]], seed: dict[str, Any]) -> list[str]:
    """What `sandbox serve` prints: each credential the state accepts, with its secret when `seed` has it.

    `stored` holds (kind, name, md5 of the secret, token lifetime). A secret shows only when the seed at
    hand (the one given, or the built-in one) has the same name with a secret of that digest; the state
    itself keeps digests, not secrets.
    """
    from .store import md5

    creds = seed.get("credentials", {})
    known = {("basic", b["username"]): b["password"] for b in creds.get("basic", [])}
    known |= {("oauth", o["key"]): o["secret"] for o in creds.get("oauth", [])}
    lines = []
    for kind, name, digest, ttl in stored:
        secret = known.get((kind, name))
        shown = secret if secret is not None and md5(secret) == digest else "(secret from the seed that set it)"
        if kind == "basic":
            lines.append(f"Basic {name} / {shown}")
        else:
            lines.append(f"OAuth client key {name} / secret {shown} (tokens live {ttl} s)")
    return lines
