"""What a process remembers from one run to the next, and how to forget it.

A command runs one day and exits, so reading a mapping folder, a policy file or a table's
existence once per process is once per run. A long-running process (the DAGs' step server,
``dags/step_server.py``) runs many: between them it calls :func:`forget`, so an edited policy,
a re-delivered mapping or a lake removed and rebuilt under the same path is read again, as a
fresh process would read it. Every such cache is declared with :func:`per_run` (a function's
results) or :func:`remember` (a module's own dict), so forgetting needs no list of them.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_CLEARS: list[Callable[[], None]] = []


def per_run(maxsize: int = 8) -> Callable[[F], F]:
    """``functools.lru_cache(maxsize)`` whose results :func:`forget` drops."""

    def wrap(fn: F) -> F:
        cached = lru_cache(maxsize=maxsize)(fn)
        _CLEARS.append(cached.cache_clear)
        return cached  # type: ignore[return-value]

    return wrap


def remember(store: dict[Any, Any]) -> dict[Any, Any]:
    """Declare a module's own ``store`` (a dict filled as the process goes) as a per-run cache
    that :func:`forget` empties; returns it."""
    _CLEARS.append(store.clear)
    return store


def forget() -> None:
    """Drop everything the per-run caches hold (the next run reads it again)."""
    for clear in _CLEARS:
        clear()
