"""GB/T 2260 administrative divisions (行政区划代码): the complete national list with validity,
and the bureau's jurisdiction.

The list is ``quality/reference/gbt2260.csv`` (provenance in ``PROVENANCE.md``): province,
city and county codes, one row per period a code kept its name. Rules read it to decide
whether a code exists and was in force on a date; lists and dashboards take region names from
it. A bureau restricts its area with ``settings.jurisdiction`` (codes or prefixes).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

GBT2260_CSV = Path(__file__).parent / "reference" / "gbt2260.csv"
# Municipalities directly under the central government: their districts have no city level.
MUNICIPALITIES = ("110000", "120000", "310000", "500000")


@dataclass(frozen=True)
class Region:
    """One code over its whole life: its latest name, level, parents and years in force
    (``valid_to_year`` None: in force today)."""

    region_code: str
    region_name: str
    level: str  # province | city | county
    parent_code: str | None
    city_code: str | None
    city_name: str | None
    province_code: str
    province_name: str
    valid_from_year: int
    valid_to_year: int | None


@lru_cache(maxsize=1)
def regions() -> dict[str, Region]:
    """Every code in the national list, by code."""
    with GBT2260_CSV.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    periods: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        periods.setdefault(r["region_code"], []).append(r)

    def latest(code: str) -> dict[str, str]:
        return max(periods[code], key=lambda r: int(r["valid_from_year"]))

    out: dict[str, Region] = {}
    for code, ps in periods.items():
        last = latest(code)
        province = code[:2] + "0000"
        city = last["city_code"] or (province if province in MUNICIPALITIES else "")
        ends = [p["valid_to_year"] for p in ps]
        out[code] = Region(
            region_code=code,
            region_name=last["name"],
            level=last["level"],
            parent_code=last["parent_code"] or None,
            city_code=city or None,
            city_name=latest(city)["name"] if city in periods else None,
            province_code=province,
            province_name=latest(province)["name"] if province in periods else "",
            valid_from_year=min(int(p["valid_from_year"]) for p in ps),
            valid_to_year=None if "" in ends else max(int(e) for e in ends),
        )
    return out


def in_force(code: str, year: int) -> bool:
    """True when ``code`` is in the list and in force in ``year``."""
    r = regions().get(code)
    return (
        r is not None
        and r.valid_from_year <= year
        and (r.valid_to_year is None or year < r.valid_to_year)
    )


def in_jurisdiction(code: str | None, jurisdiction: list[str]) -> bool:
    """True when ``code`` starts with one of the ``jurisdiction`` codes or prefixes (a
    province or city code counts as its prefix: 110000 covers 110105); always True when
    ``jurisdiction`` is empty."""
    if not jurisdiction:
        return True
    if code is None:
        return False
    return any(code.startswith(_prefix(j)) for j in jurisdiction)


def _prefix(code: str) -> str:
    """110000 → 11, 440300 → 4403, 110105 → 110105; a shorter prefix is kept as given."""
    if len(code) == 6 and code.endswith("0000"):
        return code[:2]
    if len(code) == 6 and code.endswith("00"):
        return code[:4]
    return code


def jurisdiction_prefixes(jurisdiction: list[str]) -> list[str]:
    """The prefixes :func:`in_jurisdiction` compares with."""
    return [_prefix(j) for j in jurisdiction]
