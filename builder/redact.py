"""Keep credentials out of logs, build records and error messages."""

from __future__ import annotations

import re

# userinfo in a URL: scheme://user:secret@host -> scheme://***@host
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Return `text` with URL credentials and every given secret replaced by `***`."""
    text = _URL_USERINFO.sub(r"\g<scheme>***@", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
