"""Scoring latency of the students: 100 items for one query, p50/p99 over --requests requests.

    .venv/bin/python bench/student_latency.py --student artifacts/students/current \
        --cross artifacts/students-hd/current-cross

Items are taken from the representation artefact (precomputed vectors). Two query mixes: the
mid-tier case (head and mid queries, whose vectors the artefact carries) and unseen queries
(encoded on the fly, what a tail query falling back to the student costs). The cross-encoder
student (offline scorer) and the lexical student are timed on the same requests for reference.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np

from machine import speed_line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--student", type=Path, default=Path("artifacts/students/current"))
    parser.add_argument("--cross", type=Path, help="A cross-encoder student artefact to time as well.")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--items", type=int, default=100)
    args = parser.parse_args()

    from lore_ml.students import LexicalStudent, RepresentationStudent

    representation = RepresentationStudent(args.student)
    item_ids = json.loads((args.student / "item_ids.json").read_text())
    known_queries = json.loads((args.student / "queries.json").read_text())
    rng = random.Random(0)
    mixes = {}
    for mix in ("precomputed queries", "unseen queries"):
        mixes[mix] = [(rng.choice(known_queries) if mix.startswith("pre") else f"new query {n} brass lamp",
                       [{"item_id": i, "title": f"item {i}"} for i in rng.sample(item_ids, args.items)])
                      for n in range(args.requests)]
    students = [("representation " + representation.model_version, representation, args.requests),
                ("lexical", LexicalStudent(), args.requests)]
    if args.cross:
        from lore_ml.cross_encoder import CrossEncoderStudent

        students.append(("cross-encoder (offline)", CrossEncoderStudent(args.cross), min(args.requests, 50)))
    print(f"{args.items} items per request on this machine; p50/p99/max in ms; {speed_line()}")
    print(f"{'student':<44}{'queries':<22}{'requests':>9}{'p50':>8}{'p99':>8}{'max':>8}")
    for name, student, requests in students:
        for mix, batch in mixes.items():
            student.score("warm up", batch[0][1])
            times = []
            for query, items in batch[:requests]:
                started = time.perf_counter()
                student.score(query, items)
                times.append((time.perf_counter() - started) * 1000)
            print(f"{name:<44}{mix:<22}{requests:>9}{np.percentile(times, 50):>8.2f}"
                  f"{np.percentile(times, 99):>8.2f}{max(times):>8.2f}")

if __name__ == "__main__":
    main()
