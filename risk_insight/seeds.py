"""Plan seeds no one can know in advance and anyone can check afterwards (commit-reveal).

When a plan period opens — at the latest when the first daily run of the period starts, before
it builds the tiers, and normally one period earlier, when the previous period's plan is drawn
— a fresh seed is drawn from the operating system's CSPRNG and only its commitment

    commitment = sha256("<plan_id>|<seed>")  (hex)

is recorded in ``audit.plan_commitments`` and published as
``<outputs>/plans/commitments/<plan_id>.json``. The seed itself stays sealed under
``<secrets_dir>/plan_seeds/<lake>/<plan_id>.seed`` (folders 0700, file 0600, outside the lake,
like the personal-data key) until the plan is drawn; the plan and its manifest reveal it. An
enterprise cannot compute its draw value before the plan is published (the seed is 62 random
bits), and anyone can check afterwards that the revealed seed is the committed one, so the
bureau could not pick a seed after seeing the tiers. A period never gets a second commitment:
:func:`commit` returns the recorded one.

A seed given explicitly (tests, an operator re-drawing by hand) or fixed in the policy is
recorded with ``seed_source`` ``explicit`` / ``policy``: such a draw is reproducible but
predictable, and the manifest says so.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from risk_insight.calendar import Period
from warehouse import tables
from warehouse.settings import Settings, get_settings

SEED_BITS = 62  # fits the plan table's BIGINT seed column


def commitment_of(plan_id: str, seed: int) -> str:
    """The published commitment of ``seed`` for ``plan_id``: sha256("plan_id|seed") hex."""
    return hashlib.sha256(f"{plan_id}|{int(seed)}".encode()).hexdigest()


@dataclass(frozen=True)
class Commitment:
    """A period's recorded commitment (the seed is not part of it)."""

    plan_id: str
    period_start: str
    period_end: str
    commitment: str
    seed_source: str
    committed_at: str
    policy_version: str

    def as_dict(self) -> dict[str, str]:
        return dict(self.__dict__)


def _seed_file(settings: Settings, plan_id: str) -> Path:
    # one folder per lake: two lakes sharing a secrets folder never share a period's seed
    lake = hashlib.sha256(settings.lake_root.encode()).hexdigest()[:12]
    return Path(settings.secrets_dir) / "plan_seeds" / lake / f"{plan_id}.seed"


def commitments_folder(settings: Settings) -> Path:
    """Where commitments are published: ``<outputs>/plans/commitments/``."""
    return Path(settings.outputs_root) / "plans" / "commitments"


def recorded(spark: SparkSession, plan_id: str, settings: Settings) -> Commitment | None:
    """The commitment recorded for ``plan_id``, or None."""
    rows = (
        tables.read(spark, tables.PLAN_COMMITMENTS, settings)
        .where(F.col("plan_id") == F.lit(plan_id))
        .orderBy("committed_at")
        .limit(1)
        .collect()
    )
    if not rows:
        return None
    r = rows[0]
    return Commitment(
        r["plan_id"],
        r["period_start"].isoformat(),
        r["period_end"].isoformat(),
        r["commitment"],
        r["seed_source"],
        r["committed_at"].isoformat(timespec="seconds"),
        r["policy_version"],
    )


def commit(
    spark: SparkSession,
    period: Period,
    policy_version: str,
    settings: Settings | None = None,
    seed: int | None = None,
    seed_source: str = "committed",
) -> Commitment:
    """Record (and publish) the commitment of ``period``'s seed; a fresh random seed unless
    ``seed`` is given. Returns the existing commitment when the period already has one."""
    s = settings or get_settings()
    done = recorded(spark, period.plan_id, s)
    if done is not None:
        return done
    if seed is None:
        seed = secrets.randbits(SEED_BITS)
        seed_source = "committed"
    path = _seed_file(s, period.plan_id)
    for folder in (path.parent.parent, path.parent):
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)
    path.write_text(str(int(seed)), encoding="ascii")
    path.chmod(0o600)
    now = datetime.now().replace(microsecond=0)
    c = Commitment(
        period.plan_id,
        period.start.isoformat(),
        period.end.isoformat(),
        commitment_of(period.plan_id, seed),
        seed_source,
        now.isoformat(timespec="seconds"),
        policy_version,
    )
    row = (c.plan_id, period.start, period.end, c.commitment, seed_source, now, policy_version)
    tables.append(
        spark.createDataFrame([row], tables.PLAN_COMMITMENTS.schema), tables.PLAN_COMMITMENTS, s
    )
    publish_commitment(c, s)
    return c


def publish_commitment(c: Commitment, settings: Settings) -> Path:
    """Write the public commitment file of one period (no seed in it)."""
    folder = commitments_folder(settings)
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{c.plan_id}.json"
    body = {**c.as_dict(), "method": "commitment = sha256('<plan_id>|<seed>'), hex"}
    out.write_text(json.dumps(body, ensure_ascii=False, indent=2), encoding="utf-8")
    return out


def reveal(
    spark: SparkSession, plan_id: str, settings: Settings | None = None
) -> tuple[int, Commitment]:
    """The sealed seed of ``plan_id`` and its commitment; raises if either is missing or
    they do not match (a sealed seed must never be replaced)."""
    s = settings or get_settings()
    c = recorded(spark, plan_id, s)
    if c is None:
        raise LookupError(f"no seed commitment recorded for {plan_id}")
    path = _seed_file(s, plan_id)
    if not path.is_file():
        raise FileNotFoundError(
            f"the sealed seed of {plan_id} is missing ({path}); its commitment {c.commitment} "
            "was published, so the plan cannot be drawn with another seed"
        )
    seed = int(path.read_text(encoding="ascii").strip())
    if commitment_of(plan_id, seed) != c.commitment:
        raise ValueError(f"the sealed seed of {plan_id} does not match its commitment")
    return seed, c
