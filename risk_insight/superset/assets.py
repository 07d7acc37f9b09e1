"""Dashboards as code: ``dashboards.yaml`` → Superset export bundles (ZIPs of YAML).

Every object's UUID is derived from its key in ``dashboards.yaml`` (uuid5), so an import
with ``overwrite=true`` updates the same objects each time. Dataset columns come from the
serving store itself (name and type), with the Chinese/English labels of ``labels``. Objects
are marked ``is_managed_externally``: Superset shows them as managed from outside and
provisioning removes those the YAML no longer names.
"""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

SPEC = Path(__file__).with_name("dashboards.yaml")
NAMESPACE = uuid.UUID("6f1c9a52-3d0e-4f4e-9b8a-2c51d7e0a001")  # fixed: identities never move
# The same colour for a tier on every chart: A green (low risk) … D red (high risk).
TIER_COLOURS = {"A": "#5AC189", "B": "#1FA8C9", "C": "#FCC700", "D": "#E04355"}
KINDS = {"database": "Database", "dataset": "SqlaTable", "chart": "Slice", "dashboard": "Dashboard"}


def uid(kind: str, key: str) -> str:
    """The stable UUID of object ``key`` of ``kind`` (database, dataset, chart, dashboard)."""
    return str(uuid.uuid5(NAMESPACE, f"{kind}:{key}"))


def load_spec(path: Path = SPEC) -> dict[str, Any]:
    """The dashboards definition as a dict."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset of the spec: the mart it reads and, if virtual, its SQL."""

    key: str
    mart: str
    latest: bool = False

    @property
    def name(self) -> str:
        """The dataset's name in Superset (the mart's, or ``<mart>_latest``)."""
        return f"{self.mart}_latest" if self.latest else self.mart

    @property
    def sql(self) -> str | None:
        if not self.latest:
            return None
        return f"SELECT * FROM {self.mart} WHERE as_of = (SELECT MAX(as_of) FROM {self.mart})"


def dataset_specs(spec: dict[str, Any]) -> dict[str, DatasetSpec]:
    """Every dataset of the spec by key."""
    out = {}
    for key, v in spec["datasets"].items():
        v = v if isinstance(v, dict) else {"table": v}
        out[key] = DatasetSpec(key, v["table"], bool(v.get("latest")))
    return out


@dataclass
class Assets:
    """Every Superset object of the spec as (file name → config), one serving store."""

    database: dict[str, Any]
    datasets: dict[str, dict[str, Any]]
    charts: dict[str, dict[str, Any]]
    dashboards: dict[str, dict[str, Any]]

    def bundle(self, kind: str) -> bytes:
        """The ZIP Superset's ``/api/v1/<kind>/import/`` takes: the objects of ``kind`` and
        everything they depend on."""
        files: dict[str, dict[str, Any]] = {
            "metadata.yaml": {
                "version": "1.0.0",
                "type": KINDS[kind],
                "timestamp": datetime.now(UTC).isoformat(),
            },
            "databases/serving.yaml": self.database,
        }
        if kind != "database":
            files.update({f"datasets/serving/{k}.yaml": v for k, v in self.datasets.items()})
        if kind in ("chart", "dashboard"):
            files.update({f"charts/{k}.yaml": v for k, v in self.charts.items()})
        if kind == "dashboard":
            files.update({f"dashboards/{k}.yaml": v for k, v in self.dashboards.items()})
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for name, content in files.items():
                z.writestr(f"bundle/{name}", yaml.safe_dump(content, allow_unicode=True))
        return buf.getvalue()


