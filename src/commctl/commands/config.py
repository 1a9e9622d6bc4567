"""`config show`: the resolved settings and where each came from, secrets masked."""

from __future__ import annotations

from .. import render
from ..runtime import Run


def show(run: Run) -> int:
    rows = run.settings.shown()
    data = {name: {"value": value or None, "source": source or None} for name, value, source in rows}
    run.emit(data, lambda: render.rows_table(render.SETTING_COLUMNS, rows))
    return 0
