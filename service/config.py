"""Configuration: the one place that reads ``FIELDVAULT_*`` variables.

Every setting has a default, a coercer and an environment name. ``Config()``
reads the process environment once; ``Config.from_mapping`` reads any mapping
(tests build configs that way). A bad value fails fast with a message that
names the variable and says what was expected, never with a stack trace deep in
the request path.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ['Config', 'ConfigError']

ENV_PREFIX = 'FIELDVAULT_'


class ConfigError(ValueError):
    """A configuration value is missing or malformed."""


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError('must be a positive integer')
    return value


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError('must be zero or a positive integer')
    return value


def _boolean(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {'1', 'true', 'yes', 'on'}:
        return True
    if lowered in {'0', 'false', 'no', 'off'}:
        return False
    raise ValueError('must be one of 1/0, true/false, yes/no, on/off')


def _url(raw: str) -> str:
    if not re.match(r'^https?://[^\s/]+', raw):
        raise ValueError('must be an http:// or https:// URL')
    return raw.rstrip('/')


def _optional_url(raw: str) -> str | None:
    return _url(raw) if raw.strip() else None


def _identifier(raw: str) -> str:
    if not re.fullmatch(r'[a-z0-9][a-z0-9_-]{0,62}', raw):
        raise ValueError('must be lowercase letters, digits, "-" or "_" (1-63 chars)')
    return raw


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(',') if part.strip())


def _log_level(raw: str) -> str:
    level = raw.strip().upper()
    if level not in {'DEBUG', 'INFO', 'WARNING', 'ERROR'}:
        raise ValueError('must be DEBUG, INFO, WARNING or ERROR')
    return level


def _text(raw: str) -> str:
    return raw


def _optional_text(raw: str) -> str | None:
    return raw or None


@dataclasses.dataclass(frozen=True)
class _Setting:
    name: str
    default: Any
    coerce: Callable[[str], Any]
    help: str


# NOTE: keep this table sorted by name; docs/OPERATIONS.md is written from it.
_SETTINGS: tuple[_Setting, ...] = (
    _Setting('audit_db', 'audit', _identifier, 'database for the hash-chained audit log'),
    _Setting('bind_host', '127.0.0.1', _text, 'address gunicorn listens on'),
    _Setting('bind_port', 8080, _positive_int, 'port gunicorn listens on'),
    _Setting('bootstrap_token', None, _optional_text,
             'one-time secret that allows creating the first admin over HTTP'),
    _Setting('config_db', 'config', _identifier, 'database of replicated config documents'),
    _Setting('cors_origins', (), _csv, 'comma-separated origins allowed by CORS'),
    _Setting('couchdb_password', None, _optional_text, 'CouchDB admin password'),
    _Setting('couchdb_timeout', 30, _positive_int, 'seconds for one CouchDB request'),
    _Setting('couchdb_url', 'http://127.0.0.1:5984', _url, 'CouchDB (or pouchdb-server) URL'),
    _Setting('couchdb_user', None, _optional_text, 'CouchDB admin user'),
    _Setting('db_prefix', 'fv_', _text,
             'prefix of every database name, so several deployments share a server'),
    _Setting('device_max_concurrent', 6, _positive_int,
             'most requests one device may have in flight at once, per worker process (429 beyond)'),
    _Setting('directory_db', 'directory', _identifier, 'database of users, devices, keys'),
    _Setting('enroll_max_attempts', 10, _positive_int,
             'device enrollment attempts from one address within the window before throttling'),
    _Setting('enroll_window_seconds', 300, _positive_int,
             'seconds an address is throttled after too many enrollment attempts'),
    _Setting('enrollment_ttl', 900, _positive_int, 'seconds a device enrollment code lives'),
    _Setting('instrument_dir', None, _optional_text,
             'directory with extra screening instrument packs (e.g. a licensed CSE-IT)'),
    _Setting('keyvault_backup_retention_days', 30, _positive_int,
             'days a key-vault backup stays restorable; shredding is only as good as the oldest'),
    _Setting('keyvault_db', 'keyvault', _identifier, 'database of envelopes and grants'),
    _Setting('log_level', 'INFO', _log_level, 'log level of the JSON log lines'),
    _Setting('login_lockout_seconds', 300, _positive_int,
             'seconds a user name is throttled after too many failed logins'),
    _Setting('login_max_failures', 5, _positive_int,
             'failed logins within the lockout window before throttling'),
    _Setting('longpoll_max_seconds', 25, _positive_int,
             'upper bound of a _changes long-poll, below gunicorn timeout'),
    _Setting('max_body_bytes', 4 * 1024 * 1024, _positive_int, 'largest accepted request body'),
    _Setting('max_bulk_docs', 1000, _positive_int,
             'most documents one /sync _bulk_docs or _bulk_get request may name'),
    _Setting('max_doc_bytes', 256 * 1024, _positive_int, 'largest accepted pushed document'),
    _Setting('max_json_depth', 32, _positive_int, 'deepest accepted JSON nesting'),
    _Setting('org', 'org-default', _identifier, 'organisation id bound into every ciphertext'),
    _Setting('password_hash_memory_kib', 19 * 1024, _positive_int,
             'Argon2id memory for login password hashes (OWASP floor 19 MiB)'),
    _Setting('password_hash_iterations', 2, _positive_int, 'Argon2id passes for password hashes'),
    _Setting('program_attendance_percent', 70, _positive_int,
             'share of program weeks attended needed to complete, in percent'),
    _Setting('program_hold_to_lost_days', 30, _positive_int,
             'days a case stays on hold before it passes to lost contact'),
    _Setting('program_length_weeks', 10, _positive_int,
             'program length of a new case in weeks (supervisors may extend a case to 52)'),
    _Setting('report_liaison_lag_days', 30, _non_negative_int,
             'days after a quarter ends before the liaison sees its figures'),
    _Setting('quarantine_db', 'quarantine', _identifier, 'database of refused pushed documents'),
    _Setting('records_db', 'records', _identifier, 'database of intake records'),
    _Setting('retry_after_seconds', 30, _positive_int, 'Retry-After sent with 503'),
    _Setting('sealing_proposal_ttl_days', 14, _positive_int,
             'days a sealing proposal can be approved; later it has expired'),
    _Setting('sealing_waiting_days', 7, _non_negative_int,
             'days a sealing approver must have existed with unchanged roles and team before '
             'the proposal'),
    _Setting('server_uuid', None, _optional_text,
             'stable CouchDB-style uuid for GET /sync/; derived from org when unset'),
    _Setting('token_ttl', 3600, _positive_int, 'seconds a login token lives'),
    _Setting('web_concurrency', 2, _positive_int, 'gunicorn worker processes'),
    _Setting('web_threads', 8, _positive_int, 'threads per gunicorn worker (gthread only)'),
    _Setting('web_worker_class', 'gevent', _text,
             'gunicorn worker class: gevent (a waiting long-poll costs a greenlet) or gthread'),
    _Setting('web_worker_connections', 1000, _positive_int,
             'concurrent connections per gevent worker (each waiting live tablet holds two)'),
    _Setting('web_timeout', 60, _positive_int, 'gunicorn worker timeout in seconds'),
)


class Config:
    """Settings of one fieldvault instance.

    Attributes are the setting names of ``_SETTINGS`` (``config.couchdb_url``,
    ``config.token_ttl``, ...). Instances are immutable after construction.

    Args:
        environ: Mapping to read ``FIELDVAULT_*`` from; the process
            environment when omitted.
        **overrides: Settings given directly, already typed (tests use this).

    Raises:
        ConfigError: A variable is malformed or unknown.
    """

    def __init__(self, environ: Mapping[str, str] | None = None, **overrides: Any) -> None:
        environ = os.environ if environ is None else environ
        known = {setting.name for setting in _SETTINGS}
        unknown_overrides = set(overrides) - known
        if unknown_overrides:
            raise ConfigError(f'unknown settings: {", ".join(sorted(unknown_overrides))}')
        unknown_env = sorted(
            key for key in environ
            if key.startswith(ENV_PREFIX) and key[len(ENV_PREFIX):].lower() not in known
        )
        if unknown_env:
            # APPSEC: a typo such as FIELDVAULT_COUCHDB_URl would otherwise
            # silently point the service at the embedded default database.
            raise ConfigError(f'unknown variables: {", ".join(unknown_env)}')
        for setting in _SETTINGS:
            env_name = ENV_PREFIX + setting.name.upper()
            if setting.name in overrides:
                value = overrides[setting.name]
            elif env_name in environ:
                try:
                    value = setting.coerce(environ[env_name])
                except ValueError as ex:
                    raise ConfigError(f'{env_name} {ex}') from None
            else:
                value = setting.default
            object.__setattr__(self, setting.name, value)
        if self.longpoll_max_seconds >= self.web_timeout:
            raise ConfigError(
                'FIELDVAULT_LONGPOLL_MAX_SECONDS must be lower than FIELDVAULT_WEB_TIMEOUT'
            )

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError('Config is immutable')

    @classmethod
    def from_mapping(cls, environ: Mapping[str, str]) -> 'Config':
        """Build a config from an explicit mapping of variables."""
        return cls(environ)

    def replace(self, **overrides: Any) -> 'Config':
        """Return a copy with some settings changed."""
        current = {setting.name: getattr(self, setting.name) for setting in _SETTINGS}
        current.update(overrides)
        return Config({}, **current)

    def db_name(self, logical: str) -> str:
        """Return the physical database name of a logical one (``records``)."""
        return self.db_prefix + getattr(self, f'{logical}_db')

    @staticmethod
    def describe() -> list[tuple[str, str, str]]:
        """Return (variable, default, help) rows for documentation."""
        return [
            (ENV_PREFIX + setting.name.upper(), repr(setting.default), setting.help)
            for setting in _SETTINGS
        ]

    def __repr__(self) -> str:
        # APPSEC: never print secrets, even in a debugger or a crash report.
        secret = {'couchdb_password', 'bootstrap_token'}
        shown = ', '.join(
            f'{setting.name}={"***" if setting.name in secret else getattr(self, setting.name)!r}'
            for setting in _SETTINGS
        )
        return f'Config({shown})'
