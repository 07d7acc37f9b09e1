"""No credential is committed: every file git tracks (or would add: untracked, not ignored) is
scanned for private keys, cloud access keys, passwords in URLs and password / secret / token
assignments with a literal value. Credentials come from the environment or from files outside
the repository (or git-ignored folders created at run time: ``.secrets/``, ``.superset/``,
``.airflow/``). Clearly marked test placeholders are allowed by the explicit list below."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# The only literal "secrets" in the repository: test placeholders, each named for what it is.
ALLOWED = {
    "test-key-not-secret",  # tests/conftest.py: the personal-data key of throw-away test lakes
    "admin-test-pw",  # tests/test_bi.py: the throw-away Superset's admin
    "district-test-pw",  # tests/test_bi.py: its demo users
    "bench-key-not-secret",  # bench/: the personal-data key of throw-away benchmark lakes
}
# Names that hold where a secret is, not the secret.
NOT_A_SECRET_NAME = re.compile(r"(?i)(?:_file|_path|_dir|_env|_name|_url)\b")

_VALUE = r"""["']([^"'\s{}$%<>]{4,})["']"""
PATTERNS: dict[str, re.Pattern[str]] = {
    "private key": re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"),
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "AWS secret access key": re.compile(
        r"(?i)aws_?secret_?access_?key\s*[:=]\s*['\"]?([A-Za-z0-9/+=]{40})"
    ),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[0-9A-Za-z-]{10,}"),
    "password in a URL": re.compile(
        r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^/\s:@\"'<>{}$]+:([^/\s@\"'<>{}$]+)@[^\s/\"']+"
    ),
    "secret assignment": re.compile(
        r"(?i)\b([\w.]*(?:password|passwd|pwd|secret|secret_key|api_?key|access_?key|token|"
        r"pii_key)\w*)\s*(?::\s*\w[\w\[\] |]*)?\s*[:=]\s*" + _VALUE
    ),
    "Superset secret key": re.compile(r"SECRET_KEY\s*[:=]\s*" + _VALUE),
    "secret in config": re.compile(
        r"(?im)^\s*(?:export\s+)?[\w.]*(?:password|passwd|secret|token|api_?key)\w*\s*[:=]\s*"
        r"([^\s\"'#{}$%<>]{6,})\s*$"
    ),
}
CONFIG_SUFFIXES = {".yaml", ".yml", ".env", ".ini", ".cfg", ".toml", ".conf", ".properties", ""}


def findings(name: str, text: str) -> list[str]:
    """Credential-like strings in ``text`` (the file ``name``), allow-listed ones left out."""
    out = []
    for kind, pattern in PATTERNS.items():
        if kind == "secret in config" and Path(name).suffix not in CONFIG_SUFFIXES:
            continue
        for m in pattern.finditer(text):
            value = m.group(m.lastindex or 0)
            if value in ALLOWED:
                continue
            if kind == "secret assignment" and NOT_A_SECRET_NAME.search(m.group(1)):
                continue
            line = text.count("\n", 0, m.start()) + 1
            out.append(f"{name}:{line}: {kind}: {m.group(0)[:80]}")
    return out


def repository_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode()  # fmt: skip
    return sorted({f for f in listed.split("\0") if f and (REPO / f).is_file()})


def test_no_credential_is_committed():
    files = repository_files()
    assert len(files) > 100 and "warehouse/settings.py" in files
    found = []
    for name in files:
        try:
            text = (REPO / name).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary (screenshots)
        found += findings(name, text)
    assert not found, "credential-like strings in the repository:\n" + "\n".join(found)


def test_the_scanner_catches_each_kind_of_credential():
    # built at run time, so this file itself holds none of them
    pem = "-----BEGIN " + "RSA PRIVATE KEY-----\nMIIE...\n"
    samples = {
        "private key": ("id_rsa", pem),
        "AWS access key id": ("a.py", "key = " + "AKIA" + "ABCDEFGHIJKLMNOP\n"),
        "AWS secret access key": ("b.sh", "aws_secret_access_key=" + "a1B2" * 10 + "\n"),
        "GitHub token": ("c.md", "ghp_" + "x" * 36),
        "password in a URL": ("d.py", 'URL = "postgresql://bi:' + 'hunter22@db.internal/marts"'),
        "secret assignment": ("e.py", 'superset_password = "' + 'S3cret-pass"\n'),
        "Superset secret key": ("superset_config.py", 'SECRET_KEY = "' + 'abcd1234efgh"\n'),
        "secret in config": ("risk_insight.yaml", "superset_password: " + "Pa55word9\n"),
    }
    for kind, (name, text) in samples.items():
        got = findings(name, text)
        assert any(f": {kind}: " in g for g in got), (kind, got)
    # what is not a credential: env lookups, templates, typed fields without a literal,
    # URLs without a password, and the allow-listed placeholders
    clean = (
        'password = os.environ["SUPERSET_PASSWORD"]\n'
        'url = f"postgresql://{user}:{password}@{host}/db"\n'
        "superset_password: str | None = Field(None)\n"
        "serving_url: postgresql://user@host/db\n"
        'pii_key="test-key-not-secret"\n'
        'pii_key_file="/etc/risk-insight/pii_key"\n'
    )
    assert findings("x.py", clean) == []
    assert findings("x.yaml", "superset_password: ${SUPERSET_PASSWORD}\n") == []


def test_places_where_secrets_are_generated_are_ignored_by_git():
    for folder in (".secrets/pii_key", ".superset/admin_password", ".airflow/x.generated"):
        ignored = subprocess.run(["git", "check-ignore", "-q", folder], cwd=REPO)
        assert ignored.returncode == 0, f"{folder} would be committed"
