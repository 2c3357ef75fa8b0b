"""Argon2id for login passwords and passphrase-derived keys.

Login passwords live here rather than in ``service/`` only because this
package owns the hazmat boundary.
"""

from __future__ import annotations

import dataclasses
import sys
import unicodedata
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from keys import _primitives

__all__ = [
    'DEFAULT_ARGON2',
    'MIN_PASSPHRASE_LENGTH',
    'Argon2Params',
    'hash_password',
    'verify_password',
]

#: Fewest characters (after NFC normalisation) a key-wrapping passphrase may have.
MIN_PASSPHRASE_LENGTH = 12


@dataclasses.dataclass(frozen=True)
class Argon2Params:
    """Argon2id cost parameters.

    Attributes:
        memory_kib: Memory cost in KiB.
        iterations: Number of passes (``t``).
        lanes: Degree of parallelism (``p``).
    """

    memory_kib: int
    iterations: int
    lanes: int = 1

    def __post_init__(self) -> None:
        for name in ('memory_kib', 'iterations', 'lanes'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f'Argon2Params.{name} must be a positive integer')
        if self.memory_kib < 8 * self.lanes:
            raise ValueError('Argon2Params.memory_kib must be at least 8 KiB per lane')


#: OWASP's floor for Argon2id: 19 MiB, t = 2, p = 1. Tests pass cheaper
#: parameters explicitly; nothing reads them from the environment here.
DEFAULT_ARGON2 = Argon2Params(memory_kib=19 * 1024, iterations=2, lanes=1)


def normalize_secret(secret: str) -> bytes:
    """Return the UTF-8 bytes of ``secret`` in Unicode NFC.

    APPSEC: the same passphrase typed on different systems may arrive in
    different normalisation forms; NFC makes them derive the same key.
    """
    return unicodedata.normalize('NFC', secret).encode('utf-8')


def hash_password(
    password: str,
    memory_kib: int = DEFAULT_ARGON2.memory_kib,
    iterations: int = DEFAULT_ARGON2.iterations,
) -> str:
    """Hash a login password into an Argon2id PHC string.

    Args:
        password: The password.
        memory_kib: Memory cost in KiB (default 19 MiB, OWASP's floor).
        iterations: Number of passes (default 2).

    Returns:
        ``$argon2id$v=19$m=...,t=...,p=1$<salt>$<hash>`` with a random salt.
    """
    if not isinstance(password, str):
        raise TypeError('password must be a str')
    params = Argon2Params(memory_kib=memory_kib, iterations=iterations)
    return _off_hub(
        _primitives.argon2id_phc,
        normalize_secret(password),
        memory_kib=params.memory_kib,
        iterations=params.iterations,
        lanes=params.lanes,
    )


def verify_password(password: str, encoded: str) -> bool:
    """Check a login password against its stored PHC string.

    Returns ``False`` for a wrong password and for a malformed ``encoded``.
    The comparison is pyca's constant-time verify. This returns a bool
    because it decides a login, not whether plaintext may be used.
    """
    if not isinstance(password, str) or not isinstance(encoded, str):
        return False
    return _off_hub(_primitives.argon2id_phc_verify, normalize_secret(password), encoded)


_P = ParamSpec('_P')
_T = TypeVar('_T')


def _off_hub(function: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """Call a CPU-bound Argon2id function on a real thread when gevent runs the process.

    Under a gevent worker every request is a greenlet on one OS thread, so a
    30 ms hash would stall every other request (and every waiting tablet) of
    the process. pyca releases the GIL while hashing, so on one of gevent's
    native pool threads the hub keeps serving meanwhile.
    """
    monkey = sys.modules.get('gevent.monkey')
    if monkey is None or not monkey.is_module_patched('threading'):
        return function(*args, **kwargs)
    from gevent import get_hub  # only here: gevent is already loaded
    return get_hub().threadpool.apply(function, args, kwargs)
