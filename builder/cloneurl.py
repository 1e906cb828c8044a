"""Which clone URLs a repository may be fetched from, and with which git transport.

A config's `clone_url` is trusted as written. A payload's is not, even when signed: it is
used only when its scheme is one the repository allows (`clone_schemes`, https by default)
and its host and port one of the repository's forge hosts (`clone_hosts`, else the hosted
forge's own), so a payload can neither name a git option, a local path or another
transport, nor send the clone token, or a probe, to another host. Pure functions.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048
SCHEMES = ("https", "http", "ssh", "git")
DEFAULT_PORTS = {"https": 443, "http": 80, "ssh": 22, "git": 9418}

_UNPRINTABLE = re.compile(r"[\x00-\x20\x7f]")
# git's own spelling of ssh as a URL scheme.
_SSH_ALIASES = {"git+ssh": "ssh", "ssh+git": "ssh"}
# `user@host:path`: git's scp-like ssh syntax (a colon before any slash).
_SCP_LIKE = re.compile(r"^[^/:]+:(?!//)")


def host_key(host: str, port: int) -> str:
    """`host:port` as `clone_hosts` entries compare: the host in lower case, an IPv6
    address in brackets."""
    host = host.lower()
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def clone_host_entry(entry: str) -> str:
    """A `clone_hosts` entry (`git.example.com`, `git.example.com:8443`, `[::1]:9418`)
    as `host` or `host:port`, checked; raises ValueError."""
    if not entry or _UNPRINTABLE.search(entry) or any(c in entry for c in "/@?#\\"):
        raise ValueError(f"{entry[:80]!r} is not a host or host:port")
    try:
        parsed = urlsplit(f"//{entry}")
        port = parsed.port
    except ValueError as exc:
        raise ValueError(f"{entry[:80]!r} is not a host or host:port ({exc})") from None
    if not parsed.hostname:
        raise ValueError(f"{entry[:80]!r} names no host")
    return parsed.hostname if port is None else host_key(parsed.hostname, port)


def transport_of(url: str) -> str:
    """The git transport a URL uses, as `GIT_ALLOW_PROTOCOL` names it: the URL's scheme,
    `ssh` for `host:path`, `file` for a path."""
    scheme, sep, _ = url.partition("://")
    if sep and scheme:
        scheme = scheme.lower()
        return _SSH_ALIASES.get(scheme, scheme)
    if "::" in url:
        return url.split("::", 1)[0].lower()  # `transport::address`: git's remote helpers
    if _SCP_LIKE.match(url):
        return "ssh"
    return "file"


def url_problem(url: str, hosts: Collection[str], schemes: Collection[str]) -> str | None:
    """Why a payload's clone URL may not be fetched; None when it may. `hosts`: entries
    as `clone_host_entry` gives them (a bare host means the scheme's default port)."""
    if not hosts:
        return "no forge host is configured for payload clone URLs: set clone_hosts or clone_url"
    if len(url) > MAX_URL_LENGTH:
        return f"the clone URL is longer than {MAX_URL_LENGTH} characters"
    shown = url[:120]
    if _UNPRINTABLE.search(url) or url.startswith("-"):
        return f"the clone URL {shown!r} is not a URL"
    try:
        parsed = urlsplit(url)
        port = parsed.port
    except ValueError:
        return f"the clone URL {shown!r} is not a URL"
    scheme = _SSH_ALIASES.get(parsed.scheme, parsed.scheme)
    if "://" not in url or scheme not in SCHEMES:
        return f"the clone URL {shown!r} is not an {'/'.join(SCHEMES)} URL"
    if scheme not in schemes:
        return (
            f"the clone URL {shown!r} uses {scheme}, which clone_schemes does not allow "
            f"(allowed: {', '.join(schemes)})"
        )
    if "@" in parsed.netloc and scheme != "ssh":
        return f"the clone URL {shown!r} carries a user name or password"
    if not parsed.hostname:
        return f"the clone URL {shown!r} names no host"
    actual = host_key(parsed.hostname, port or DEFAULT_PORTS[scheme])
    default = port is None or port == DEFAULT_PORTS[scheme]
    if actual not in hosts and not (default and parsed.hostname.lower() in hosts):
        return (
            f"the clone URL {shown!r} is not on the repository's forge host "
            f"({', '.join(sorted(hosts))}): set clone_hosts or clone_url"
        )
    return None
