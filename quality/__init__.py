"""Data-quality governance (数据质量治理) with Great Expectations as the engine of record.

``rules`` row rules as Spark predicates · ``expectations`` custom GX expectations evaluating
them · ``suites`` one suite per bronze/silver/gold table and per source entering silver ·
``policy.yaml``/``policy`` block or warn per table × expectation · ``gates`` run the suites and
stop a run on a blocking table-level failure · ``ledger`` audit.quality_results · ``reports``
rectification reports back to the sources · ``recall`` scoring against the simulator's
defect manifest · ``engine`` the GX context and Data Docs.
"""
