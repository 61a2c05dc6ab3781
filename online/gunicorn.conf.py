"""gunicorn settings of the shim; `lore serve` applies them, or run gunicorn directly:

    gunicorn -c online/gunicorn.conf.py --bind 0.0.0.0:8080 --workers 2 'online.app:create_app()'

Threaded workers (a request waiting on Redis or the teacher does not block the process), one
torch thread each; Prometheus multiprocess mode so /metrics aggregates every worker.
"""

import os
import tempfile

worker_class = "gthread"
workers = 2
threads = 4
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
    """One torch thread per worker: workers x threads already cover the cores, and torch's own
    pool on top of them oversubscribes the CPU (mid-tier latency collapses under load)."""
    import torch

    torch.set_num_threads(1)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
