"""`GET /badge/{repository}/{ref}.svg`: the last build's status, as a badge for READMEs."""

from __future__ import annotations

from html import escape

COLOURS = {
    "succeeded": "#2ea043",
    "failed": "#d73a49",
    "running": "#0969da",
    "queued": "#8c959f",
    "cancelled": "#6e7781",
    "skipped": "#6e7781",
    "unknown": "#9f9f9f",
}
# Forges' image proxies (GitHub's camo) cache unless told not to.
HEADERS = {"Cache-Control": "no-cache, no-store, must-revalidate, max-age=0", "Expires": "0"}


def _width(text: str) -> int:
    return 7 * len(text) + 12  # Verdana 11px, close enough for short words


def render(label: str, status: str) -> str:
    left, right = _width(label), _width(status)
    colour = COLOURS.get(status, COLOURS["unknown"])
    label, status = escape(label), escape(status)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + right}" height="20" role="img" '
        f'aria-label="{label}: {status}"><title>{label}: {status}</title>'
        f'<rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{colour}"/>'
        '<g fill="#fff" text-anchor="middle" font-size="11" '
        'font-family="Verdana,DejaVu Sans,sans-serif">'
        f'<text x="{left / 2}" y="14">{label}</text>'
        f'<text x="{left + right / 2}" y="14">{status}</text>'
        "</g></svg>"
    )
