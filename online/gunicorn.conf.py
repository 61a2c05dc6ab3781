"""gunicorn settings of the shim; `lore serve` applies them, or run gunicorn directly:

    gunicorn -c online/gunicorn.conf.py --bind 0.0.0.0:8080 --workers 2 'online.app:create_app()'

Threaded workers (a request waiting on Redis or the teacher does not block the process), one
torch and one BLAS thread each, the loaded app frozen out of the garbage collector's sight; Prometheus
multiprocess mode so /metrics aggregates every worker.
"""

import os
import tempfile

worker_class = "gthread"
workers = 4  # 2 per core: a worker's threads share one GIL, and tail requests wait on the teacher
threads = 8
timeout = 30  # a worker stuck this long is restarted
graceful_timeout = 10
keepalive = 5
max_requests = 100_000  # recycle workers now and then (leaks in C extensions)
max_requests_jitter = 10_000
accesslog = None  # the app logs one JSON line per request


def on_starting(server):
    folder = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="lore-metrics-"))
    for name in os.listdir(folder):  # samples of a previous run would be summed in
        os.unlink(os.path.join(folder, name))


def post_fork(server, worker):
    """One torch and one BLAS thread per worker: workers x threads already cover the cores, and
    the libraries' own pools on top of them oversubscribe the CPU (mid-tier latency collapses
    under load; OpenBLAS's second thread adds ~40% CPU to a student score)."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker):
    """Move everything the app loaded (student vectors, id maps, caches) out of the garbage
    collector's sight: a full collection over it stalls every thread of the worker for tens of
    milliseconds, which under load shows up as the p99 of every tier."""
    import gc

    gc.collect()
    gc.freeze()
