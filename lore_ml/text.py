"""Query normalisation: one definition shared by the Spark jobs and the online shim.

Spark SQL has no NFKC function, so Spark runs this very function as a pandas UDF
(:func:`lore_ml.spark_udfs.with_query_norm`); a test checks that both give identical
keys on a large varied corpus. Change it only together with a new cache version: the Redis
keys of head queries are hashes of its output.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

_UNITS = [
    (re.compile(r"(?<=\d)\s*(?:inches|inch|in\b|\"|'')"), " in"),
    (re.compile(r"(?<=\d)\s*(?:feet|foot|ft\b|')"), " ft"),
    (re.compile(r"(?<=\d)\s*(?:pounds|pound|lbs|lb\b)"), " lb"),
    (re.compile(r"(?<=\d)\s*(?:gigabytes|gigabyte|gb\b)"), " gb"),
    (re.compile(r"(?<=\d)\s*(?:millimeters|millimetres|millimeter|millimetre|mm\b)"), " mm"),
    (re.compile(r"(?<=\d)\s*(?:watts|watt|w\b)"), " w"),
]
_DASHES = re.compile(r"[\u2010-\u2015\u2212\ufe58\ufe63\uff0d]")
_APOSTROPHE = re.compile(r"(?<=[^\W\d])['\u2019](?=[^\W\d])")
_PUNCTUATION = re.compile(r"[^\w\s.#/+-]|(?<!\d)[./]|[./](?!\d)|(?<!\w)[-+]|[-+](?!\w)|_")
_SPACES = re.compile(r"\s+")


def normalize_query(text: str) -> str:
    """Canonical form of a query: NFKC, case-folded, units spelled one way, punctuation as space.

    >>> normalize_query("  Nike  Running-Shoes, MEN'S ")
    'nike running-shoes mens'
    >>> normalize_query("t\u2011shirt\u00a0kids")
    't-shirt kids'
    >>> normalize_query("ＴＶ stand 55\\"")
    'tv stand 55 in'
    >>> normalize_query("dumbbells 20lbs")
    'dumbbells 20 lb'
    >>> normalize_query("bike 27.5 inch / 29in")
    'bike 27.5 in 29 in'
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _DASHES.sub("-", text)
    for pattern, replacement in _UNITS:
        text = pattern.sub(replacement, text)
    text = _APOSTROPHE.sub("", text)
    text = _PUNCTUATION.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def query_hash(normalized: str) -> str:
    """Stable 16-hex-digit key of a normalised query (first 64 bits of its SHA-1).

    >>> query_hash("red shoes")
    'e203707aff4c3bf8'
    """
    return hashlib.sha1(normalized.encode("utf-8")).hexdigest()[:16]
