"""Inject the defects of real agency extracts into delivered rows, one class per row.

Rows are the per-source tables from :func:`records.deliveries`. Injection adds ``_defect`` and
``_dfield`` (class and field of the defect, empty for clean rows), ``_malformed`` (``missing`` or
``extra`` field for a malformed CSV line) and ``_busy`` (row used as the original of a duplicate
or correction, so it stays clean). Registry founding versions only get defects whose rows still
land (normalise, dedupe, merge), so every enterprise keeps one clean registry row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pandas as pd

from pipelines.simulator import codes
from pipelines.simulator.config import DefectRates
from pipelines.simulator.dynamics import PENALTY_CATEGORIES
from pipelines.simulator.exports import Export, exports
from pipelines.simulator.records import CHANNELS, COMPLAINT_CATEGORIES, LATE_THRESHOLD

EVENT_FIELD = {
    "registry": "changed_on",
    "annual_report": "filed_on",
    "penalty": "decided_on",
    "abnormal_list": "entered_on",
    "serious_list": "entered_on",
    "inspection": "inspected_on",
    "complaint": "received_on",
}
ENFORCEMENT = ("penalty", "abnormal_list", "serious_list", "inspection", "complaint")
CORRECTABLE = {
    "registry": ("phone", "reg_capital"),
    "annual_report": ("employees", "insured_staff"),
    "penalty": ("amount", "category"),
    "inspection": ("inspector_id",),
    "complaint": ("category", "channel"),
}
UNKNOWN_REGIONS = ("110199", "310199", "330199", "440399", "510199", "330188", "440388")


@dataclass
class Context:
    """What injectors need besides the rows."""

    rng: np.random.Generator
    history: int  # day numbers (days since 1970-01-01), as in the rows' meta columns
    end: int
    founded: np.ndarray  # founding day number of each enterprise number
    usccs: set[str]  # every registered code (orphans must avoid them)
    regions: list[str]
    roster: dict[str, list[str]]  # region -> inspector ids

    @property
    def increments(self) -> np.ndarray:
        return np.arange(self.history + 1, self.end + 1)


def full_width(text: str) -> str:
    """ASCII letters and digits of ``text`` turned into their full-width forms."""
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in text)


def reformat_date(iso_day: str, style: int) -> str:
    """``YYYY-MM-DD`` as ``Y/M/D``, ``YYYYMMDD`` or ``Y年M月D日``."""
    y, m, d = iso_day.split("-")
    if style == 0:
        return f"{y}/{int(m)}/{int(d)}"
    if style == 1:
        return f"{y}{m}{d}"
    return f"{y}年{int(m)}月{int(d)}日"


def reformat_amount(plain: str, style: int) -> str:
    """A plain yuan amount with thousands separators, in 万元, or with a 元 suffix."""
    value = Decimal(plain)
    if style == 0 and value >= 1000:
        return f"{value:,.2f}"
    if style == 1:
        wan = (value / 10000).normalize()
        return f"{wan:f}万元"
    return f"{value.normalize():f}元" if value == value.to_integral() else f"{value:f}元"


def _day(s: str) -> int:
    return int(np.datetime64(s, "D").astype(np.int64))


def _iso(d: int) -> str:
    return str(np.datetime64(int(d), "D"))


def _free(df: pd.DataFrame) -> np.ndarray:
    return ((df["_defect"] == "") & ~df["_busy"]).to_numpy()


def _quarantinable(df: pd.DataFrame, spec: Export) -> np.ndarray:
    ok = _free(df)
    return ok & ~df["_first"].to_numpy() if spec.name == "registry" else ok


def _nonempty(df: pd.DataFrame, fields: tuple[str, ...] | list[str]) -> np.ndarray:
    if not fields:
        return np.zeros(len(df), bool)
    return np.column_stack([(df[f] != "").to_numpy() for f in fields]).any(axis=1)


def _pick_field(df: pd.DataFrame, i: int, fields, rng: np.random.Generator) -> str:
    present = [f for f in fields if df.at[i, f] != ""]
    return present[rng.integers(len(present))]


# --- eligibility -------------------------------------------------------------------------------


def _eligible(cls: str, df: pd.DataFrame, spec: Export, ctx: Context) -> np.ndarray:
    free = _free(df)
    quar = _quarantinable(df, spec)
    n = len(df)
    if cls == "full_width":
        return free & _nonempty(df, ["uscc", *spec.amount_fields])
    if cls == "whitespace":
        return free
    if cls == "date_format":
        return free & _nonempty(df, spec.date_fields)
    if cls in ("amount_format",):
        return free & _nonempty(df, spec.amount_fields)
    if cls == "negative_amount":
        return quar & _nonempty(df, spec.amount_fields)
    if cls == "duplicate_row":
        return free
    if cls == "late_correction":
        if spec.name not in CORRECTABLE:
            return np.zeros(n, bool)
        recent = df["_landing"].to_numpy() >= ctx.history - 60
        before_last = df["_folder"].to_numpy() < ctx.end
        one = (df["_nver"] == 1).to_numpy()
        return free & recent & before_last & one & _nonempty(df, CORRECTABLE[spec.name])
    if cls in ("bad_check_digit", "unknown_region", "unparseable_date", "missing_key"):
        if cls == "unparseable_date":
            return quar & _nonempty(df, spec.date_fields)
        return quar
    if cls == "removal_before_entry":
        if "removed_on" not in df:
            return np.zeros(n, bool)
        return quar & _nonempty(df, ["removed_on"])
    if cls == "orphan_enterprise":
        return quar if spec.name in ENFORCEMENT else np.zeros(n, bool)
    if cls == "future_date":
        if spec.name in ("abnormal_list", "serious_list"):
            return quar & (df["removed_on"] == "").to_numpy()
        return quar
    if cls == "before_founding":
        if spec.name == "registry":
            return np.zeros(n, bool)
        founded = ctx.founded[df["_ent"].to_numpy()]
        return quar & (founded >= _day("1992-01-01"))
    if cls == "malformed_row":
        return quar if spec.fmt == "csv" else np.zeros(n, bool)
    raise KeyError(cls)


# --- injectors: mutate row i of df in place and return the field they touched ---------------------


def _inj_full_width(df, i, spec, ctx) -> str:
    f = _pick_field(df, i, ["uscc", *spec.amount_fields], ctx.rng)
    df.at[i, f] = full_width(df.at[i, f])
    return f


def _inj_whitespace(df, i, spec, ctx) -> str:
    f = _pick_field(df, i, spec.fields, ctx.rng)
    pad = (" ", "\u3000", "  ")[ctx.rng.integers(3)]
    df.at[i, f] = pad + df.at[i, f] if ctx.rng.random() < 0.4 else df.at[i, f] + pad
    return f


def _inj_date_format(df, i, spec, ctx) -> str:
    f = _pick_field(df, i, spec.date_fields, ctx.rng)
    df.at[i, f] = reformat_date(df.at[i, f], int(ctx.rng.integers(3)))
    return f


def _inj_amount_format(df, i, spec, ctx) -> str:
    f = _pick_field(df, i, spec.amount_fields, ctx.rng)
    df.at[i, f] = reformat_amount(df.at[i, f], int(ctx.rng.integers(3)))
    return f


def _inj_negative_amount(df, i, spec, ctx) -> str:
    f = _pick_field(df, i, spec.amount_fields, ctx.rng)
    df.at[i, f] = "-" + df.at[i, f]
    return f


def _inj_bad_check_digit(df, i, spec, ctx) -> str:
    code = df.at[i, "uscc"]
    wrong = [c for c in codes.uscc_alphabet() if c != code[17]]
    df.at[i, "uscc"] = code[:17] + wrong[ctx.rng.integers(len(wrong))]
    return "uscc"


def _inj_unknown_region(df, i, spec, ctx) -> str:
    region = UNKNOWN_REGIONS[ctx.rng.integers(len(UNKNOWN_REGIONS))]
    if spec.name == "registry":
        df.at[i, "region_code"] = region
        return "region_code"
    df.at[i, "uscc"] = codes.with_region(df.at[i, "uscc"], region)
    return "uscc"


def _inj_removal_before_entry(df, i, spec, ctx) -> str:
    df.at[i, "removed_on"] = _iso(_day(df.at[i, "entered_on"]) - int(ctx.rng.integers(1, 61)))
    return "removed_on"


def _inj_orphan_enterprise(df, i, spec, ctx) -> str:
    region = ctx.regions[ctx.rng.integers(len(ctx.regions))]
    code = codes.unique_usccs(ctx.rng, ["91"], [region], ctx.usccs)[0]
    ctx.usccs.add(code)
    df.at[i, "uscc"] = code
    return "uscc"


def _inj_unparseable_date(df, i, spec, ctx) -> str:
    f = _pick_field(df, i, spec.date_fields, ctx.rng)
    y = df.at[i, f][:4]
    bad = (f"{y}-13-45", f"{y}-02-30", "不详", f"{y}-00-15", "0000-00-00")
    df.at[i, f] = bad[ctx.rng.integers(len(bad))]
    return f


def _inj_future_date(df, i, spec, ctx) -> str:
    f = EVENT_FIELD[spec.name]
    df.at[i, f] = _iso(df.at[i, "_folder"] + int(ctx.rng.integers(1, 91)))
    return f


def _inj_before_founding(df, i, spec, ctx) -> str:
    f = EVENT_FIELD[spec.name]
    founded = ctx.founded[df.at[i, "_ent"]]
    df.at[i, f] = _iso(founded - int(ctx.rng.integers(1, 366)))
    return f


def _inj_missing_key(df, i, spec, ctx) -> str:
    f = spec.natural_key[ctx.rng.integers(len(spec.natural_key))]
    df.at[i, f] = ""
    return f


def _inj_malformed_row(df, i, spec, ctx) -> str:
    df.at[i, "_malformed"] = "missing" if ctx.rng.random() < 0.5 else "extra"
    return ""


INJECTORS: dict[str, Callable[..., str]] = {
    "full_width": _inj_full_width,
    "whitespace": _inj_whitespace,
    "date_format": _inj_date_format,
    "amount_format": _inj_amount_format,
    "bad_check_digit": _inj_bad_check_digit,
    "unknown_region": _inj_unknown_region,
    "removal_before_entry": _inj_removal_before_entry,
    "orphan_enterprise": _inj_orphan_enterprise,
    "unparseable_date": _inj_unparseable_date,
    "future_date": _inj_future_date,
    "before_founding": _inj_before_founding,
    "negative_amount": _inj_negative_amount,
    "missing_key": _inj_missing_key,
    "malformed_row": _inj_malformed_row,
}


# --- row-adding classes -----------------------------------------------------------------------


def _wrong_value(source: str, field: str, value: str, ctx: Context, region: str) -> str:
    """A plausible but wrong value that a later correction will fix."""
    rng = ctx.rng
    if field in ("amount", "reg_capital"):
        return f"{Decimal(value) * (10 if rng.random() < 0.5 else 2):.2f}"
    if field in ("employees", "insured_staff"):
        v = int(value)
        return str(v + int(rng.integers(1, 20)) if field == "employees" or v == 0 else v - 1)
    if field == "phone":
        last = (int(value[-1]) + int(rng.integers(1, 10))) % 10
        return value[:-1] + str(last)
    if field == "inspector_id":
        others = [x for x in ctx.roster[region] if x != value]
        return others[rng.integers(len(others))]
    domain = {
        ("penalty", "category"): PENALTY_CATEGORIES,
        ("complaint", "category"): COMPLAINT_CATEGORIES,
        ("complaint", "channel"): CHANNELS,
    }[(source, field)]
    others = [x for x in domain if x != value]
    return others[rng.integers(len(others))]


def _later_folder(ctx: Context, folder: int) -> int:
    later = ctx.increments[ctx.increments > folder]
    return later[ctx.rng.integers(len(later))]


def _add_late_corrections(df, rows, spec, ctx) -> pd.DataFrame:
    new = []
    for i in rows:
        fields = [f for f in CORRECTABLE[spec.name] if df.at[i, f] != ""]
        f = fields[ctx.rng.integers(len(fields))]
        right = df.at[i, f]
        df.at[i, f] = _wrong_value(spec.name, f, right, ctx, df.at[i, "uscc"][2:8])
        df.at[i, "_busy"] = True
        row = df.loc[i].copy()
        row[f] = right
        row["_folder"] = _later_folder(ctx, df.at[i, "_folder"])
        row["_landing"] = row["_folder"]
        row["_seq"] = 1e12 + i
        row["_defect"], row["_dfield"], row["_busy"] = "late_correction", f, False
        new.append(row)
    return _concat(df, new)


def _add_duplicates(df, rows, spec, ctx) -> pd.DataFrame:
    new = []
    for i in rows:
        df.at[i, "_busy"] = True
        row = df.loc[i].copy()
        resend = (
            row["_nver"] == 1
            and row["_landing"] >= ctx.history - 30
            and row["_folder"] < ctx.end
            and ctx.rng.random() < 0.5
        )
        if resend:
            row["_folder"] = _later_folder(ctx, row["_folder"])
            row["_seq"] = 2e12 + i
        else:
            row["_seq"] = row["_seq"] + 0.5
        row["_defect"], row["_dfield"], row["_busy"] = "duplicate_row", "", False
        new.append(row)
    return _concat(df, new)


def _concat(df: pd.DataFrame, new: list[pd.Series]) -> pd.DataFrame:
    """``df`` with rows ``new`` appended, meta columns keeping their types."""
    if not new:
        return df
    out = pd.concat([df, pd.DataFrame(new)], ignore_index=True)
    types = {
        "_folder": np.int64,
        "_landing": np.int64,
        "_event": np.int64,
        "_ent": np.int64,
        "_nver": np.int64,
        "_seq": float,
        "_busy": bool,
        "_first": bool,
        "_late": bool,
    }
    return out.astype(types)


# --- driver -----------------------------------------------------------------------------------


def _mark_late_arrivals(frames: dict[str, pd.DataFrame], ctx: Context, rate: float) -> None:
    """Late arrivals: increment rows whose event is weeks older than their landing day.

    Rows reported months late by nature are flagged where they land in an increment; besides,
    each recent single-version enforcement row of the history cut (event 30-150 days before it)
    is held back to a random increment with probability ``rate``.
    """
    found = 0
    for name, df in frames.items():
        age = df["_folder"].to_numpy() - df["_event"].to_numpy()
        late = (df["_folder"].to_numpy() > ctx.history) & (age >= LATE_THRESHOLD)
        df.loc[late, "_defect"] = "late_arrival"
        df.loc[late, "_dfield"] = EVENT_FIELD[name]
        found += int(late.sum())
    if rate <= 0:
        return
    pool: dict[str, np.ndarray] = {}
    for name, df in frames.items():
        if name in ENFORCEMENT:
            ev = df["_event"].to_numpy()
            pool[name] = np.flatnonzero(
                _free(df)
                & (df["_nver"] == 1).to_numpy()
                & (df["_folder"].to_numpy() == ctx.history)
                & (ev >= ctx.history - 150)
                & (ev <= ctx.history - LATE_THRESHOLD)
            )
    counts = {n: int(ctx.rng.binomial(len(rows), rate)) for n, rows in pool.items()}
    if found + sum(counts.values()) == 0:
        names = [n for n, rows in pool.items() if len(rows)]
        if names:
            counts[names[ctx.rng.integers(len(names))]] = 1
    for name, k in counts.items():
        df = frames[name]
        for i in np.sort(ctx.rng.choice(pool[name], size=k, replace=False)):
            folder = ctx.increments[ctx.rng.integers(len(ctx.increments))]
            df.at[i, "_folder"] = df.at[i, "_landing"] = folder
            if "reported_on" in df:
                df.at[i, "reported_on"] = _iso(folder)
            df.at[i, "_seq"] = 3e12 + i
            df.at[i, "_defect"], df.at[i, "_dfield"] = "late_arrival", EVENT_FIELD[name]


def inject(frames: dict[str, pd.DataFrame], rates: DefectRates, ctx: Context) -> None:
    """Inject every defect class into ``frames`` (replaced in the dict) at ``rates``."""
    for df in frames.values():
        df["_defect"] = ""
        df["_dfield"] = ""
        df["_malformed"] = ""
        df["_busy"] = False
    _mark_late_arrivals(frames, ctx, rates.late_arrival)
    for cls, rate in rates.as_dict().items():
        if cls == "late_arrival":
            continue
        eligible = {
            n: np.flatnonzero(_eligible(cls, df, exports()[n], ctx)) for n, df in frames.items()
        }
        counts = {
            n: int(ctx.rng.binomial(len(e), rate)) if rate > 0 else 0 for n, e in eligible.items()
        }
        if rate > 0 and sum(counts.values()) == 0:
            names = [n for n, e in eligible.items() if len(e)]
            if names:
                counts[names[ctx.rng.integers(len(names))]] = 1
        for name, k in counts.items():
            if k == 0:
                continue
            spec, df = exports()[name], frames[name]
            rows = np.sort(ctx.rng.choice(eligible[name], size=k, replace=False))
            if cls == "late_correction":
                frames[name] = _add_late_corrections(df, rows, spec, ctx)
            elif cls == "duplicate_row":
                frames[name] = _add_duplicates(df, rows, spec, ctx)
            else:
                for i in rows:
                    df.at[i, "_dfield"] = INJECTORS[cls](df, i, spec, ctx)
                    df.at[i, "_defect"] = cls
