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
from typing import Any, Literal

import yaml
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from warehouse import storage

# Settings that name a file or folder: resolved once, when the settings are loaded.
LOCATIONS = (
    "lake_root",
    "landing_root",
    "outputs_root",
    "reports_root",
    "data_docs_root",
    "quality_policy",
    "tier_policy",
    "sources_dir",
    "pii_key_file",
    "secrets_dir",
    "lock_file",
    "retention_policy",
)


def _yaml_values() -> dict[str, Any]:
    path = Path(os.environ.get("RISK_INSIGHT_CONFIG", "risk_insight.yaml"))
    if not path.is_file():
        return {}
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


class Settings(BaseSettings):
    """Where the lake lives, how Spark runs, and the secret used to tokenise personal data.

    Every location is resolved when the settings are made: a local path becomes absolute
    (``./lakehouse`` → ``<working directory>/lakehouse``, ``~`` expanded), a URI (``file://``,
    ``s3a://``, ``abfss://``, …) is kept as written. Code downstream uses them as they are.
    """

    model_config = SettingsConfigDict(env_prefix="RISK_INSIGHT_", extra="ignore")

    lake_root: str = Field("./lakehouse", description="lake root: a path, s3a://… or abfss://…")
    landing_root: str = Field(
        "./data/sim/landing", description="where agencies deliver files: <landing>/<date>/<file>"
    )
    sources_dir: str | None = Field(
        None,
        description="folder of source mappings (one YAML per source); default the shipped "
        "mappings of the demo bureau (warehouse/contracts/mappings)",
    )
    jurisdiction: list[str] = Field(
        default_factory=list,
        description="GB/T 2260 codes or prefixes of the bureau's area (e.g. ['11', '3101']); "
        "registry rows elsewhere are quarantined; empty = no restriction",
    )
    spark_master: str = Field("local[*]", description="Spark master URL")
    spark_conf: dict[str, str] = Field(default_factory=dict, description="extra Spark conf")
    driver_memory: str = "4g"
    shuffle_partitions: int = 8
    timezone: str = "Asia/Shanghai"
    reports_root: str | None = Field(
        None, description="rectification reports; default <lake_root>/../reports (local lake)"
    )
    data_docs_root: str | None = Field(
        None, description="Great Expectations Data Docs; default <lake_root>/../quality_docs"
    )
    quality_pandas_max_rows: int = Field(
        200_000,
        ge=0,
        description="GX validates a batch of at most this many rows on pandas (collected to the "
        "driver: a Spark job per metric costs more than the data); larger ones on Spark; 0 = "
        "always Spark",
    )
    quality_policy: str | None = Field(
        None, description="gate policy YAML; default the reviewed quality/policy.yaml"
    )
    environment: Literal["development", "production"] = Field(
        "development",
        description="production: the personal-data key must be configured (never generated)",
    )
    pii_key: str | None = Field(None, description="key for personal-data tokens")
    pii_key_file: str | None = Field(
        None, description="file holding the personal-data key (outside the lake)"
    )
    secrets_dir: str = Field(
        "./.secrets",
        description="where generated secrets are kept: the step server's key, and in "
        "development the personal-data key",
    )
    outputs_root: str = Field(
        "./outputs", description="files for people: target lists, public plans (一公开)"
    )
    tier_policy: str | None = Field(
        None, description="tier policy YAML; default the reviewed warehouse/contracts one"
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
    lock_file: str | None = Field(
        None,
        description="the lake's writer lock; default <lake_root>/_writer.lock (local lake). A lake "
        "on object storage needs a file on a disk every writer shares",
    )
    lock_wait_seconds: float = Field(
        900.0, description="how long a writer waits for the lake lock before refusing"
    )
    lock_ttl_seconds: float = Field(
        1800.0, description="lease of the lake lock; renewed by its holder every ttl/3"
    )
    retention_policy: str | None = Field(
        None,
        description="personal-data retention YAML; default the reviewed pipelines/retention.yaml",
    )
    step_server: str | None = Field(
        None,
        description="host:port of the step server the DAGs' tasks hand their steps to (one "
        "long-running Spark session, dags/step_server.py; make airflow starts it); unset = "
        "each task runs its step in its own process",
    )

    @field_validator(*LOCATIONS)
    @classmethod
    def _resolve_location(cls, value: str | None) -> str | None:
        return None if value is None else storage.resolve(value)

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied and validated like loaded settings (locations
        resolved); ``model_copy(update=…)`` would skip that."""
        return type(self).model_validate({**self.model_dump(), **changes})

    def _beside_lake(self, name: str) -> str:
        # Files for people sit beside a local lake; with the lake in object storage they stay
        # on this machine, under the working directory.
        if storage.is_local(self.lake_root):
            return storage.join(storage.parent(str(storage.local_path(self.lake_root))), name)
        return storage.resolve(name)

    def reports_dir(self) -> str:
        """Rectification reports: ``reports_root``, else ``reports`` beside the lake."""
        return self.reports_root or self._beside_lake("reports")

    def data_docs_dir(self) -> str:
        """The GX project and Data Docs: ``data_docs_root``, else ``quality_docs`` beside the
        lake."""
        return self.data_docs_root or self._beside_lake("quality_docs")

    def serving_store(self) -> str:
        """The serving store's SQLAlchemy URL: ``serving_url``, else an embedded DuckDB file at
        ``<lake_root>/serving/marts.duckdb`` (a local lake) or ``./serving/marts.duckdb``."""
        if self.serving_url:
            return self.serving_url
        if storage.is_local(self.lake_root):
            folder = storage.join(str(storage.local_path(self.lake_root)), "serving")
        else:
            folder = storage.resolve("serving")
        return f"duckdb:///{folder}/marts.duckdb"

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
        """The tokenisation key: ``pii_key``, else the content of ``pii_key_file``; in
        development only, a random key generated once into ``<secrets_dir>/pii_key``.

        The key never lives inside the lake it protects (anyone who can read the lake could
        re-identify every token), and it must stay stable for a lake, or tokens (and the
        association features built on them) change. Raises ``KeyMissing`` in production
        when neither setting is given, and ValueError for a key file inside the lake.
        """
        if self.pii_key:
            return self.pii_key
        key_file = self.pii_key_file
        if key_file is None:
            if self.environment == "production":
                raise KeyMissing(
                    "no personal-data key: set RISK_INSIGHT_PII_KEY or RISK_INSIGHT_PII_KEY_FILE "
                    "(production never generates one)"
                )
            key_file = storage.join(self.secrets_dir, "pii_key")
        if storage.is_local(self.lake_root) and Path(key_file).is_relative_to(
            storage.local_path(self.lake_root)
        ):
            raise ValueError(f"the personal-data key file {key_file} must not be inside the lake")
        path = Path(key_file)
        if not path.exists() and self.pii_key_file is not None:
            raise KeyMissing(f"personal-data key file {path} does not exist")
        return generated_secret(path)

    def step_server_key(self) -> bytes:
        """The key the step server and its clients authenticate with (``dags/step_server.py``):
        ``<secrets_dir>/step_server_key``, generated once."""
        return generated_secret(Path(storage.join(self.secrets_dir, "step_server_key"))).encode()


def generated_secret(path: Path) -> str:
    """The secret kept in ``path``; a random one is written there first (folder 0700, file
    0600) when the file does not exist."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.parent.chmod(0o700)
        path.write_text(secrets.token_hex(32), encoding="ascii")
        path.chmod(0o600)
    return path.read_text(encoding="ascii").strip()


class KeyMissing(RuntimeError):
    """No personal-data key is configured where one is required."""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return Settings()
