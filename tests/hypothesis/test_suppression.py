"""Property tests: a suppressed table lets nobody solve for a withheld figure.

The attacker's view: every published figure (cells and totals) and the
table's additive relations. For each withheld figure, the test solves the
linear system from outside: the figure is recoverable exactly when its unit
vector lies in the row space of the relations restricted to the withheld
figures (rank comparison over the rationals, computed here independently of
``service.suppression``).
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from service.suppression import SMALL_MAX, SMALL_MIN, Table, determined, suppress

pytestmark = pytest.mark.unit

# Small counts are the interesting ones; zeros and large counts around them.
counts = st.one_of(st.integers(0, 0), st.integers(1, 10), st.integers(11, 40),
                   st.integers(41, 500))


@st.composite
def tables(draw) -> Table:
    m = draw(st.integers(1, 6))
    n = draw(st.integers(1, 5))
    cells = [[draw(counts) for _ in range(n)] for _ in range(m)]
    return Table([f'r{r}' for r in range(m)], [f'c{c}' for c in range(n)], cells)


def _rank(rows: list[list[Fraction]]) -> int:
    rows = [list(row) for row in rows if any(row)]
    rank, width = 0, len(rows[0]) if rows else 0
    for column in range(width):
        pivot = next((r for r in range(rank, len(rows)) if rows[r][column]), None)
        if pivot is None:
            continue
        rows[rank], rows[pivot] = rows[pivot], rows[rank]
        for r in range(rank + 1, len(rows)):
            if rows[r][column]:
                factor = rows[r][column] / rows[rank][column]
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[rank])]
        rank += 1
    return rank


def solvable(table: Table, hidden: set) -> set:
    """Withheld figures an attacker can compute exactly from the published ones."""
    unknowns = sorted(hidden)
    system = [[Fraction(relation.get(p, 0)) for p in unknowns] for relation in table.relations()]
    base = _rank(system)
    found = set()
    for i, position in enumerate(unknowns):
        unit = [Fraction(int(j == i)) for j in range(len(unknowns))]
        if _rank([*system, unit]) == base:
            found.add(position)
    return found


@settings(max_examples=300, deadline=None)
@given(table=tables())
def test_no_published_figure_is_small_and_no_withheld_figure_can_be_solved(table):
    hidden = suppress(table)
    for position in table.positions():
        if position not in hidden:
            assert not SMALL_MIN <= table.value(position) <= SMALL_MAX, position
    recoverable = solvable(table, hidden)
    leaked = [p for p in recoverable if SMALL_MIN <= table.value(p) <= SMALL_MAX]
    assert not leaked, (table, hidden, leaked)
    # Secondary suppressions must not leak either: a recovered secondary
    # figure would give back the primary one beside it.
    assert not recoverable, (table, hidden, recoverable)


@settings(max_examples=100, deadline=None)
@given(table=tables())
def test_the_internal_solver_agrees_with_the_attackers(table):
    hidden = {p for p in table.positions() if table.value(p) % 3 == 0}
    assert determined(table, hidden) == solvable(table, hidden)


def test_a_lone_small_cell_is_exactly_what_an_attacker_would_solve_for():
    table = Table(['a', 'b'], ['x', 'y'], [[4, 30], [25, 40]])
    primary = {('cell', 0, 0), ('row', 0)}
    # With only the small cell and its row total withheld, the column
    # total gives the cell back: 29 - 25 = 4.
    assert ('cell', 0, 0) in solvable(table, primary)
    hidden = suppress(table)
    assert ('cell', 0, 0) in hidden
    assert not solvable(table, hidden)


def test_a_one_way_table_hides_two_cells_when_one_is_small():
    table = Table(['a', 'b', 'c'], ['count'], [[3], [50], [60]])
    hidden = suppress(table)
    assert ('cell', 0, 0) in hidden
    assert len({p for p in hidden if p[0] == 'cell'}) >= 2
    assert not solvable(table, hidden)
