"""At start, one line on the Docker engine builds will use: which, and its version; or
where it was looked for and why it did not answer.

Only a warning: a worker keeps starting, so an engine that comes up later (dockerd started
after hookbuild, or restarted) still gets the builds, as an engine that goes away and comes
back does; until then each build fails naming the engine and the reason.
"""

from __future__ import annotations

from collections.abc import Mapping

from builder.build.backend import connect_engine
from builder.engineaddress import describe_address
from builder.errors import EngineError, EngineUnreachable
from runners.servicelog import get_logger

log = get_logger(__name__)
PROBE_SECONDS = 5


def announce_engine(environ: Mapping[str, str]) -> bool:
    """Log which engine `environ` names and whether it answers; True when it does."""
    where = describe_address(environ)
    try:
        engine = connect_engine(environ, timeout=PROBE_SECONDS)
    except EngineUnreachable as exc:
        log.warning(
            f"no Docker engine answers at {where}: {exc.reason}; builds fail until one does"
        )
        return False
    except EngineError as exc:
        log.warning(f"the Docker engine at {where} refused: {exc}; builds fail until it answers")
        return False
    try:
        what = engine.describe()
    finally:
        engine.close()
    log.info(f"Docker engine at {where}: {what}")
    return True
