"""Scoring latency of the students: 100 items for one query, p50/p99 over --requests requests.

    .venv/bin/python bench/student_latency.py --student artifacts/students/current

Items are taken from the artefact (precomputed vectors, the mid-tier case); queries are drawn
from a pool that is half repeated (memoised vector) and half new each time (encoded on the fly,
what an unseen query costs). The lexical student is timed on the same requests for reference.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--student", type=Path, default=Path("artifacts/students/current"))
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--items", type=int, default=100)
    args = parser.parse_args()

    from lore_ml.students import LexicalStudent, RepresentationStudent

    item_ids = json.loads((args.student / "item_ids.json").read_text())
    rng = random.Random(0)
    repeated = [f"cordless drill {k} volt" for k in range(20)]
    requests = []
    for n in range(args.requests):
        query = rng.choice(repeated) if n % 2 else f"new query {n} brass lamp"
        requests.append((query, [{"item_id": i, "title": f"item {i}"} for i in rng.sample(item_ids, args.items)]))
    print(f"{args.requests} requests x {args.items} items on this machine "
          f"(half the queries repeat, half are new and encoded on the fly)")
    print(f"{'student':<34}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}")
    for name, student in (("representation " + args.student.name, RepresentationStudent(args.student)),
                          ("lexical", LexicalStudent())):
        student.score("warm up", requests[0][1])
        times = []
        for query, items in requests:
            started = time.perf_counter()
            student.score(query, items)
            times.append((time.perf_counter() - started) * 1000)
        print(f"{name:<34}{np.percentile(times, 50):>8.2f}{np.percentile(times, 99):>8.2f}{max(times):>8.2f}")


if __name__ == "__main__":
    main()
