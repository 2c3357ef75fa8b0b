"""Import boundaries of ``keys``: one hazmat module, no falcon.

Walked with ``ast`` (not grep) so ``import cryptography.hazmat as h``,
``from cryptography import hazmat`` and imports inside functions all count,
while the word in a docstring does not.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

pytestmark = pytest.mark.unit

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGES = ('service', 'schemas', 'sync', 'keys')
HAZMAT_MODULE = pathlib.Path('keys', '_primitives.py')


def imported_modules(tree: ast.AST) -> set[str]:
    """Return every module an AST imports, with ``from x import y`` as ``x.y`` too."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f'{node.module}.{alias.name}' for alias in node.names)
    return names


def python_files(*packages: str) -> list[pathlib.Path]:
    return sorted(
        path.relative_to(ROOT)
        for package in packages
        for path in (ROOT / package).rglob('*.py')
    )


def imports_of(relative: pathlib.Path) -> set[str]:
    source = (ROOT / relative).read_text(encoding='utf-8')
    return imported_modules(ast.parse(source, filename=str(relative)))


def is_hazmat(module: str) -> bool:
    return module == 'cryptography.hazmat' or module.startswith('cryptography.hazmat.')


def test_the_walk_sees_every_package():
    files = python_files(*PACKAGES)
    assert HAZMAT_MODULE in files
    assert {path.parts[0] for path in files} >= {'keys', 'service'}


def test_the_walk_catches_every_import_spelling():
    source = '''
import cryptography.hazmat.primitives as primitives
from cryptography import hazmat
def late():
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
'''
    found = imported_modules(ast.parse(source))
    assert {'cryptography.hazmat.primitives', 'cryptography.hazmat',
            'cryptography.hazmat.primitives.ciphers.aead'} <= found
    docstring_only = imported_modules(ast.parse('"""cryptography.hazmat"""'))
    assert not any(is_hazmat(name) for name in docstring_only)


@pytest.mark.parametrize('relative', python_files(*PACKAGES), ids=str)
def test_only_keys_primitives_imports_hazmat(relative):
    hazmat = sorted(name for name in imports_of(relative) if is_hazmat(name))
    if relative == HAZMAT_MODULE:
        assert hazmat, 'keys/_primitives.py is where hazmat is used'
    else:
        assert not hazmat, f'{relative} imports {hazmat}; only {HAZMAT_MODULE} may'


@pytest.mark.parametrize('relative', python_files('keys'), ids=str)
def test_keys_never_imports_falcon(relative):
    falcon = sorted(name for name in imports_of(relative)
                    if name == 'falcon' or name.startswith('falcon.'))
    assert not falcon, f'{relative} imports {falcon}'


def test_primitives_opens_with_a_hazmat_warning():
    docstring = ast.get_docstring(ast.parse((ROOT / HAZMAT_MODULE).read_text(encoding='utf-8')))
    assert docstring and 'Hazardous Materials' in docstring
