"""Delta's optimistic-concurrency conflicts: retried with backoff, or reported clearly.

A Delta write either commits whole or not at all: when another writer committed first and the
two transactions conflict, Delta refuses the commit (``ConcurrentAppendException`` and
friends) and the files this writer wrote stay uncommitted (invisible, removed by VACUUM). The
lake is never half-written, so retrying the *whole* operation (it re-reads the table) is safe
for the engine's writes, which are idempotent (MERGE on keys, ``replaceWhere`` of a batch).

The lake lock (:mod:`warehouse.lock`) keeps the engine's own writers apart; this module covers
what the lock cannot: writers outside the engine (an operator's OPTIMIZE, another tool) and two
processes creating the same table at the same moment.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# Delta's concurrent-modification errors (Python class names and Spark error conditions).
CONFLICT_CLASSES = frozenset(
    {
        "ConcurrentAppendException",
        "ConcurrentDeleteReadException",
        "ConcurrentDeleteDeleteException",
        "ConcurrentTransactionException",
        "ConcurrentWriteException",
        "MetadataChangedException",
        "ProtocolChangedException",
        "DeltaConcurrentModificationException",
    }
)
CONFLICT_CONDITIONS = frozenset(
    {
        "DELTA_CONCURRENT_APPEND",
        "DELTA_CONCURRENT_DELETE_READ",
        "DELTA_CONCURRENT_DELETE_DELETE",
        "DELTA_CONCURRENT_TRANSACTION",
        "DELTA_CONCURRENT_WRITE",
        "DELTA_METADATA_CHANGED",
        "DELTA_PROTOCOL_CHANGED",
    }
)


class WriteConflict(RuntimeError):
    """A Delta write kept conflicting with other writers; nothing of it was committed."""


def _condition(exc: BaseException) -> str:
    for name in ("getCondition", "getErrorClass"):
        get = getattr(exc, name, None)
        if callable(get):
            try:
                value = get()
            except Exception:  # noqa: BLE001 - a py4j object without the method
                value = None
            if value:
                return str(value)
    return ""


def conflict_kind(exc: BaseException) -> str | None:
    """The name of the Delta concurrent-modification error ``exc`` is (None: not one)."""
    for cls in type(exc).__mro__:
        if cls.__name__ in CONFLICT_CLASSES:
            return cls.__name__
    condition = _condition(exc).split(".")[0]
    if condition in CONFLICT_CONDITIONS:
        return condition
    text = str(exc)
    return next((name for name in CONFLICT_CLASSES if name in text), None)


def retrying(
    operation: Callable[[], T],
    what: str,
    attempts: int = 5,
    base_delay: float = 0.5,
    say: Callable[[str], None] | None = None,
) -> T:
    """Run ``operation`` (a whole, idempotent Delta write); on a concurrent-modification
    conflict run it again after an exponential, jittered backoff, up to ``attempts`` times.
    Any other error propagates unchanged; a conflict that persists raises
    :class:`WriteConflict` naming ``what`` and the conflict (nothing of it was committed)."""
    for attempt in range(1, attempts + 1):
        try:
            return operation()
        except Exception as exc:
            kind = conflict_kind(exc)
            if kind is None:
                raise
            if attempt == attempts:
                raise WriteConflict(
                    f"写入冲突 / {what}: {kind} on each of {attempts} attempts (another writer "
                    "keeps changing the table); nothing of this write was committed"
                ) from exc
            delay = base_delay * 2 ** (attempt - 1) * (0.5 + random.random())
            if say:
                say(f"{what}: {kind}, retrying in {delay:.1f} s ({attempt}/{attempts})")
            time.sleep(delay)
    raise AssertionError("unreachable")
