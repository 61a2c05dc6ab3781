"""Where LORE's files live: local folders or storage URIs, opened from Python through ``pyarrow.fs``.

Spark reads and writes the lakehouse by URI itself; what this process reads (raw drops) or writes
(staged files) goes through the filesystem these helpers return, so both see the same storage.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit


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
    if re.match(r"^abfss?://", location) and os.environ.get("AZURE_STORAGE_ACCOUNT_KEY"):
        return azure_filesystem(location, os.environ)
    return pyarrow.fs.FileSystem.from_uri(pyarrow_uri(location))


def azure_filesystem(uri: str, env: Mapping[str, str]) -> tuple:
    """pyarrow's filesystem for ``abfs[s]://container@account.dfs.core.windows.net/path`` with the
    account key (and the emulator) that Sail and deltalake read from the environment:
    ``AZURE_STORAGE_ACCOUNT_KEY``, and ``AZURE_STORAGE_USE_EMULATOR`` with ``AZURITE_BLOB_STORAGE_URL``
    (default ``http://127.0.0.1:10000``). pyarrow itself reads no key from the environment: given
    the URI alone it tries Azure AD credentials only.

    >>> fs, path = azure_filesystem("abfss://lake@devstoreaccount1.dfs.core.windows.net/lore/raw",
    ...                             {"AZURE_STORAGE_ACCOUNT_KEY": "a2V5", "AZURE_STORAGE_USE_EMULATOR": "true"})
    >>> type(fs).__name__, path
    ('AzureFileSystem', 'lake/lore/raw')
    """
    import pyarrow.fs

    parts = urlsplit(uri)
    container, _, host = parts.netloc.rpartition("@")
    options = {}
    if env.get("AZURE_STORAGE_USE_EMULATOR", "").lower() in ("1", "true"):
        emulator = urlsplit(env.get("AZURITE_BLOB_STORAGE_URL", "http://127.0.0.1:10000"))
        options = {"blob_storage_authority": emulator.netloc, "blob_storage_scheme": emulator.scheme,
                   "dfs_storage_authority": emulator.netloc, "dfs_storage_scheme": emulator.scheme}
    fs = pyarrow.fs.AzureFileSystem(host.split(".")[0], account_key=env["AZURE_STORAGE_ACCOUNT_KEY"], **options)
    return fs, f"{container}{parts.path}".rstrip("/")


def local_folder(location: str, writer: str) -> Path:
    """``location`` as a local folder for ``writer``, which writes local files only; a URI is refused
    with an error saying so."""
    if is_uri(location):
        raise ValueError(f"{writer} writes a local folder, not {location}: give it a local data.raw_root "
                         "and copy the drop to shared storage for jobs.ingest")
    return Path(location)
