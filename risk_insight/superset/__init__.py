"""BI provisioning as code: the serving store, datasets, charts, dashboards and per-district
row-level security in Superset, through its REST API only.

``provision(client, settings)`` creates or updates everything by stable identity (running
it twice changes nothing); ``refresh(settings)`` is what the daily DAG calls after the marts
are published (a no-op with a message when no Superset is configured).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from risk_insight.superset.assets import build_assets, dataset_specs, load_spec, uid
from risk_insight.superset.client import SupersetClient, SupersetError
from warehouse import serving
from warehouse.settings import Settings, get_settings

ANALYST_ROLE = "analyst"  # 风险分析员: every district
DISTRICT_ROLE = "district_{code}"  # 区县监管人员: one district's rows only
BASE_ROLE = "Gamma"  # Superset's read-only role: menus and dashboards, no data by itself

__all__ = ["Provisioned", "SupersetClient", "SupersetError", "districts", "provision", "refresh"]


@dataclass
class Provisioned:
    """Superset ids of what provisioning created or updated."""

    database: int
    datasets: dict[str, int]
    charts: dict[str, int]
    dashboards: dict[str, int]
    roles: dict[str, int] = field(default_factory=dict)
    rls_rules: dict[str, int] = field(default_factory=dict)


def provision(
    client: SupersetClient,
    settings: Settings | None = None,
    users_password: str | Mapping[str, str] | None = None,
) -> Provisioned:
    """Import the dashboards of ``dashboards.yaml`` on the serving store, then the analyst
    role and one role + RLS rule per district found in the marts. With ``users_password``,
    also a user ``analyst`` and one ``district_<code>`` user per district (demo logins), each
    with the password the mapping gives it (a single string: the same for all, tests only)."""
    s = settings or get_settings()
    spec = load_spec()
    assets = build_assets(spec, serving.reader_url(s), serving.store_columns(s))
    # Each import overwrites only its own kind (related objects are created, never updated),
    # so every kind is imported in turn: a moved store, a changed chart, a new layout all land.
    for kind in ("database", "dataset", "chart", "dashboard"):
        client.import_bundle(kind, assets.bundle(kind), {"databases/serving.yaml": ""})

    database = _id_by_uuid(client, "database", uid("database", "serving"))
    datasets = {k: _id_by_uuid(client, "dataset", uid("dataset", k)) for k in spec["datasets"]}
    charts = {k: _id_by_uuid(client, "chart", uid("chart", k)) for k in spec["charts"]}
    dashboards = {
        k: client.find("dashboard", "slug", d["slug"])[0]["id"]
        for k, d in spec["dashboards"].items()
    }
    _prune(client, "dashboard", {uid("dashboard", k) for k in spec["dashboards"]})
    _prune(client, "chart", {uid("chart", k) for k in spec["charts"]})
    result = Provisioned(database, datasets, charts, dashboards)
    _security(client, s, spec, result, users_password)
    return result


def _prune(client: SupersetClient, resource: str, wanted: set[str]) -> None:
    """Delete objects this provisioning made earlier that the spec no longer names."""
    rows = client.get(
        f"/api/v1/{resource}/", columns=["id", "uuid", "is_managed_externally"], page_size=100
    )["result"]
    for r in rows:
        if r.get("is_managed_externally") and str(r.get("uuid")) not in wanted:
            client.delete(f"/api/v1/{resource}/{r['id']}")


def _id_by_uuid(client: SupersetClient, resource: str, uuid: str) -> int:
    found = client.get(
        f"/api/v1/{resource}/",
        filters=[{"col": "uuid", "opr": "eq", "value": uuid}],
        columns=["id", "uuid"],
    )["result"]
    if not found:  # some list endpoints do not filter on uuid: fall back to a scan
        rows = client.get(f"/api/v1/{resource}/", columns=["id", "uuid"], page_size=100)
        found = [r for r in rows["result"] if r.get("uuid") == uuid]
    if not found:
        raise SupersetError(f"{resource} {uuid} not found after import")
    return found[0]["id"]


def districts(settings: Settings) -> dict[str, str]:
    """District code → name of every district in the tier mart."""
    rows = serving.query(
        f"SELECT DISTINCT region_code, region_name FROM {serving.MART_TIER_DISTRIBUTION.name} "
        "WHERE region_code IS NOT NULL ORDER BY region_code",
        settings,
    )
    return dict(zip(rows["region_code"], rows["region_name"], strict=True))


def _security(
    client: SupersetClient,
    settings: Settings,
    spec: dict[str, Any],
    ids: Provisioned,
    users_password: str | Mapping[str, str] | None,
) -> None:
    db_name = spec["database"]
    specs = dataset_specs(spec)
    access = _permission_id(client, "datasource_access")
    perms = {
        k: _permission_view(client, access, f"[{db_name}].[{d.name}](id:{ids.datasets[k]})")
        for k, d in specs.items()
    }
    regional = [k for k, d in specs.items() if _mart(d.mart).region_column]
    all_perms = list(perms.values())
    dataset_perms = [perms[k] for k in regional]
    ids.roles[ANALYST_ROLE] = _role(client, ANALYST_ROLE, all_perms)
    for code, name in districts(settings).items():
        role = DISTRICT_ROLE.format(code=code)
        ids.roles[role] = _role(client, role, dataset_perms)
        ids.rls_rules[role] = _rls_rule(
            client,
            name=f"district {code}",
            description=f"{name}：仅本区县数据 / only district {code}'s rows",
            tables=sorted(ids.datasets[k] for k in regional),
            role_id=ids.roles[role],
            clause=f"region_code = '{code}'",
        )
    if users_password:
        gamma = _role_id(client, BASE_ROLE)
        for role, role_id in ids.roles.items():
            password = (
                users_password if isinstance(users_password, str) else users_password.get(role)
            )
            if not password:
                raise SupersetError(f"no password given for demo user {role}")
            _user(client, role, password, [gamma, role_id])


def _mart(table: str) -> serving.Mart:
    return next(m for m in serving.MARTS if m.name == table)


def _permission_id(client: SupersetClient, name: str) -> int:
    return client.find("security/permissions", "name", name)[0]["id"]


def _permission_view(client: SupersetClient, permission_id: int, resource: str) -> int:
    views = client.find("security/resources", "name", resource)
    if not views:
        raise SupersetError(f"no Superset resource {resource!r} (dataset not imported?)")
    rows = client.get(
        "/api/v1/security/permissions-resources/",
        filters=[
            {"col": "permission", "opr": "rel_o_m", "value": permission_id},
            {"col": "view_menu", "opr": "rel_o_m", "value": views[0]["id"]},
        ],
    )["result"]
    if not rows:
        raise SupersetError(f"no datasource_access permission on {resource!r}")
    return rows[0]["id"]


def _role_id(client: SupersetClient, name: str) -> int:
    found = client.find("security/roles", "name", name)
    return found[0]["id"] if found else client.post("/api/v1/security/roles/", {"name": name})["id"]


def _role(client: SupersetClient, name: str, permission_views: list[int]) -> int:
    role_id = _role_id(client, name)
    client.post(
        f"/api/v1/security/roles/{role_id}/permissions",
        {"permission_view_menu_ids": sorted(permission_views)},
    )
    return role_id


def _rls_rule(
    client: SupersetClient,
    name: str,
    description: str,
    tables: list[int],
    role_id: int,
    clause: str,
) -> int:
    body = {
        "name": name,
        "description": description,
        "filter_type": "Regular",
        "tables": tables,
        "roles": [role_id],
        "group_key": "district",
        "clause": clause,
    }
    found = client.find("rowlevelsecurity", "name", name)
    if found:
        client.put(f"/api/v1/rowlevelsecurity/{found[0]['id']}", body)
        return found[0]["id"]
    return client.post("/api/v1/rowlevelsecurity/", body)["id"]


def _user(client: SupersetClient, username: str, password: str, roles: list[int]) -> int:
    body = {
        "first_name": username,
        "last_name": "BI",
        "email": f"{username}@localhost",
        "active": True,
        "roles": roles,
    }
    found = client.find("security/users", "username", username)
    if found:  # the password too: the kept password file and Superset always agree
        client.put(f"/api/v1/security/users/{found[0]['id']}", {**body, "password": password})
        return found[0]["id"]
    return client.post(
        "/api/v1/security/users/", {**body, "username": username, "password": password}
    )["id"]


def refresh(settings: Settings | None = None) -> dict[str, Any]:
    """Provision Superset (``superset_url``) against the latest serving store; skipped, with
    the reason, when no Superset is configured."""
    s = settings or get_settings()
    if not s.superset_url or not s.superset_password:
        return {"skipped": "no superset_url / superset_password configured"}
    client = SupersetClient(s.superset_url, s.superset_user, s.superset_password)
    done = provision(client, s)
    return {
        "dashboards": done.dashboards,
        "datasets": len(done.datasets),
        "charts": len(done.charts),
        "district_roles": len(done.rls_rules),
    }
