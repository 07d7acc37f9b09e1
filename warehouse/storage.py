"""Locations of files beside the tables: a local path or an object-storage URI.

Settings resolve every location once (:func:`resolve`): a local path becomes absolute, a URI
(``file://``, ``s3a://``, ``abfss://``, ``gs://``, ``hdfs://``) stays as written. Code that
writes files beside the tables (model artifacts) goes through the functions below, which use
the local disk for local locations and ``pyarrow.fs`` for object storage, so the same code
runs with the lake on a laptop or in a bucket.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
# Hadoop's scheme names → the ones pyarrow.fs knows.
_PYARROW_SCHEME = {"s3a": "s3", "s3n": "s3", "abfss": "abfs", "gcs": "gs"}


def is_uri(location: str) -> bool:
    """True for ``scheme://…`` (``file://`` included), False for a plain path."""
    return bool(_URI.match(location))


def resolve(location: str) -> str:
    """A URI unchanged; a local path with ``~`` expanded, made absolute against the working
    directory (``./lakehouse`` → ``/home/me/project/lakehouse``)."""
    if is_uri(location):
        return location
    return str(Path(location).expanduser().resolve())


def is_local(location: str) -> bool:
    """True for a local path or a ``file://`` URI."""
    return not is_uri(location) or location.startswith("file://")


def local_path(location: str) -> Path:
    """The local path of a local location; ValueError for object storage."""
    if not is_local(location):
        raise ValueError(f"{location} is not on the local file system")
    return Path(location.removeprefix("file://"))


def join(root: str, *parts: str) -> str:
    """``root/part/…`` for a path or a URI."""
    return "/".join([root.rstrip("/"), *(p.strip("/") for p in parts)])


def parent(location: str) -> str:
    """The folder that holds ``location``."""
    return location.rstrip("/").rsplit("/", 1)[0]


def _remote(location: str) -> tuple[Any, str]:
    from pyarrow import fs

    scheme, rest = location.split("://", 1)
    return fs.FileSystem.from_uri(f"{_PYARROW_SCHEME.get(scheme, scheme)}://{rest}")


def write_bytes(location: str, data: bytes) -> None:
    """Write ``data`` to ``location``, creating its folders."""
    if is_local(location):
        path = local_path(location)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return
    filesystem, path = _remote(location)
    filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with filesystem.open_output_stream(path) as out:
        out.write(data)


def write_text(location: str, text: str) -> None:
    """Write ``text`` as UTF-8 to ``location``."""
    write_bytes(location, text.encode("utf-8"))


def read_bytes(location: str) -> bytes:
    """The bytes at ``location``; FileNotFoundError if there is no file."""
    if is_local(location):
        return local_path(location).read_bytes()
    filesystem, path = _remote(location)
    with filesystem.open_input_stream(path) as src:
        return src.read()


def read_text(location: str) -> str:
    """The UTF-8 text at ``location``."""
    return read_bytes(location).decode("utf-8")


def exists(location: str) -> bool:
    """True when a file or folder is at ``location``."""
    if is_local(location):
        return local_path(location).exists()
    from pyarrow import fs

    filesystem, path = _remote(location)
    return filesystem.get_file_info(path).type != fs.FileType.NotFound


def is_empty(location: str) -> bool:
    """True when nothing is at ``location`` or it is an empty folder."""
    if is_local(location):
        path = local_path(location)
        return not path.exists() or (path.is_dir() and not any(path.iterdir()))
    from pyarrow import fs

    filesystem, path = _remote(location)
    if filesystem.get_file_info(path).type == fs.FileType.NotFound:
        return True
    return not filesystem.get_file_info(fs.FileSelector(path, allow_not_found=True))
