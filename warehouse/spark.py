"""Spark session factory: local mode by default, any master by setting, Delta Lake always."""

from __future__ import annotations

import os
import sys

from delta import configure_spark_with_delta_pip
from pyspark.sql import SparkSession

from warehouse.settings import Settings, get_settings


def get_spark(settings: Settings | None = None, app_name: str = "risk-insight") -> SparkSession:
    """Return the process's Spark session with Delta Lake enabled (created on first call).

    Delta's jars are resolved from Maven Central by ``configure_spark_with_delta_pip`` and
    cached under ``~/.ivy2*``; nothing is committed to the repository.
    """
    s = settings or get_settings()
    # PySpark names the executors' Python from this variable (the conf below only reaches
    # spark-submit): without it a cluster's executors run whichever python3 is on their PATH.
    # A cluster whose nodes keep the environment elsewhere sets PYSPARK_PYTHON to that path.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.appName(app_name)
        .master(s.spark_master)
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config(
            "spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog"
        )
        .config("spark.driver.memory", s.driver_memory)
        # Python workers (pandas UDFs, mapInPandas) must use this interpreter and its packages.
        .config("spark.pyspark.python", sys.executable)
        .config("spark.sql.shuffle.partitions", str(s.shuffle_partitions))
        .config("spark.sql.session.timeZone", s.timezone)
        .config("spark.ui.showConsoleProgress", "false")
        # Agency extracts come in GBK/GB18030; Spark 4 only accepts them with Java charsets on.
        .config("spark.sql.legacy.javaCharsets", "true")
        # Small tables: Delta's default of 50 snapshot partitions only adds task overhead here.
        .config("spark.databricks.delta.snapshotPartitions", "2")
        .config("spark.databricks.delta.merge.repartitionBeforeWrite.enabled", "true")
        # VACUUM lists a table's folders with this many tasks; Spark's default (10,000) is
        # for lakes of millions of folders and made one VACUUM of a small table take 90 s on
        # two cores (5 s with this). A cluster raises it through spark_conf.
        .config("spark.sql.sources.parallelPartitionDiscovery.parallelism", "16")
    )
    for key, value in s.spark_conf.items():
        builder = builder.config(key, value)
    spark = configure_spark_with_delta_pip(builder).getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
