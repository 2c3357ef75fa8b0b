"""gunicorn settings for fieldvault (read by the Procfile and `make run`).

Threads, not only processes: a tablet's live sync holds a _changes long-poll
open for up to FIELDVAULT_LONGPOLL_MAX_SECONDS, and with sync workers a few
tablets would pin every worker. The gateway closes long-polls before
`timeout`, so gunicorn never kills a worker for serving one.
"""

import os

from service.config import Config

_config = Config()

bind = f'{_config.bind_host}:{os.environ.get("PORT", _config.bind_port)}'
workers = int(os.environ.get('WEB_CONCURRENCY', _config.web_concurrency))
worker_class = 'gthread'
threads = _config.web_threads
timeout = _config.web_timeout
graceful_timeout = 20
keepalive = 5
# Access lines come from the app as JSON (no paths with ids, no queries).
accesslog = None
errorlog = '-'
loglevel = 'warning'
# Build the app in each worker after fork, so each has its own HTTP pool.
preload_app = False
