"""One writer at a time: a lake-level lock file with its holder's identity and an expiry.

Every command that writes the lake (a delivery run, a backfill, a DAG step, retention, an
erasure) holds this lock while it writes. A second writer waits for it (bounded by
``lock_wait_seconds``) or refuses with :class:`LockBusy`, whose message names the holder.

The lock is a small JSON file (owner, host, pid, started, expires, purpose, Airflow run id)
created atomically: written to a private temporary file, then hard-linked to the lock's name,
which fails if the name exists (``link`` is atomic on local disks and on NFS, and readers never
see a half-written lock). Where hard links are not supported, ``O_CREAT | O_EXCL`` is used.

A lock left behind by a killed process is recovered: on the same host when its pid is gone
(or now belongs to another process, compared by start time and boot id), from any host once
it has expired. A holder renews the expiry every ``ttl / 3`` seconds from a daemon thread,
so only a dead or hung holder expires.

Where the lock lives: ``<lake_root>/_writer.lock`` for a local lake; for a lake on object
storage (``s3a://``, ``abfss://``, …) at ``settings.lock_file``, which must be on a disk that
every writer sees (a shared volume). Without it the lock falls back to a file under the working
directory, which only serialises writers on this machine (said in the holder's ``purpose``
warning and in the README). Object stores have no atomic create-if-absent that every store
supports, so the lock is never kept in the bucket itself.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from warehouse import storage
from warehouse.settings import Settings


@dataclass(frozen=True)
class LockInfo:
    """Who holds the lock, since when, for what, and until when it is valid unrenewed."""

    owner: str
    host: str
    pid: int
    started: str  # ISO 8601, UTC
    expires: str  # ISO 8601, UTC
    purpose: str
    token: str
    pid_started: str = ""  # the holder process's start time (Linux clock ticks since boot)
    boot_id: str = ""
    airflow_run_id: str = ""

    def describe(self) -> str:
        """One line naming the holder, for people."""
        run = f", Airflow run {self.airflow_run_id}" if self.airflow_run_id else ""
        return (
            f"{self.owner}@{self.host} pid {self.pid} ({self.purpose}{run}) since "
            f"{self.started}, lease until {self.expires}"
        )

    def expired(self, now: datetime | None = None) -> bool:
        """True when the lease has run out (the holder stopped renewing it)."""
        return datetime.fromisoformat(self.expires) < (now or datetime.now(UTC))


class LockBusy(RuntimeError):
    """Another writer holds the lake lock (and did not release it within the wait)."""

    def __init__(self, path: str, holder: LockInfo | None, waited: float):
        self.path = path
        self.holder = holder
        who = holder.describe() if holder else "an unreadable lock file"
        super().__init__(
            f"湖仓正被占用 / the lake is locked by {who}; waited {waited:.0f} s "
            f"(lock file {path}). Retry later, or if that process is gone for good, "
            f"run `risk-insight lock break`."
        )


def lock_path(settings: Settings) -> str:
    """The lock file of ``settings``' lake (see the module docstring)."""
    if settings.lock_file:
        return settings.lock_file
    if storage.is_local(settings.lake_root):
        return storage.join(str(storage.local_path(settings.lake_root)), "_writer.lock")
    digest = hashlib.sha256(settings.lake_root.encode()).hexdigest()[:16]
    return storage.resolve(f".risk_insight_locks/{digest}.lock")


def shared(settings: Settings) -> bool:
    """False when the lock only protects writers on this machine (object-storage lake without
    a configured ``lock_file``)."""
    return bool(settings.lock_file) or storage.is_local(settings.lake_root)


def _proc_start(pid: int) -> str:
    """Start time of ``pid`` in clock ticks since boot ('' where /proc is not available)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]  # field 22; the name in (...) may hold spaces


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _alive(info: LockInfo) -> bool:
    """Whether the holder process still runs (only answerable on its own host)."""
    if info.boot_id and info.boot_id != _boot_id():
        return False  # the machine rebooted since: every process of then is gone
    try:
        os.kill(info.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, another user's
    started = _proc_start(info.pid)
    return not (info.pid_started and started and started != info.pid_started)


def stale(info: LockInfo, now: datetime | None = None) -> bool:
    """True when ``info``'s holder is gone: expired, or on this host and no longer running."""
    if info.expired(now):
        return True
    return info.host == socket.gethostname() and not _alive(info)


