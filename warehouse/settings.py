"""One typed settings object for the whole engine.

Values come from (highest wins): environment variables ``RISK_INSIGHT_<FIELD>``, a YAML file
named by ``RISK_INSIGHT_CONFIG`` (or ``risk_insight.yaml`` in the working directory), then the
defaults below, which are the embedded single-machine setup.
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


def _yaml_values() -> dict[str, Any]:
    path = Path(os.environ.get("RISK_INSIGHT_CONFIG", "risk_insight.yaml"))
    if not path.is_file():
        return {}
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


class Settings(BaseSettings):
    """Where the lake lives, how Spark runs, and the secret used to tokenise personal data."""

    model_config = SettingsConfigDict(env_prefix="RISK_INSIGHT_", extra="ignore")

    lake_root: str = Field("./lakehouse", description="lake root: a path, s3a://… or abfss://…")
    landing_root: str = Field(
        "./data/sim/landing", description="where agencies deliver files: <landing>/<date>/<file>"
    )
    spark_master: str = Field("local[*]", description="Spark master URL")
    spark_conf: dict[str, str] = Field(default_factory=dict, description="extra Spark conf")
    driver_memory: str = "4g"
    shuffle_partitions: int = 8
    timezone: str = "Asia/Shanghai"
    reports_root: str | None = Field(
        None, description="rectification reports; default <lake_root>/../reports"
    )
    data_docs_root: str | None = Field(
        None, description="Great Expectations Data Docs; default <lake_root>/../quality_docs"
    )
    quality_policy: str | None = Field(
        None, description="gate policy YAML; default the reviewed quality/policy.yaml"
    )
    pii_key: str | None = Field(
        None, description="key for personal-data tokens; if unset, one is made under the lake"
    )
    outputs_root: str = Field(
        "./outputs", description="files for people: target lists, public plans (一公开)"
    )
    tier_policy: str | None = Field(
        None, description="tier policy YAML; default the reviewed risk_insight/policy one"
    )
    serving_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the serving store BI reads (postgresql://…); default an "
        "embedded DuckDB file <lake_root>/serving/marts.duckdb",
    )
    superset_url: str | None = Field(
        None, description="Superset to provision (http://127.0.0.1:8088); unset = no BI refresh"
    )
    superset_user: str = "admin"
    superset_password: str | None = Field(None, description="password of superset_user")

    def serving_store(self) -> str:
        """The serving store's SQLAlchemy URL (the embedded DuckDB file unless configured)."""
        if self.serving_url:
            return self.serving_url
        return f"duckdb:///{Path(self.lake_root).resolve() / 'serving' / 'marts.duckdb'}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        class _Yaml(PydanticBaseSettingsSource):
            def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
                return None, field_name, False

            def __call__(self) -> dict[str, Any]:
                return _yaml_values()

        return init_settings, env_settings, _Yaml(settings_cls)

    def table_path(self, layer: str, name: str) -> str:
        """Location of a table: ``<lake_root>/<layer>/<name>``."""
        return f"{self.lake_root.rstrip('/')}/{layer}/{name}"

    def resolved_pii_key(self) -> str:
        """The tokenisation key: the setting, else a random key kept at ``<lake>/_secrets``.

        The key must stay stable for a lake, or tokens (and association features) change.
        """
        if self.pii_key:
            return self.pii_key
        key_file = Path(self.lake_root) / "_secrets" / "pii_key"
        if not key_file.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True)
            key_file.write_text(secrets.token_hex(32), encoding="ascii")
            key_file.chmod(0o600)
        return key_file.read_text(encoding="ascii").strip()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return Settings()
