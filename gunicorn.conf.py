"""gunicorn settings for fieldvault (read by the Procfile and `make run`).

gevent workers by default: a live tablet holds two _changes long-polls open
for up to FIELDVAULT_LONGPOLL_MAX_SECONDS each, and a gthread worker spends a
thread on each, so a few dozen tablets took every thread (docs/SYNC.md,
"Waiting costs no thread"). Under gevent a waiting request is a greenlet
parked on its upstream socket. The gateway closes long-polls before
`timeout`, so gunicorn never kills a worker for serving one.
"""

import os

from service.config import Config

_config = Config.from_env()

bind = f'{_config.bind_host}:{os.environ.get("PORT", _config.bind_port)}'
workers = int(os.environ.get('WEB_CONCURRENCY', _config.web_concurrency))
worker_class = _config.web_worker_class
threads = _config.web_threads
worker_connections = _config.web_worker_connections
timeout = _config.web_timeout
graceful_timeout = 20
keepalive = 5
# Access lines come from the app as JSON (no paths with ids, no queries).
accesslog = None
errorlog = '-'
loglevel = 'warning'
# Build the app in each worker after fork, so each has its own HTTP pool.
preload_app = False


def worker_exit(server, worker):
    """Close the worker's app (its push executor and CouchDB pool) as the worker ends."""
    close = getattr(getattr(worker, 'wsgi', None), 'close', None)
    if callable(close):
        close()
