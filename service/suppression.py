"""Small-cell suppression of aggregate tables, so no published figure re-identifies a youth.

A table is one-way (cells and a total) or two-way (cells, row totals, column
totals and a grand total). Every figure from 1 to 10, cell or total, is
suppressed (primary suppression). Then, while any suppressed figure can be
solved for exactly from the published ones through the table's additive
relations (each row and column adds up to its total, the totals to the grand
total), one more figure is suppressed on a line through it (secondary
suppression). "Solved for" is exact linear algebra over the rationals
(``determined``), the same test the property test applies from outside.

Pure code: no I/O, no falcon.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction

__all__ = ['SMALL_MAX', 'SMALL_MIN', 'Table', 'determined', 'suppress']

#: Published counts from SMALL_MIN to SMALL_MAX could identify a youth.
SMALL_MIN, SMALL_MAX = 1, 10

#: A figure's position: ('cell', r, c), ('row', r), ('col', c) or ('total',).
Position = tuple


@dataclasses.dataclass
class Table:
    """A table of counts with its margins.

    Attributes:
        rows: Row labels.
        cols: Column labels (one column, ``['count']``, for a one-way table).
        cells: ``cells[r][c]`` counts.
    """

    rows: list[str]
    cols: list[str]
    cells: list[list[int]]

    def positions(self) -> list[Position]:
        """Return every figure's position: cells, row totals, column totals, grand total."""
        found: list[Position] = [('cell', r, c) for r in range(len(self.rows))
                                 for c in range(len(self.cols))]
        if len(self.cols) > 1:
            found += [('row', r) for r in range(len(self.rows))]
        found += [('col', c) for c in range(len(self.cols))]
        if len(self.cols) > 1:
            found.append(('total',))
        return found

    def value(self, position: Position) -> int:
        """Return the figure at ``position``."""
        kind = position[0]
        if kind == 'cell':
            return self.cells[position[1]][position[2]]
        if kind == 'row':
            return sum(self.cells[position[1]])
        if kind == 'col':
            return sum(row[position[1]] for row in self.cells)
        return sum(map(sum, self.cells))

    def relations(self) -> list[dict[Position, int]]:
        """Return the additive relations: coefficient maps that sum to zero."""
        m, n = len(self.rows), len(self.cols)
        found: list[dict[Position, int]] = []
        if n > 1:
            for r in range(m):
                found.append({**{('cell', r, c): 1 for c in range(n)}, ('row', r): -1})
        for c in range(n):
            found.append({**{('cell', r, c): 1 for r in range(m)}, ('col', c): -1})
        if n > 1:
            found.append({**{('row', r): 1 for r in range(m)}, ('total',): -1})
            found.append({**{('col', c): 1 for c in range(n)}, ('total',): -1})
        return found


def determined(table: Table, hidden: set[Position]) -> set[Position]:
    """Return the hidden figures the published figures and relations fix exactly.

    Gaussian elimination over the rationals of the relations restricted to
    the hidden figures (published figures move to the right-hand side): a
    hidden figure is fixed when a row of the reduced system names it alone.
    """
    unknowns = sorted(hidden)
    index = {position: i for i, position in enumerate(unknowns)}
    matrix = []
    for relation in table.relations():
        row = [Fraction(0)] * len(unknowns)
        for position, coefficient in relation.items():
            if position in index:
                row[index[position]] += coefficient
        if any(row):
            matrix.append(row)
    pivot_row, pivots = 0, []
    for column in range(len(unknowns)):
        chosen = next((r for r in range(pivot_row, len(matrix)) if matrix[r][column]), None)
        if chosen is None:
            continue
        matrix[pivot_row], matrix[chosen] = matrix[chosen], matrix[pivot_row]
        lead = matrix[pivot_row][column]
        matrix[pivot_row] = [value / lead for value in matrix[pivot_row]]
        for r in range(len(matrix)):
            if r != pivot_row and matrix[r][column]:
                factor = matrix[r][column]
                matrix[r] = [a - factor * b for a, b in zip(matrix[r], matrix[pivot_row])]
        pivots.append((pivot_row, column))
        pivot_row += 1
    fixed = set()
    for r, column in pivots:
        if all(not value for i, value in enumerate(matrix[r]) if i != column):
            fixed.add(unknowns[column])
    return fixed


def _lines_through(table: Table, position: Position) -> list[list[Position]]:
    return [[p for p in relation if p != position] for relation in table.relations()
            if position in relation]


def suppress(table: Table) -> set[Position]:
    """Return the positions to withhold so no small figure can be recovered.

    Primary: every figure from ``SMALL_MIN`` to ``SMALL_MAX``. Secondary:
    while a withheld figure is fixed by the published ones, withhold the
    smallest published figure on a line through it (a non-zero one first,
    as withholding a zero hides less).
    """
    hidden = {position for position in table.positions()
              if SMALL_MIN <= table.value(position) <= SMALL_MAX}
    everything = set(table.positions())
    while hidden and hidden != everything:
        exposed = sorted(determined(table, hidden))
        if not exposed:
            break
        candidates = [p for line in _lines_through(table, exposed[0]) for p in line
                      if p not in hidden]
        if not candidates:
            candidates = sorted(everything - hidden)
        choice = min(candidates, key=lambda p: (table.value(p) == 0, table.value(p), p))
        hidden.add(choice)
    return hidden
