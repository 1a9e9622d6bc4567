"""Live communications -> the file format, deterministic, so that `upsert -f` of an export is a no-op."""

from __future__ import annotations

import re
from typing import Any

from .domain import COMM_TYPES
from .models import VALUE_FIELDS, Communication

_OTHER_BREAKS = re.compile("[\r\x85\u2028\u2029]")
TYPE_ORDER = {t: n for n, t in enumerate(COMM_TYPES)}
EXPORT_FIELDS = ("communicationType", "channelId", *VALUE_FIELDS)


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

    from .parse import resolve_plain

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
        # YAML readers take CR, NEL, LS and PS for line breaks (and normalise them to LF inside block
        # and single-quoted scalars): only double quotes, which escape them, keep such text exact.
        # PyYAML writes "1e3" or "0o7" bare, as YAML 1.1 reads them as text; commctl reads YAML 1.2
        style = '"' if _OTHER_BREAKS.search(data) else ("|" if "\n" in data else None)
        if style is None and resolve_plain(data) is not data:
            style = "'"
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)

    Dumper.add_representer(str, text)
    return yaml.dump(doc, Dumper=Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=1_000_000)