def build_assets(
    spec: dict[str, Any], sqlalchemy_uri: str, columns: dict[str, list[tuple[str, str]]]
) -> Assets:
    """Superset configs for ``spec`` on the store at ``sqlalchemy_uri``; ``columns`` maps
    each mart to its (column, SQL type) pairs as the store has them."""
    db_uuid = uid("database", "serving")
    database = {
        "database_name": spec["database"],
        "sqlalchemy_uri": sqlalchemy_uri,
        "cache_timeout": None,
        "expose_in_sqllab": True,
        "allow_run_async": False,
        "allow_ctas": False,
        "allow_cvas": False,
        "allow_dml": False,
        "allow_file_upload": False,
        "extra": {"allows_virtual_table_explore": True},
        "uuid": db_uuid,
        "version": "1.0.0",
    }
    labels: dict[str, str] = spec["labels"]
    datasets = {
        key: _dataset(d, columns.get(d.mart, []), labels, db_uuid)
        for key, d in dataset_specs(spec).items()
    }
    charts = {key: _chart(key, c) for key, c in spec["charts"].items()}
    dashboards = {key: _dashboard(key, d, spec["charts"]) for key, d in spec["dashboards"].items()}
    return Assets(database, datasets, charts, dashboards)


def _dataset(
    d: DatasetSpec, cols: list[tuple[str, str]], labels: dict[str, str], db_uuid: str
) -> dict[str, Any]:
    return {
        "table_name": d.name,
        "main_dttm_col": None,
        "description": None,
        "default_endpoint": None,
        "offset": 0,
        "cache_timeout": None,
        "schema": None,
        "sql": d.sql,
        "params": None,
        "template_params": None,
        "filter_select_enabled": True,
        "fetch_values_predicate": None,
        "extra": None,
        "uuid": uid("dataset", d.key),
        "is_managed_externally": True,
        "metrics": [
            {
                "metric_name": "count",
                "verbose_name": "记录数 Rows",
                "metric_type": "count",
                "expression": "COUNT(*)",
                "description": None,
                "d3format": None,
                "extra": None,
                "warning_text": None,
            }
        ],  # fmt: skip
        "columns": [
            {
                "column_name": name,
                "verbose_name": labels.get(name),
                "is_dttm": False,  # as-of dates are categories here, never a time axis
                "is_active": True,
                "type": sql_type,
                "groupby": True,
                "filterable": True,
                "expression": None,
                "description": None,
                "python_date_format": None,
                "extra": None,
            }
            for name, sql_type in cols
        ],
        "version": "1.0.0",
        "database_uuid": db_uuid,
    }


def _metric(m: dict[str, str]) -> dict[str, Any]:
    return {
        "expressionType": "SQL",
        "sqlExpression": m["sql"],
        "label": m["label"],
        "hasCustomLabel": True,
        "optionName": "metric_" + uuid.uuid5(NAMESPACE, m["sql"] + m["label"]).hex[:12],
    }


def _where(sql: str) -> dict[str, Any]:
    return {
        "expressionType": "SQL",
        "clause": "WHERE",
        "sqlExpression": sql,
        "filterOptionName": "filter_" + uuid.uuid5(NAMESPACE, sql).hex[:12],
    }


def form_data(c: dict[str, Any]) -> dict[str, Any]:
    """The chart's Superset form data (``params``), without the datasource."""
    viz = c["viz"]
    metrics = [_metric(m) for m in c.get("metrics", [])]
    p: dict[str, Any] = {
        "viz_type": viz,
        "adhoc_filters": [_where(w) for w in c.get("where", [])],
        "row_limit": c.get("row_limit", 10000),
        "color_scheme": "supersetColors",
    }
    if viz == "big_number_total":
        p.update(metric=metrics[0], header_font_size=0.4, subheader_font_size=0.15)
    elif viz == "pie":
        p.update(metric=metrics[0], groupby=c.get("groupby", []), show_legend=True,
                 show_labels=True, label_type="key_percent", legendOrientation="top")  # fmt: skip
    elif viz == "table":
        if c.get("columns"):
            p.update(query_mode="raw", all_columns=c["columns"],
                     order_by_cols=[json.dumps([col, True]) for col in c.get("order_by", [])],
                     server_pagination=False, include_search=True)  # fmt: skip
        else:
            p.update(query_mode="aggregate", groupby=c.get("groupby", []), metrics=metrics,
                     order_desc=True)  # fmt: skip
    else:  # echarts_timeseries_bar / _line with a categorical x axis
        p.update(x_axis=c["x_axis"], metrics=metrics, groupby=c.get("groupby", []),
                 show_legend=True, legendOrientation="top", rich_tooltip=True,
                 x_axis_sort_asc=True, y_axis_format="SMART_NUMBER")  # fmt: skip
    p.update(c.get("params", {}))
    return p


