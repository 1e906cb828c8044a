"""The dashboard: server-rendered pages over the same records the API serves."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.templating import Jinja2Templates

from builder import logpatterns
from builder.config import Config
from builder.printable import printable, printable_lines, without_colours
from runners.deliverylog import DeliveryLog, with_build_outcomes
from runners.queue import BuildQueue
from runners.records import BuildQuery, BuildStatus
from webhooks.api import MAX_OFFSET, build_query
from webhooks.params import query_int


def _printable(value: object) -> object:
    """Every `{{ value }}` of every page (Jinja's `finalize`): Jinja escapes HTML, not
    control characters, and a payload's names, a commit message or a build's output may
    hold them (`ESC]0;...BEL`, U+202E); a build's colours (SGR) cannot show on a page and
    are dropped. Markup (`tojson`, our own HTML) is ours already."""
    if isinstance(value, str) and not isinstance(value, Markup) and not value.isprintable():
        return printable_lines(without_colours(value))
    return value


def _ref_breaks(value: str) -> Markup:
    """A ref that may wrap after each `/` (`refs/heads/feature/x` on a phone), and not in
    the middle of a name: style.css keeps `code` from breaking anywhere else while the
    parts fit. Each part is escaped and made printable as `{{ value }}` would be."""
    return Markup("/<wbr>").join(str(_printable(part)) for part in value.split("/"))


TEMPLATES = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
TEMPLATES.env.finalize = _printable  # read as each template is compiled, on first use
TEMPLATES.env.filters["ref_breaks"] = _ref_breaks
STATIC = Path(__file__).with_name("static")
PAGE = 50
RECENT_WINDOW = 2000  # builds the repositories page looks through
LOG_TAIL = 2000  # log lines a build page shows


class Dashboard:
    def __init__(self, config: Config, queue: BuildQueue, deliveries: DeliveryLog) -> None:
        self.config = config
        self.queue = queue
        self.store = queue.store
        self.deliveries = deliveries

    async def repositories(self, request: Request) -> Response:
        def gather() -> list[dict[str, Any]]:
            # One bounded window of recent builds, grouped: not one query per repository,
            # which a config of thousands of repositories would make a page view cost.
            last: dict[str, dict[str, dict[str, Any]]] = {}
            for record in self.store.recent(RECENT_WINDOW):  # newest first
                refs = last.setdefault(record.repository, {})
                if record.ref not in refs:
                    refs[record.ref] = self.queue.describe(record)
            return [
                {"name": r.name, "forge": r.forge, "refs": list(last.get(r.name, {}).values())}
                for r in self.config.repositories
            ]

        repositories = await run_in_threadpool(gather)
        return TEMPLATES.TemplateResponse(
            request, "repositories.html", {"repositories": repositories}
        )

    async def builds(self, request: Request) -> Response:
        params = request.query_params
        filters = {k: params.get(k) or None for k in ("repository", "status", "ref")}
        offset = query_int(params, "offset", 0, 0, MAX_OFFSET)

        try:
            query = build_query(params)
        except ValueError:
            query = BuildQuery(repository=filters["repository"], ref=filters["ref"])
            filters["status"] = None

        def matching() -> list[dict[str, Any]]:
            return [self.queue.describe(r) for r in self.store.find(query, PAGE, offset)]

        builds = await run_in_threadpool(matching)
        link_query = urlencode({k: v for k, v in filters.items() if v})
        return TEMPLATES.TemplateResponse(
            request,
            "builds.html",
            {
                "builds": builds,
                "filters": filters,
                "statuses": [s.value for s in BuildStatus],
                "repository_names": [r.name for r in self.config.repositories],
                "offset": offset,
                "limit": PAGE,
                "query": link_query,
            },
        )

    async def build(self, request: Request) -> Response:
        build_id = request.path_params["build_id"]
        record = await run_in_threadpool(self.store.get, build_id)
        if record is None:
            return HTMLResponse(f"<p>No build {escape(printable(build_id))}.</p>", status_code=404)
        # The log's tail only: a page holds at most LOG_TAIL lines, however long the log;
        # the rest is a link away (the API streams it whole).
        total = await run_in_threadpool(self.store.log_length, build_id)
        first = max(0, total - LOG_TAIL)
        lines = await run_in_threadpool(self.store.log_lines, build_id, first)
        return TEMPLATES.TemplateResponse(
            request,
            "build.html",
            {
                "build": self.queue.describe(record),
                "lines": lines,
                "first_line": first,
                "finished": record.status.finished,
                "patterns": logpatterns.for_javascript(),
            },
        )

    async def deliveries_page(self, request: Request) -> Response:
        events = await run_in_threadpool(
            lambda: with_build_outcomes(self.deliveries.recent(100), self.store)
        )
        return TEMPLATES.TemplateResponse(request, "deliveries.html", {"events": events})
