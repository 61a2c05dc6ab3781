"""The Spark SQL the jobs run, one ``<name>.sql`` file each, loaded by name.

Parameters are bound with ``spark.sql(text, args={...})`` (``:name`` markers), never
string-formatted.
"""

from importlib import resources


def load(name: str) -> str:
    """The text of ``sql/<name>.sql``."""
    return resources.files(__name__).joinpath(f"{name}.sql").read_text(encoding="utf-8")