def _chart(key: str, c: dict[str, Any]) -> dict[str, Any]:
    return {
        "slice_name": c["title"],
        "description": None,
        "viz_type": c["viz"],
        "params": form_data(c),
        "query_context": None,
        "cache_timeout": None,
        "uuid": uid("chart", key),
        "is_managed_externally": True,
        "version": "1.0.0",
        "dataset_uuid": uid("dataset", c["dataset"]),
    }


def _dashboard(key: str, d: dict[str, Any], charts: dict[str, Any]) -> dict[str, Any]:
    position: dict[str, Any] = {
        "DASHBOARD_VERSION_KEY": "v2",
        "ROOT_ID": {"children": ["GRID_ID"], "id": "ROOT_ID", "type": "ROOT"},
        "GRID_ID": {"children": [], "id": "GRID_ID", "parents": ["ROOT_ID"], "type": "GRID"},
        "HEADER_ID": {"id": "HEADER_ID", "meta": {"text": d["title"]}, "type": "HEADER"},
    }
    for i, row in enumerate(d["rows"]):
        row_id = f"ROW-{key}-{i}"
        position["GRID_ID"]["children"].append(row_id)
        position[row_id] = {
            "children": [],
            "id": row_id,
            "meta": {"background": "BACKGROUND_TRANSPARENT"},
            "parents": ["ROOT_ID", "GRID_ID"],
            "type": "ROW",
        }
        for chart_key, width in row.items():
            chart_id = f"CHART-{chart_key}"
            position[row_id]["children"].append(chart_id)
            tall = charts[chart_key]["viz"] == "table"
            position[chart_id] = {
                "children": [],
                "id": chart_id,
                "meta": {
                    "chartId": 0,  # replaced on import through the uuid
                    "height": 90 if tall else 50,
                    "sliceName": charts[chart_key]["title"],
                    "uuid": uid("chart", chart_key),
                    "width": width,
                },
                "parents": ["ROOT_ID", "GRID_ID", row_id],
                "type": "CHART",
            }
    filters = [
        {
            "id": "NATIVE_FILTER-" + uuid.uuid5(NAMESPACE, f"{key}:{f['column']}").hex[:20],
            "name": f["name"],
            "filterType": "filter_select",
            "targets": [
                {"column": {"name": f["column"]}, "datasetUuid": uid("dataset", f["dataset"])}
            ],
            "controlValues": {
                "enableEmptyFilter": False,
                "multiSelect": True,
                "searchAllOptions": False,
                "inverseSelection": False,
                "defaultToFirstItem": False,
            },  # fmt: skip
            "defaultDataMask": {"extraFormData": {}, "filterState": {}, "ownState": {}},
            "cascadeParentIds": [],
            "scope": {"rootPath": ["ROOT_ID"], "excluded": []},
            "type": "NATIVE_FILTER",
            "description": "",
        }
        for f in d.get("filters", [])
    ]
    return {
        "dashboard_title": d["title"],
        "description": None,
        "css": "",
        "slug": d["slug"],
        "uuid": uid("dashboard", key),
        "is_managed_externally": True,
        "position": position,
        "metadata": {
            "color_scheme": "supersetColors",
            "label_colors": TIER_COLOURS,
            "native_filter_configuration": filters,
            "refresh_frequency": 0,
            "expanded_slices": {},
            "timed_refresh_immune_slices": [],
            "cross_filters_enabled": False,
            "default_filters": "{}",
        },
        "published": True,
        "version": "1.0.0",
    }
