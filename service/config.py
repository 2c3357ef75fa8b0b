"""Configuration: the one place that reads ``FIELDVAULT_*`` variables.

``Config`` is a frozen dataclass: each field is one setting, with its type, its
default, and in its metadata the coercer that reads it from text and a help
line; its variable is ``FIELDVAULT_`` and the field name in capitals.
``Config.from_env()`` reads the process environment (or any mapping) once;
``Config(...)`` builds settings directly, already typed (tests build configs
that way). A bad value fails fast with a message that names the variable and
says what was expected, never with a stack trace deep in the request path.
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


def _url(raw: str) -> str:
    if not re.match(r'^https?://[^\s/]+', raw):
        raise ValueError('must be an http:// or https:// URL')
    return raw.rstrip('/')


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


def _setting(default: Any, coerce: Callable[[str], Any], help: str, *,
             secret: bool = False) -> Any:
    """Declare one setting: a dataclass field with its coercer and help line.

    Args:
        default: Value when the variable is unset.
        coerce: Turns the variable's text into the value; raises ``ValueError``
            with a message saying what was expected.
        help: One line for docs/OPERATIONS.md.
        secret: Never shown by ``repr``.

    Returns:
        The ``dataclasses.field`` (typed ``Any`` so it fits any annotation).
    """
    return dataclasses.field(
        default=default, metadata={'coerce': coerce, 'help': help, 'secret': secret})


def _env_name(field: dataclasses.Field[Any]) -> str:
    return ENV_PREFIX + field.name.upper()


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False)
class Config:
    """Settings of one fieldvault instance; immutable.

    ``Config(couchdb_url=..., ...)`` takes typed values and the defaults for
    the rest, without reading the environment; ``Config.from_env()`` reads
    ``FIELDVAULT_*`` variables.

    Raises:
        ConfigError: The settings contradict each other.
    """

    # NOTE: keep the fields sorted by name; docs/OPERATIONS.md lists them in this
    # order (a test checks both).
    audit_db: str = _setting('audit', _identifier, 'database for the hash-chained audit log')
    bind_host: str = _setting('127.0.0.1', _text, 'address gunicorn listens on')
    bind_port: int = _setting(8080, _positive_int, 'port gunicorn listens on')
    bootstrap_token: str | None = _setting(
        None, _optional_text,
        'one-time secret that allows creating the first admin over HTTP', secret=True)
    config_db: str = _setting('config', _identifier, 'database of replicated config documents')
    cors_origins: tuple[str, ...] = _setting((), _csv, 'comma-separated origins allowed by CORS')
    couchdb_concurrency: int = _setting(
        32, _positive_int,
        'most CouchDB requests one worker process has in flight at once (long-polls aside)')
    couchdb_password: str | None = _setting(
        None, _optional_text, 'CouchDB admin password', secret=True)
    couchdb_timeout: int = _setting(30, _positive_int, 'seconds for one CouchDB request')
    couchdb_url: str = _setting('http://127.0.0.1:5984', _url, 'CouchDB (or pouchdb-server) URL')
    couchdb_user: str | None = _setting(None, _optional_text, 'CouchDB admin user')
    db_prefix: str = _setting(
        'fv_', _text, 'prefix of every database name, so several deployments share a server')
    device_max_concurrent: int = _setting(
        6, _positive_int,
        'most requests one device may have in flight at once, per worker process (429 beyond)')
    directory_db: str = _setting('directory', _identifier, 'database of users, devices, keys')
    enroll_max_attempts: int = _setting(
        10, _positive_int,
        'device enrollment attempts from one address within the window before throttling')
    enroll_window_seconds: int = _setting(
        300, _positive_int, 'seconds an address is throttled after too many enrollment attempts')
    enrollment_ttl: int = _setting(900, _positive_int, 'seconds a device enrollment code lives')
    instrument_dir: str | None = _setting(
        None, _optional_text,
        'directory with extra screening instrument packs (e.g. a licensed CSE-IT)')
    keyvault_backup_retention_days: int = _setting(
        30, _positive_int,
        'days a key-vault backup stays restorable; shredding is only as good as the oldest')
    keyvault_db: str = _setting('keyvault', _identifier, 'database of envelopes and grants')
    log_level: str = _setting('INFO', _log_level, 'log level of the JSON log lines')
    login_lockout_seconds: int = _setting(
        300, _positive_int, 'seconds a user name is throttled after too many failed logins')
    login_max_failures: int = _setting(
        5, _positive_int, 'failed logins within the lockout window before throttling')
    longpoll_max_seconds: int = _setting(
        25, _positive_int, 'upper bound of a _changes long-poll, below gunicorn timeout')
    max_body_bytes: int = _setting(4 * 1024 * 1024, _positive_int, 'largest accepted request body')
    max_bulk_docs: int = _setting(
        1000, _positive_int, 'most documents one /sync _bulk_docs or _bulk_get request may name')
    max_doc_bytes: int = _setting(256 * 1024, _positive_int, 'largest accepted pushed document')
    max_json_depth: int = _setting(32, _positive_int, 'deepest accepted JSON nesting')
    org: str = _setting('org-default', _identifier, 'organisation id bound into every ciphertext')
    password_hash_iterations: int = _setting(
        2, _positive_int, 'Argon2id passes for password hashes')
    password_hash_memory_kib: int = _setting(
        19 * 1024, _positive_int, 'Argon2id memory for login password hashes (OWASP floor 19 MiB)')
    program_attendance_percent: int = _setting(
        70, _positive_int, 'share of program weeks attended needed to complete, in percent')
    program_hold_to_lost_days: int = _setting(
        30, _positive_int, 'days a case stays on hold before it passes to lost contact')
    program_length_weeks: int = _setting(
        10, _positive_int,
        'program length of a new case in weeks (supervisors may extend a case to 52)')
    quarantine_db: str = _setting('quarantine', _identifier, 'database of refused pushed documents')
    records_db: str = _setting('records', _identifier, 'database of intake records')
    report_liaison_lag_days: int = _setting(
        30, _non_negative_int, 'days after a quarter ends before the liaison sees its figures')
    retry_after_seconds: int = _setting(30, _positive_int, 'Retry-After sent with 503')
    sealing_proposal_ttl_days: int = _setting(
        14, _positive_int, 'days a sealing proposal can be approved; later it has expired')
    sealing_waiting_days: int = _setting(
        7, _non_negative_int,
        'days a sealing approver must have existed with unchanged roles and team before the '
        'proposal')
    server_uuid: str | None = _setting(
        None, _optional_text,
        'stable CouchDB-style uuid for GET /sync/; derived from org when unset')
    token_ttl: int = _setting(3600, _positive_int, 'seconds a login token lives')
    web_concurrency: int = _setting(2, _positive_int, 'gunicorn worker processes')
    web_threads: int = _setting(8, _positive_int, 'threads per gunicorn worker (gthread only)')
    web_timeout: int = _setting(60, _positive_int, 'gunicorn worker timeout in seconds')
    web_worker_class: str = _setting(
        'gevent', _text,
        'gunicorn worker class: gevent (a waiting long-poll costs a greenlet) or gthread')
    web_worker_connections: int = _setting(
        1000, _positive_int,
        'concurrent connections per gevent worker (each waiting live tablet holds two)')

    def __post_init__(self) -> None:
        if self.longpoll_max_seconds >= self.web_timeout:
            raise ConfigError(
                'FIELDVAULT_LONGPOLL_MAX_SECONDS must be lower than FIELDVAULT_WEB_TIMEOUT'
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Config:
        """Read the settings from ``FIELDVAULT_*`` variables.

        Args:
            environ: Mapping to read from; the process environment when omitted.
            **overrides: Settings given directly, already typed; they win over
                the variables.

        Returns:
            The config.

        Raises:
            ConfigError: A variable is malformed or unknown, or an override
                names no setting.
        """
        environ = os.environ if environ is None else environ
        fields = dataclasses.fields(cls)
        unknown_overrides = set(overrides) - {field.name for field in fields}
        if unknown_overrides:
            raise ConfigError(f'unknown settings: {", ".join(sorted(unknown_overrides))}')
        variables = {_env_name(field) for field in fields}
        unknown_env = sorted(
            key for key in environ if key.startswith(ENV_PREFIX) and key not in variables
        )
        if unknown_env:
            # APPSEC: a typo such as FIELDVAULT_COUCHDB_URl would otherwise
            # silently point the service at the embedded default database.
            raise ConfigError(f'unknown variables: {", ".join(unknown_env)}')
        values = dict(overrides)
        for field in fields:
            env_name = _env_name(field)
            if field.name not in values and env_name in environ:
                try:
                    values[field.name] = field.metadata['coerce'](environ[env_name])
                except ValueError as ex:
                    raise ConfigError(f'{env_name} {ex}') from None
        return cls(**values)

    def replace(self, **changes: Any) -> Config:
        """Return a copy with some settings changed."""
        return dataclasses.replace(self, **changes)

    def db_name(self, logical: str) -> str:
        """Return the physical database name of a logical one (``records``)."""
        name: str = getattr(self, f'{logical}_db')
        return self.db_prefix + name

    @classmethod
    def describe(cls) -> list[tuple[str, str, str]]:
        """Return (variable, default, help) rows for documentation."""
        return [
            (_env_name(field), repr(field.default), field.metadata['help'])
            for field in dataclasses.fields(cls)
        ]

    def __repr__(self) -> str:
        # APPSEC: never print secrets, even in a debugger or a crash report.
        shown = ', '.join(
            f'{field.name}={"***" if field.metadata["secret"] else getattr(self, field.name)!r}'
            for field in dataclasses.fields(self)
        )
        return f'Config({shown})'
