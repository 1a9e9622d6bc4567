"""Live communications -> the file format, deterministic, so that `upsert -f` of an export is a no-op."""

from __future__ import annotations

from typing import Any

from .domain import COMM_TYPES
from .models import Communication

TYPE_ORDER = {t: n for n, t in enumerate(COMM_TYPES)}
EXPORT_FIELDS = (
    "communicationType",
    "channelId",
    "sender",
    "subjectTemplate",
    "messageTemplate",
    "offsetDays",
    "active",
)


def export_doc(group: int, comms: list[Communication]) -> dict[str, Any]:
    """One document: targets by id, communications by type (START, FINISH, CHANGE, REMINDER) then channel."""
    by_target: dict[int, list[Communication]] = {}
    for c in comms:
        if c.targetId is not None:
            by_target.setdefault(int(c.targetId), []).append(c)
    return {
        "targetGroupId": group,
        "targets": [
            {
                "targetId": t,
                "communications": [
                    {f: getattr(c, f) for f in EXPORT_FIELDS}
                    for c in sorted(
                        cs, key=lambda c: (TYPE_ORDER.get(c.communicationType, 99), c.communicationType, c.channelId)
                    )
                ],
            }
            for t, cs in sorted(by_target.items())
        ],
    }


def export_yaml(doc: dict[str, Any]) -> str:
    """YAML with multi-line templates as block scalars and every other string quoted only as needed."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|" if "\n" in data else None)

    Dumper.add_representer(str, text)
    return yaml.dump(doc, Dumper=Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=1_000_000)
