"""gunicorn settings: bind from $PORT, Prometheus multiprocess bookkeeping, control socket."""

import os
import shutil
from pathlib import Path

bind = os.environ.get("GUNICORN_BIND", f"127.0.0.1:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = 30
graceful_timeout = 10
accesslog = None
# gunicorn's threaded worker, with its own refusals (below) answered in the API's envelope.
worker_class = "mastery_project.gunicorn_worker.EnvelopeThreadWorker"
# gunicorn's request limits (its defaults, stated): a longer request line is refused 414,
# more or longer header lines 431, before Django runs. Bodies are capped by Django's
# DATA_UPLOAD_MAX_MEMORY_SIZE (413).
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190
# This checkout's state (`make run`'s DEVSERVICES_DIR), so that two stacks on one machine
# share neither the metrics files nor the control socket.
ROOT = Path(__file__).resolve().parent
STATE_DIR = Path(os.environ.get("DEVSERVICES_DIR", ROOT / ".devservices"))
# Several workers share one /metrics through prometheus_client's multiprocess mode.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(STATE_DIR / "prometheus"))
# For `gunicornc -s .devservices/gunicorn.ctl`; gunicorn's default is one per user.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", str(STATE_DIR / "gunicorn.ctl"))


def on_starting(server):
    metrics_dir = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True, exist_ok=True)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
