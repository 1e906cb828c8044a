"""Where a build's log lines go, one at a time.

The pipeline hands one to every part that says something in the log: the source fetch,
the engine's build and push streams, BuildKit's progress, the publisher and the retries.
"""

from __future__ import annotations

from collections.abc import Callable

LineSink = Callable[[str], None]
