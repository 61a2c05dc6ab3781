"""Resumable long runs: what a run has finished, saved as it goes, until its day is written.

A job whose expensive part is many independent calls (an LLM writing reasoning in ``synth_cot``,
the teacher judging pairs in ``judge_head``) writes its table once, at the end: a run that fails
or is killed near the end would otherwise redo every call. :class:`RunCheckpoint` keeps each
finished call's result under a key that names everything it depends on (model, prompt), in
parts of JSON lines at ``<lakehouse.root>/_checkpoints/<job>/<ds>/`` — whole files, as object
stores require. The next run of the day loads them and skips those calls; once the day's table
is written the job clears the folder; ``lore expire-partitions`` deletes the folders of days
that were never run again (:func:`expire_checkpoints`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import uuid
from typing import Any

log = logging.getLogger("lore.checkpoint")


def checkpoints_uri(lakehouse) -> str:
    """Where every job's checkpoints live: ``<root>/_checkpoints`` of a :class:`LakehouseConfig`."""
    return lakehouse.table_uri("_checkpoints.job").rpartition("/")[0]


class RunCheckpoint:
    """Results by key of one job's day, saved in parts of ``flush_every`` as they come, at ``uri``
    (a local folder or a storage URI). A killed run loses at most its last unsaved part.

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> saving = RunCheckpoint(folder, flush_every=2)
    >>> for n in range(3):
    ...     saving.add(f"key-{n}", {"label": "L4", "n": n})
    >>> saving.flush()  # the third, in a part of its own
    >>> RunCheckpoint(folder).load()["key-2"]
    {'label': 'L4', 'n': 2}
    >>> RunCheckpoint(folder).clear(); RunCheckpoint(folder).load()
    {}
    """

    def __init__(self, uri: str, flush_every: int = 200):
        from lore_ml.storage import filesystem

        self.uri, self.flush_every = uri, flush_every
        self._fs, self._root = filesystem(uri)
        self._run, self._parts, self._pending, self._lock = uuid.uuid4().hex[:12], 0, [], threading.Lock()

    @classmethod
    def for_job(cls, lakehouse, job: str, ds: str, flush_every: int = 200) -> "RunCheckpoint":
        """The checkpoint of ``job`` for ``ds`` under the lakehouse root (a :class:`LakehouseConfig`)."""
        return cls(f"{checkpoints_uri(lakehouse)}/{job}/{ds}", flush_every)

    def _part_paths(self) -> list[str]:
        import pyarrow.fs

        if self._fs.get_file_info(self._root).type != pyarrow.fs.FileType.Directory:
            return []
        return sorted(info.path for info in self._fs.get_file_info(pyarrow.fs.FileSelector(self._root))
                      if info.base_name.endswith(".jsonl"))

    def load(self) -> dict[str, Any]:
        """{key: result} of every part earlier runs of the day saved. A line cut short (a run killed
        while writing a part to a local disk) is skipped with a warning: its call is simply made again."""
        results = {}
        for path in self._part_paths():
            with self._fs.open_input_stream(path) as part:
                for line in part.read().decode("utf-8").splitlines():
                    try:
                        key, result = json.loads(line)
                    except ValueError:
                        log.warning("skipping a cut-short line of %s", path)
                        continue
                    results[key] = result
        return results

    def add(self, key: str, result: Any) -> None:
        """Save ``result`` (anything JSON holds) under ``key``; thread-safe."""
        with self._lock:
            self._pending.append((key, result))
            if len(self._pending) >= self.flush_every:
                self._write_part()

    def flush(self) -> None:
        """Save what is pending now (a run that stops calls this on its way out)."""
        with self._lock:
            self._write_part()

    def _write_part(self) -> None:
        if not self._pending:
            return
        self._fs.create_dir(self._root, recursive=True)
        body = "".join(json.dumps(entry) + "\n" for entry in self._pending).encode("utf-8")
        with self._fs.open_output_stream(f"{self._root}/part-{self._run}-{self._parts:05d}.jsonl") as part:
            part.write(body)
        self._parts, self._pending = self._parts + 1, []

    def clear(self) -> None:
        """Delete every saved part: the day's table is written, nothing is left to resume."""
        import pyarrow.fs

        with self._lock:
            self._pending = []
        if self._fs.get_file_info(self._root).type == pyarrow.fs.FileType.Directory:
            self._fs.delete_dir(self._root)


def expire_checkpoints(lakehouse, ds: str, keep_days: int, dry_run: bool = False) -> dict[str, tuple[list[str], int]]:
    """Delete the checkpoints of days before the ``keep_days`` days ending at ``ds`` (a day whose
    run failed and was not run again within them will not be); with ``dry_run`` only list them.
    Returns {job: (expired days, days left)} for every job with checkpoints."""
    import pyarrow.fs

    from lore_ml.storage import filesystem

    fs, root = filesystem(checkpoints_uri(lakehouse))
    if fs.get_file_info(root).type != pyarrow.fs.FileType.Directory:
        return {}
    first_kept = (dt.date.fromisoformat(ds) - dt.timedelta(days=keep_days - 1)).isoformat()
    result = {}
    for job in sorted(fs.get_file_info(pyarrow.fs.FileSelector(root)), key=lambda info: info.base_name):
        if job.type != pyarrow.fs.FileType.Directory:
            continue
        days = sorted(info.base_name for info in fs.get_file_info(pyarrow.fs.FileSelector(job.path))
                      if info.type == pyarrow.fs.FileType.Directory)
        expired = [day for day in days if day < first_kept]
        for day in expired if not dry_run else ():
            fs.delete_dir(f"{job.path}/{day}")
            log.info("removed the checkpoint of %s for %s", job.base_name, day)
        result[job.base_name] = (expired, len(days) - len(expired))
    return result