def read(path: str) -> LockInfo | None:
    """The lock at ``path``; None when there is none. Raises ValueError for a lock file that is
    not ours to read (garbage)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        return LockInfo(**json.loads(text))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"lock file {path} is not a lake lock: {text[:200]!r}") from exc


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _create(path: Path, info: LockInfo) -> bool:
    """Create the lock file holding ``info`` if no lock exists; False if one does."""
    data = json.dumps(asdict(info), ensure_ascii=False, indent=1).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{info.token}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    except OSError:  # no hard links here (some network or FUSE file systems)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _break(path: Path, seen: LockInfo | None) -> bool:
    """Remove the stale lock ``seen`` (None: unreadable): renamed aside first, so two
    processes recovering it at once cannot both succeed, and a lock that replaced it meanwhile
    is put back."""
    aside = path.with_name(f"{path.name}.stale-{uuid.uuid4().hex}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return True  # gone already: try to take it
    try:
        moved = read(str(aside))
    except ValueError:
        moved = None
    if seen is not None and (moved is None or moved.token != seen.token):
        with contextlib.suppress(FileExistsError, OSError):
            os.link(aside, path)  # not the one we judged stale: give it back
        aside.unlink(missing_ok=True)
        return False
    aside.unlink(missing_ok=True)
    return True


# Locks this process holds: path -> [lock, depth]. A process that already holds the lake lock
# (the demo running each delivery) takes it again without waiting on itself.
_HELD: dict[str, list] = {}
_GUARD = threading.RLock()


class LakeLock:
    """The held lake lock of this process (use :func:`lake_lock`)."""

    def __init__(self, path: str, info: LockInfo, ttl: float):
        self.path, self.info, self.ttl = path, info, ttl
        self._stop = threading.Event()
        self._renewer = threading.Thread(target=self._renew, daemon=True, name="lake-lock")
        self._renewer.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                current = read(self.path)
            except ValueError:
                current = None
            if current is None or current.token != self.info.token:
                print(
                    f"lake lock {self.path} was taken from this process: "
                    f"{current.describe() if current else 'removed'}",
                    file=sys.stderr,
                )
                return
            renewed = LockInfo(
                **{**asdict(self.info), "expires": (_now() + _ttl(self.ttl)).isoformat()}
            )
            tmp = Path(f"{self.path}.{self.info.token}.renew")
            tmp.write_text(json.dumps(asdict(renewed), ensure_ascii=False, indent=1))
            os.replace(tmp, self.path)
            self.info = renewed

    def release(self) -> None:
        """Stop renewing and remove the lock file if it is still this process's."""
        self._stop.set()
        self._renewer.join(timeout=5)
        try:
            current = read(self.path)
        except ValueError:
            return
        if current is not None and current.token == self.info.token:
            Path(self.path).unlink(missing_ok=True)


def _ttl(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def acquire(
    settings: Settings,
    purpose: str,
    wait: float | None = None,
    say: Callable[[str], None] | None = None,
) -> LakeLock:
    """Take the lake lock for ``purpose``: wait up to ``wait`` seconds (default
    ``settings.lock_wait_seconds``) while another live writer holds it, recovering a stale
    lock at once; raise :class:`LockBusy` naming the holder when the wait runs out."""
    path = lock_path(settings)
    if not storage.is_local(path):
        raise ValueError(f"lock_file must be on a local or shared disk, not {path}")
    wait = settings.lock_wait_seconds if wait is None else wait
    ttl = float(settings.lock_ttl_seconds)
    note = "" if shared(settings) else " [lock is local to this machine: set lock_file]"
    started = time.monotonic()
    told = False
    delay = 0.2
    while True:
        now = _now()
        info = LockInfo(
            owner=getpass.getuser(),
            host=socket.gethostname(),
            pid=os.getpid(),
            started=now.isoformat(),
            expires=(now + _ttl(ttl)).isoformat(),
            purpose=purpose + note,
            token=uuid.uuid4().hex,
            pid_started=_proc_start(os.getpid()),
            boot_id=_boot_id(),
            airflow_run_id=os.environ.get("AIRFLOW_CTX_DAG_RUN_ID", ""),
        )
        if _create(Path(path), info):
            return LakeLock(path, info, ttl)
        try:
            holder = read(path)
        except ValueError:
            holder = None
            # Unreadable: only an expired one (by its age) may be broken.
            with contextlib.suppress(FileNotFoundError):
                age = time.time() - Path(path).stat().st_mtime
                if age > ttl and _break(Path(path), None):
                    continue
        if holder is None:
            if not Path(path).exists():
                continue
        elif stale(holder):
            if say:
                say(f"recovering a stale lake lock: {holder.describe()}")
            _break(Path(path), holder)
            continue
        waited = time.monotonic() - started
        if waited >= wait:
            raise LockBusy(path, holder, waited)
        if say and not told:
            say(
                f"waiting up to {wait:.0f} s for the lake lock held by "
                f"{holder.describe() if holder else 'an unreadable lock file'}"
            )
            told = True
        time.sleep(min(delay, max(0.0, wait - waited)))
        delay = min(delay * 2, 2.0)


@contextlib.contextmanager
def lake_lock(
    settings: Settings,
    purpose: str,
    wait: float | None = None,
    say: Callable[[str], None] | None = None,
) -> Iterator[LockInfo]:
    """Hold the lake lock for the ``with`` block (re-entrant within one process); yields the
    holder record."""
    path = lock_path(settings)
    with _GUARD:
        held = _HELD.get(path)
        if held:
            held[1] += 1
    if held:
        try:
            yield held[0].info
        finally:
            with _GUARD:
                held[1] -= 1
        return
    lock = acquire(settings, purpose, wait, say)
    with _GUARD:
        _HELD[path] = [lock, 1]
    try:
        yield lock.info
    finally:
        with _GUARD:
            entry = _HELD[path]
            entry[1] -= 1
            if entry[1] == 0:
                del _HELD[path]
                lock.release()


def holder(settings: Settings) -> LockInfo | None:
    """Who holds the lake lock now (None: nobody)."""
    return read(lock_path(settings))


def break_stale(settings: Settings, force: bool = False) -> LockInfo | None:
    """Remove the lock if its holder is gone (or unconditionally with ``force``); returns the
    removed holder, None when there was no lock. Raises LockBusy for a live holder."""
    path = lock_path(settings)
    info = read(path)
    if info is None:
        return None
    if not force and not stale(info):
        raise LockBusy(path, info, 0.0)
    _break(Path(path), info)
    return info
