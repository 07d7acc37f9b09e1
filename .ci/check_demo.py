"""After `make demo` on a clean clone: the lake under ./lakehouse holds scores and tiers,
every district's target list was written (read with the independent `deltalake` reader), and
every published plan verifies from its public files."""

from __future__ import annotations

import sys
from pathlib import Path

from deltalake import DeltaTable

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    problems = []
    for table in ("gold/risk_scores", "gold/credit_tiers", "gold/inspection_plan"):
        path = ROOT / "lakehouse" / table
        rows = DeltaTable(str(path)).to_pyarrow_table().num_rows if path.exists() else 0
        print(f"{table}: {rows:,} rows")
        if not rows:
            problems.append(f"{table} is empty or missing")
    # outputs/lists/<as-of>/<district>/target_list_*.csv
    lists = sorted((ROOT / "outputs" / "lists").glob("*/*/target_list_*.csv"))
    listed = [sum(1 for _ in p.open(encoding="utf-8-sig")) - 1 for p in lists]
    print(f"target lists: {len(lists)} files, {sum(listed):,} rows")
    if not lists or min(listed) < 1:
        problems.append("no target list, or an empty one")
    # every published plan verifies from its public files (commitment, draw values, counts)
    sys.path.insert(0, str(ROOT))
    from risk_insight.plan import verify_plan

    plans = sorted((ROOT / "outputs" / "plans").glob("CJ-*/manifest.json"))
    print(f"published plans: {len(plans)}")
    if not plans:
        problems.append("no published plan")
    for manifest in plans:
        v = verify_plan(manifest.parent)
        problems += [f"{manifest.parent.name}: {p}" for p in v.problems]
    for p in problems:
        print(f"FAILED: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
