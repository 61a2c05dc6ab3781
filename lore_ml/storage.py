"""Where LORE's files live: local folders or storage URIs, opened from Python through ``pyarrow.fs``.

Spark reads and writes the lakehouse by URI itself; what this process reads (raw drops) or writes
(staged files) goes through the filesystem these helpers return, so both see the same storage.
"""

from __future__ import annotations

import re
from pathlib import Path


def is_uri(location: str) -> bool:
    """Whether ``location`` names storage by URI rather than a local path.

    >>> is_uri("s3a://bucket/raw"), is_uri("file:///srv/raw"), is_uri("data/raw")
    (True, True, False)
    """
    return "://" in location


def pyarrow_uri(uri: str) -> str:
    """A Spark storage URI as pyarrow names it: Hadoop's ``s3a://`` and ``s3n://`` are ``s3://``.

    >>> pyarrow_uri("s3a://bucket/lore"), pyarrow_uri("gs://bucket/lore"), pyarrow_uri("/srv/lore")
    ('s3://bucket/lore', 'gs://bucket/lore', '/srv/lore')
    """
    return re.sub(r"^s3[an]://", "s3://", uri)


def filesystem(location: str):
    """pyarrow's filesystem for a local path (relative to the working directory or absolute) or any
    URI ``pyarrow.fs`` knows (``file://``, ``s3://``, ``gs://``, ``abfs://``, ``hdfs://``), and the
    path within it.

    >>> fs, path = filesystem("file:///tmp/lake/_staging")
    >>> type(fs).__name__, path
    ('LocalFileSystem', '/tmp/lake/_staging')
    """
    import pyarrow.fs

    if not is_uri(location):
        return pyarrow.fs.LocalFileSystem(), str(Path(location).resolve())
    return pyarrow.fs.FileSystem.from_uri(pyarrow_uri(location))


def local_folder(location: str, writer: str) -> Path:
    """``location`` as a local folder for ``writer``, which writes local files only; a URI is refused
    with an error saying so."""
    if is_uri(location):
        raise ValueError(f"{writer} writes a local folder, not {location}: give it a local data.raw_root "
                         "and copy the drop to shared storage for jobs.ingest")
    return Path(location)
