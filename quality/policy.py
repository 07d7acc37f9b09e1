"""The gate policy (``quality/policy.yaml``): block or warn, per table and expectation."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml

from quality.rules import RowRule

POLICY_YAML = Path(__file__).parent / "policy.yaml"
Gate = Literal["block", "warn"]
GATES: tuple[str, ...] = ("block", "warn")


@dataclass(frozen=True)
class Policy:
    """Parsed gate policy; :meth:`gate` answers block or warn for (table, expectation)."""

    version: str
    default: Gate = "block"
    expectations: dict[str, Gate] = field(default_factory=dict)
    tables: dict[str, dict[str, Gate]] = field(default_factory=dict)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)

    def gate(self, table: str, expectation: str) -> Gate:
        """The gate of ``expectation`` on ``table`` (qualified name, e.g. ``silver.fct_penalty``).

        Order: exact table, then table patterns such as ``bronze.*``; within each the
        expectation name before ``*``; then the global expectation entry; then the default.
        """
        exact = self.tables.get(table, {})
        patterns = [v for k, v in self.tables.items() if k != table and fnmatch.fnmatch(table, k)]
        for entries in (exact, *patterns):
            for name in (expectation, "*"):
                if name in entries:
                    return entries[name]
        return self.expectations.get(expectation, self.default)

    def param(self, check: str, name: str, default: Any) -> Any:
        """A numeric parameter of a table-level check (``params.<check>.<name>``)."""
        return self.params.get(check, {}).get(name, default)


def _validated(gate: Any, where: str) -> Gate:
    if gate not in GATES:
        raise ValueError(f"policy: {where} must be one of {GATES}, got {gate!r}")
    return gate


def parse_policy(data: dict[str, Any]) -> Policy:
    """Build a :class:`Policy` from the YAML mapping; raise ValueError on an unknown gate."""
    expectations = {
        k: _validated(v, f"expectations.{k}") for k, v in (data.get("expectations") or {}).items()
    }
    tables = {
        t: {k: _validated(v, f"tables.{t}.{k}") for k, v in (entries or {}).items()}
        for t, entries in (data.get("tables") or {}).items()
    }
    return Policy(
        version=str(data.get("version", "unversioned")),
        default=_validated(data.get("default", "block"), "default"),
        expectations=expectations,
        tables=tables,
        params=data.get("params") or {},
    )


def load_policy(path: Path | str | None = None) -> Policy:
    """The policy in ``path`` (default: the reviewed ``quality/policy.yaml``)."""
    text = Path(path or POLICY_YAML).read_text(encoding="utf-8")
    return parse_policy(yaml.safe_load(text) or {})


@lru_cache(maxsize=1)
def default_policy() -> Policy:
    """The reviewed policy file, read once per process."""
    return load_policy()


def policy_for(settings: Any) -> Policy:
    """The policy named by ``settings.quality_policy``, else the reviewed default."""
    path = getattr(settings, "quality_policy", None)
    return load_policy(path) if path else default_policy()


def blocking_rules(
    target: str, rules: list[RowRule], policy: Policy | None = None
) -> list[RowRule]:
    """The rules of ``rules`` whose gate on ``target`` is ``block`` (their rows are quarantined)."""
    p = policy or default_policy()
    return [r for r in rules if p.gate(target, r.name) == "block"]
