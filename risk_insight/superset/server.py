"""Start a local Superset server from its own virtual environment (``.venv-bi``).

Used by ``make bi`` and by the BI integration tests. Metadata is SQLite under the server's
home folder; the server listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from risk_insight.superset.client import wait_healthy

REPO = Path(__file__).resolve().parents[2]
BI_VENV = Path(os.environ.get("RISK_INSIGHT_BI_VENV", REPO / ".venv-bi"))
CONFIG = Path(__file__).with_name("superset_config.py")


@dataclass
class LocalSuperset:
    """A running local server: where, who, and its process."""

    url: str
    username: str
    password: str
    home: Path
    process: subprocess.Popen

    def stop(self) -> None:
        """Stop the server (gunicorn and its workers)."""
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (mode 0600 from the start)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(tmp, path)


def _env(home: Path) -> dict[str, str]:
    key_file = home / "secret_key"
    if not key_file.exists():
        write_private(key_file, secrets.token_urlsafe(42))
    return {
        **os.environ,
        "SUPERSET_HOME": str(home),
        "SUPERSET_CONFIG_PATH": str(CONFIG),
        "SUPERSET_SECRET_KEY": key_file.read_text().strip(),
        "FLASK_APP": "superset",
        "PATH": f"{BI_VENV / 'bin'}:{os.environ.get('PATH', '')}",
    }


def _superset(home: Path, *args: str) -> None:
    log = home / "setup.log"
    with log.open("a") as out:
        done = subprocess.run(
            [str(BI_VENV / "bin" / "superset"), *args],
            env=_env(home),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if done.returncode:
        raise RuntimeError(f"superset {' '.join(args[:2])} failed; see {log}")


def init_home(home: Path, username: str = "admin", password: str | None = None) -> str:
    """Create the metadata DB, the admin user and the default roles once; returns the admin
    password (given, or generated on first run and kept in ``<home>/admin_password``)."""
    home.mkdir(parents=True, exist_ok=True)
    pw_file = home / "admin_password"
    if password is None:
        if not pw_file.exists():
            write_private(pw_file, secrets.token_urlsafe(12))
        password = pw_file.read_text().strip()
    stamp = home / ".initialised"
    if not stamp.exists():
        _superset(home, "db", "upgrade")
        _superset(
            home, "fab", "create-admin", "--username", username, "--firstname", "Admin",
            "--lastname", "BI", "--email", f"{username}@localhost", "--password", password,
        )  # fmt: skip
        _superset(home, "init")
        stamp.touch()
    return password


def user_passwords(home: Path, users: list[str]) -> tuple[dict[str, str], list[str]]:
    """One generated password per demo user, kept in ``<home>/user_passwords.json`` (mode
    0600); returns every user's password and the users whose password is new (to show once)."""
    path = home / "user_passwords.json"
    known: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    new = [u for u in users if u not in known]
    for user in new:
        known[user] = secrets.token_urlsafe(12)
    if new or not path.exists():
        write_private(path, json.dumps(known, indent=1, sort_keys=True))
    return {u: known[u] for u in users}, new


def start(
    home: Path, port: int = 8088, username: str = "admin", password: str | None = None
) -> LocalSuperset:
    """Initialise ``home`` if needed and start gunicorn on 127.0.0.1:``port``; returns once
    ``/health`` answers."""
    password = init_home(home, username, password)
    log = (home / "server.log").open("a")
    process = subprocess.Popen(
        [
            str(BI_VENV / "bin" / "gunicorn"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--threads",
            "4",
            "--worker-class",
            "gthread",
            "--timeout",
            "120",
            "superset.app:create_app()",
        ],  # fmt: skip
        env=_env(home),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url)
    except TimeoutError:
        process.kill()
        raise
    return LocalSuperset(url, username, password, home, process)
