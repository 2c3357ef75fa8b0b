"""Structured JSON log lines with a request id.

Log records carry only what the code puts in ``extra``: event names, ids,
counts, statuses and durations. Bodies, headers and query strings are never
logged, because any of them may hold an identifying value.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time

__all__ = ['configure_logging', 'request_id_var']

#: The id of the request being handled on this thread, for every log line.
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    'request_id', default=None)

_STANDARD = set(vars(logging.LogRecord('', 0, '', 0, '', (), None))) | {'message', 'asctime'}


class JSONFormatter(logging.Formatter):
    """Format a record as one JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            'ts': time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(record.created))
            + f'.{int(record.msecs):03d}Z',
            'level': record.levelname,
            'logger': record.name,
            'msg': record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            line['request_id'] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith('_'):
                line[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            # APPSEC: the exception text may quote data; keep the type only.
            line['exception'] = record.exc_info[0].__name__
        return json.dumps(line, default=str, separators=(',', ':'))


class _JSONLinesHandler(logging.StreamHandler):
    """The handler ``configure_logging`` installs, and replaces when called again."""


def configure_logging(level: str = 'INFO', stream=None) -> None:
    """Send every ``fieldvault.*`` record to ``stream`` as JSON lines."""
    logger = logging.getLogger('fieldvault')
    logger.setLevel(level)
    for handler in list(logger.handlers):
        if isinstance(handler, _JSONLinesHandler):
            logger.removeHandler(handler)
    installed = _JSONLinesHandler(stream or sys.stderr)
    installed.setFormatter(JSONFormatter())
    logger.addHandler(installed)
    logger.propagate = False
