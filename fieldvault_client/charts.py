"""SVG charts of report tables, for a supervisor's funder report (no plotting library).

A grouped bar chart: one group per period, one bar per column. Withheld
(suppressed) figures are drawn as a hatched stub marked ``S``, never as a
value. Labels are escaped; they are codes and periods, never identifying.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

__all__ = ['report_svg']

_PALETTE = ('#1b6ca8', '#f39c12', '#27ae60', '#8e44ad', '#c0392b', '#16a085', '#7f8c8d',
            '#d35400')


def report_svg(report: dict[str, Any], *, title: str | None = None, width: int = 720,
               height: int = 360) -> str:
    """Return a grouped bar chart of a report table as an SVG document."""
    rows, columns, cells = report['rows'], report['columns'], report['cells']
    counts = (report.get('cases') or {}).get('cells') or cells
    left, right, top, bottom = 56, 16, 40, 64
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([value for row in cells for value in row if value is not None] or [1])
    group_w = plot_w / max(len(rows), 1)
    bar_w = max(2.0, (group_w * 0.8) / max(len(columns), 1))
    title = title or f'{report["measure"]} by {report["period"]}'
    if report.get('unit'):
        title += f' (median, {report["unit"]})'
    if report.get('suppressed'):
        title += (' (counts 1-10 and figures that would reveal them withheld: S)'
                  if not report.get('unit') else
                  ' (medians over withheld counts withheld: S)')
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        '<defs><pattern id="withheld" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="3" height="6" fill="#bbb"/></pattern></defs>',
        f'<text x="{left}" y="20" font-size="13">{escape(title)}</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        'stroke="#333"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#333"/>',
    ]
    for step in range(5):
        value = peak * step / 4
        y = top + plot_h - plot_h * step / 4
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{value:.0f}</text>')
    for r, label in enumerate(rows):
        x0 = left + r * group_w + group_w * 0.1
        for c, _column in enumerate(columns):
            value = cells[r][c]
            x = x0 + c * bar_w
            if value is None and counts[r][c] == 0:
                continue  # a median with no case behind it: nothing to draw
            if value is None:
                stub = min(12.0, plot_h)
                parts.append(f'<rect x="{x:.1f}" y="{top + plot_h - stub:.1f}" '
                             f'width="{bar_w:.1f}" height="{stub:.1f}" fill="url(#withheld)"/>')
                parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h - stub - 2:.1f}" '
                             'text-anchor="middle">S</text>')
                continue
            bar_h = plot_h * value / peak
            parts.append(f'<rect x="{x:.1f}" y="{top + plot_h - bar_h:.1f}" width="{bar_w:.1f}" '
                         f'height="{bar_h:.1f}" fill="{_PALETTE[c % len(_PALETTE)]}">'
                         f'<title>{escape(str(value))}</title></rect>')
        parts.append(f'<text x="{left + r * group_w + group_w / 2:.1f}" '
                     f'y="{top + plot_h + 16}" text-anchor="middle">{escape(label)}</text>')
    if len(columns) > 1:
        for c, column in enumerate(columns):
            x = left + (c % 6) * 110
            y = height - 28 + (c // 6) * 14
            parts.append(f'<rect x="{x}" y="{y - 9}" width="10" height="10" '
                         f'fill="{_PALETTE[c % len(_PALETTE)]}"/>')
            parts.append(f'<text x="{x + 14}" y="{y}">{escape(column)}</text>')
    parts.append('</svg>')
    return '\n'.join(parts) + '\n'
