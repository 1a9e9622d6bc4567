"""Pause Python's cyclic garbage collector while a step builds many objects that all stay alive.

Loading 50,000 communications or rendering 20,000 table rows makes hundreds of thousands of objects
and no cycles; the collector's passes over them would find nothing and cost up to half the step
(SPEC 9). Reference counting still frees everything as usual.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
