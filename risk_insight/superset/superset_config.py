"""Superset server configuration for the engine's local BI (``make bi`` and the BI tests).

Superset reads this file through ``SUPERSET_CONFIG_PATH``; everything instance-specific
comes from the environment that ``risk_insight.superset.server`` sets.
"""

import os

_HOME = os.environ["SUPERSET_HOME"]
SECRET_KEY = os.environ["SUPERSET_SECRET_KEY"]
SQLALCHEMY_DATABASE_URI = f"sqlite:///{_HOME}/superset.db"  # metadata only
DATA_DIR = _HOME

# The REST API manages roles and users (row-level security per district is provisioned as code).
FAB_ADD_SECURITY_API = True
# Loopback only, no TLS: Talisman's HTTPS redirects and CSP would break the local browser test.
TALISMAN_ENABLED = False
RATELIMIT_ENABLED = False
# The UI in Chinese first; English one click away.
BABEL_DEFAULT_LOCALE = "zh"
LANGUAGES = {"zh": {"flag": "cn", "name": "简体中文"}, "en": {"flag": "us", "name": "English"}}
# No outside calls from the server (closed network).
SUPERSET_WEBSERVER_TIMEOUT = 120
SQLLAB_CTAS_NO_LIMIT = True
