"""Where a build's code comes from: payload clone URLs, refs and commit ids, and mirrors.

A signed payload is still untrusted input: its clone URL may name a git option, a local
path, another host or another repository; its ref may hold a NUL byte or `..`. Real git
(daemon and smart HTTP), real Redis, a real worker and engine where a build is involved.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from starlette.testclient import TestClient

from builder.build.source import MirrorCache
from builder.config import Config
from builder.plan import BuildPlan
from runners.deliverylog import DeliveryLog
from runners.queue import QUEUE_NAME, BuildQueue
from runners.records import BuildStatus, BuildStore
from tests import configs
from tests.builds import work
from tests.configs import parse_config
from tests.conftest import MakeRepo, github_push_body, local_clone_settings
from tests.git_http import GitHttpServer
from tests.helpers import DOCKERFILE, SECRET, make_config, post_github_push
from tests.payloads import bitbucket_server, gitea, gitlab
from tests.registry import RegistryReader
from tests.signing import forge_headers
from webhooks.app import create_app

TOKEN = "clone-token-that-must-stay-home-42"
LATEST = [{"branch": "main", "tags": ["latest"]}]
ANY_BRANCH_LATEST = [{"branch": "/.*/", "tags": ["latest"]}]


def queued(redis: Redis) -> int:
    return int(redis.llen(f"rq:queue:{QUEUE_NAME}"))


def injection(marker: Path) -> str:
    return f"--upload-pack=touch {marker};true"


def plan_of(config: Config, repository: str, clone_url: str, sha: str) -> BuildPlan:
    """A plan as an earlier version stored it, with whatever clone URL it was given."""
    image = config.repositories[0].all_images[0].name
    return BuildPlan(
        forge="github",
        repository=repository,
        clone_url=clone_url,
        ref="refs/heads/main",
        sha=sha,
        image=image,
        tags=("latest",),
    )


def token_config(tmp_path: Path) -> Config:
    """acme/web with a clone token, whose payloads may name the git daemon's host:port
    over git or http."""
    entry = configs.repository(
        "acme/web",
        "127.0.0.1:5000/acme/web",
        secret=SECRET,
        extra=local_clone_settings("git, http"),
        clone_token=TOKEN,
        rules=LATEST,
    )
    return configs.config(tmp_path / "state", [entry], retries={"transient": 1})


class CaptureServer:
    """An HTTP server on a loopback port that records every Authorization header and
    answers 404 (or redirects to `redirect_to`, keeping the path)."""

    def __init__(self, redirect_to: str | None = None) -> None:
        self.authorizations: list[str] = []
        self.requests = 0
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                capture.requests += 1
                given = self.headers.get("Authorization")
                if given:
                    capture.authorizations.append(given)
                if redirect_to:
                    self.send_response(301)
                    self.send_header("Location", redirect_to + self.path)
                else:
                    self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_GET

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> CaptureServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def capture() -> Iterator[CaptureServer]:
    with CaptureServer() as server:
        yield server


# --- #1: option injection -------------------------------------------------------------


@pytest.mark.docker
def test_upload_pack_clone_url_in_a_github_push_runs_nothing(
    redis: Redis, docker_host: str, make_repo: MakeRepo, tmp_path: Path
) -> None:
    """#1: a signed GitHub push whose clone URL is a git option runs nothing, and says why."""
    repo = make_repo()
    sha = repo.commit({"Dockerfile": DOCKERFILE, "version.txt": "x\n"})
    repo.push("main")
    config = make_config(tmp_path / "state", "127.0.0.1:5000")
    marker = tmp_path / "pwned"
    client = TestClient(create_app(config, redis))

    status, answer = post_github_push(
        client, "acme/web", "refs/heads/main", sha, injection(marker), delivery="inject-1"
    )
    work(config, redis, docker_host, name="test-worker")

    assert not marker.exists()
    assert status == 200, answer
    assert answer["builds"] == []
    assert "refused" in answer["skipped"] and "--upload-pack" in answer["skipped"]
    [delivery] = DeliveryLog(redis).recent()
    assert delivery["outcome"] == "skipped" and "refused" in delivery["reason"]


@pytest.mark.parametrize(
    ("forge", "name", "make_payload"),
    [
        ("gitlab", "group/sub/app", gitlab),
        ("bitbucket-server", "PROJ/app", bitbucket_server),
        ("gitea", "org/app", gitea),
    ],
)
def test_upload_pack_clone_url_from_other_forges_queues_nothing(
    forge: str, name: str, make_payload: Any, redis: Redis, tmp_path: Path
) -> None:
    """#1: GitLab's git_http_url, Bitbucket Server's clone link and Gitea's clone_url
    naming a git option are refused at intake with the reason; nothing is queued."""
    entry = configs.repository(
        name,
        "127.0.0.1:5000/x",
        forge=forge,
        secret=SECRET,
        extra=local_clone_settings(),
        rules=LATEST,
    )
    config = configs.config(tmp_path, [entry])
    event, payload = make_payload(name, injection(tmp_path / "pwned"), "a" * 40)
    body = json.dumps(payload).encode()

    response = TestClient(create_app(config, redis)).post(
        f"/hooks/{forge}", content=body, headers=forge_headers(forge, event, body, SECRET, "d1")
    )

    assert response.status_code == 200, response.text
    assert "refused" in response.json()["skipped"]
    assert queued(redis) == 0
    assert BuildStore(redis).recent() == []


@pytest.mark.docker
def test_a_stored_plan_with_an_option_as_clone_url_runs_nothing(
    redis: Redis, docker_host: str, make_repo: MakeRepo, tmp_path: Path
) -> None:
    """#1: a plan stored before the fix (or rebuilt) whose clone URL is a git option
    fails with the reason, and runs nothing."""
    repo = make_repo()
    sha = repo.commit({"Dockerfile": DOCKERFILE, "version.txt": "x\n"})
    repo.push("main")
    config = make_config(tmp_path / "state", "127.0.0.1:5000")
    marker = tmp_path / "pwned"
    store = BuildStore(redis)

    [build] = BuildQueue.for_config(redis, config).submit(
        [plan_of(config, "acme/web", injection(marker), sha)]
    )
    work(config, redis, docker_host, name="test-worker")

    assert not marker.exists()
    record = store.get(build)
    assert record is not None and record.status == BuildStatus.FAILED
    assert "not fetching" in (record.error or "") and "--upload-pack" in (record.error or "")


def test_the_mirror_reads_an_option_as_clone_url_as_a_url(
    make_repo: MakeRepo, tmp_path: Path
) -> None:
    """#1: git gets `--` before the URL: an option-like clone URL reaches no git option,
    even where nothing checked it before."""
    repo = make_repo()
    sha = repo.commit({"Dockerfile": DOCKERFILE})
    repo.push("main")
    marker = tmp_path / "pwned"
    mirrors = MirrorCache(tmp_path / "mirrors")
    mirrors.fetch(repo.url, "refs/heads/main", sha)  # a mirror exists: start_fetch runs too

    with pytest.raises(Exception, match="--upload-pack"):
        mirrors.fetch(injection(marker), "refs/heads/x", "b" * 40)
    process = mirrors.start_fetch(injection(marker), "refs/heads/x", "b" * 40)
    if process is not None:
        process.wait(timeout=30)
    assert mirrors.changed_files(injection(marker), "0" * 40, sha, "main") is None

    assert not marker.exists()


# --- #3: clone URLs are trusted ---------------------------------------------------------


def test_a_payload_url_on_another_port_gets_no_token(
    redis: Redis, git_daemon: tuple[Path, int], tmp_path: Path, capture: CaptureServer
) -> None:
    """#3: a signed push naming another host:port is refused at intake, with the reason."""
    config = token_config(tmp_path)
    client = TestClient(create_app(config, redis))
    url = f"http://{capture.address}/acme/web.git"

    status, answer = post_github_push(
        client, "acme/web", "refs/heads/main", "c" * 40, url, delivery="elsewhere"
    )

    assert status == 200 and answer["builds"] == []
    assert "not on the repository's forge host" in answer["skipped"]
    assert queued(redis) == 0
    assert capture.requests == 0 and capture.authorizations == []


@pytest.mark.docker
def test_a_stored_plan_for_another_host_sends_no_token(
    redis: Redis,
    docker_host: str,
    git_daemon: tuple[Path, int],
    tmp_path: Path,
    capture: CaptureServer,
) -> None:
    """#3: a plan stored with a URL on another host (another loopback port) fails at the
    worker before git runs: the capture server never sees the clone token."""
    config = token_config(tmp_path)
    url = f"http://{capture.address}/acme/web.git"
    [build] = BuildQueue.for_config(redis, config).submit(
        [plan_of(config, "acme/web", url, "c" * 40)]
    )

    work(config, redis, docker_host, name="test-worker")

    record = BuildStore(redis).get(build)
    assert record is not None and record.status == BuildStatus.FAILED
    assert "not on the repository's forge host" in (record.error or "")
    assert capture.requests == 0 and capture.authorizations == []


def test_the_configured_host_cannot_redirect_the_token_elsewhere(
    tmp_path: Path, capture: CaptureServer
) -> None:
    """#3: with a clone token, git follows no redirect: a configured host that redirects
    to another port does not pass the token on."""
    with CaptureServer(redirect_to=f"http://{capture.address}") as forge:
        mirrors = MirrorCache(tmp_path / "mirrors")
        with pytest.raises(Exception, match="fetching"):
            mirrors.fetch(
                f"http://{forge.address}/acme/web.git",
                "refs/heads/main",
                "d" * 40,
                ("x-access-token", TOKEN),
            )
        assert forge.requests > 0  # the configured host was asked...
    assert capture.requests == 0 and capture.authorizations == []  # ...and nothing else


@pytest.mark.parametrize("url_of", ["file://{bare}", "{bare}", "ext::sh -c touch% {bare}"])
def test_a_payload_url_to_the_workers_disk_is_refused(
    url_of: str, redis: Redis, make_repo: MakeRepo, tmp_path: Path
) -> None:
    """#3: a payload's `file://` URL, local path or other transport is refused at intake."""
    repo = make_repo()
    sha = repo.commit({"Dockerfile": DOCKERFILE})
    repo.push("main")
    config = make_config(tmp_path / "state", "127.0.0.1:5000")
    client = TestClient(create_app(config, redis))

    status, answer = post_github_push(
        client, "acme/web", "refs/heads/main", sha, url_of.format(bare=repo.bare), delivery="disk"
    )

    assert status == 200 and answer["builds"] == []
    assert "refused" in answer["skipped"]
    assert queued(redis) == 0


@pytest.mark.docker
def test_two_repositories_cannot_read_each_others_commits_through_the_mirror(
    redis: Redis,
    docker_host: str,
    registry: RegistryReader,
    make_repo: MakeRepo,
    tmp_path: Path,
) -> None:
    """#3: a repository without a token, given a private repository's URL and sha, does
    not build that commit from the mirror the private repository's build left."""
    private = make_repo("acme/private")
    sha = private.commit({"Dockerfile": DOCKERFILE, "version.txt": "secret sauce\n"})
    private.push("main")
    with GitHttpServer(private.bare.parent, ("x-access-token", TOKEN)) as forge:
        url = forge.url(private.bare.name)
        private_entry = configs.repository(
            "acme/private",
            f"{registry.host}/iso/private",
            secret=SECRET,
            clone_url=url,
            clone_token=TOKEN,
            rules=LATEST,
        )
        public_entry = configs.repository(
            "acme/public",
            f"{registry.host}/iso/public",
            secret=SECRET,
            clone_hosts=[f"127.0.0.1:{forge.port}"],
            clone_schemes=["http"],
            rules=LATEST,
        )
        config = configs.config(
            tmp_path / "state",
            [private_entry, public_entry],
            retries={"transient": 1},
            registries=[{"host": registry.host, "insecure": True}],
        )
        client = TestClient(create_app(config, redis))
        store = BuildStore(redis)
        builds: list[str] = []
        for repository, delivery in (("acme/private", "p-1"), ("acme/public", "p-2")):
            status, answer = post_github_push(
                client, repository, "refs/heads/main", sha, url, delivery=delivery, secret=SECRET
            )
            assert status == 202, answer
            work(config, redis, docker_host, name="test-worker")
            [build] = answer["builds"]
            builds.append(build)
        private_build, public_build = store.get_many(builds)
        assert private_build.status == BuildStatus.SUCCEEDED, store.log_lines(builds[0])
        # The public repository's own fetch, without the private one's token, is refused.
        assert public_build.status == BuildStatus.FAILED, store.log_lines(builds[1])
        error = public_build.error or ""
        assert "401" in error or "Authentication" in error, error
    assert registry.tags("iso/public") == []


# --- #8 (intake half): refs and commit ids ------------------------------------------------

BAD_REFS = [
    "refs/heads/a\u0000b",
    "refs/heads/../x",
    "refs/heads/a..b",
    "refs/heads/a\u001b]0;title\u0007b",
    "refs/heads/tab\there",
    "-x",
    "--upload-pack=true",
    "refs/heads/" + "a" * 600,
    "refs/heads/x.lock",
    "refs/heads/a@{1}",
    "refs/heads/",
]


@pytest.mark.parametrize("ref", BAD_REFS, ids=range(len(BAD_REFS)))
@pytest.mark.parametrize("forge", ["github", "gitea"])
def test_a_bad_ref_is_refused_at_intake_and_nothing_is_queued(
    forge: str, ref: str, redis: Redis, tmp_path: Path
) -> None:
    """#8: a signed push whose ref git would refuse (NUL, `..`, control characters, an
    option, over-long) is answered 400 with the reason, and nothing is queued."""
    name = "acme/web"
    entry = configs.repository(
        name,
        "127.0.0.1:5000/x",
        forge=forge,
        secret=SECRET,
        clone_url="https://git.example.com/acme/web.git",
        rules=ANY_BRANCH_LATEST,
    )
    config = configs.config(tmp_path, [entry])
    if forge == "github":
        payload = json.loads(github_push_body(name, ref, "e" * 40, "https://github.com/x.git"))
        event = "push"
    else:
        event, payload = gitea(name, "https://git.example.com/acme/web.git", "e" * 40)
        payload["ref"] = ref
    body = json.dumps(payload).encode()

    response = TestClient(create_app(config, redis)).post(
        f"/hooks/{forge}", content=body, headers=forge_headers(forge, event, body, SECRET, "r1")
    )

    assert response.status_code == 400, response.text
    assert "ref" in response.json()["error"]
    assert "\u0000" not in response.text and "\u001b" not in response.json()["error"]
    assert queued(redis) == 0
    assert BuildStore(redis).recent() == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("after", "--output=/tmp/x"), ("after", "E" * 40), ("before", "HEAD~1"), ("after", "abc")],
)
def test_a_commit_id_that_is_not_full_hex_is_refused_at_intake(
    field: str, value: str, redis: Redis, tmp_path: Path
) -> None:
    """#8: `after` and `before` must be full lowercase commit ids (40 or 64 hex digits)."""
    config = make_config(
        tmp_path / "state", "127.0.0.1:5000", extra_repo="    clone_url: git://127.0.0.1/x\n"
    )
    payload = json.loads(github_push_body("acme/web", "refs/heads/main", "f" * 40, "x"))
    payload[field] = value
    body = json.dumps(payload).encode()

    response = TestClient(create_app(config, redis)).post(
        "/hooks/github", content=body, headers=forge_headers("github", "push", body, SECRET, "s1")
    )

    assert response.status_code == 400, response.text
    assert "commit" in response.json()["error"]
    assert queued(redis) == 0


def test_a_bare_host_in_clone_hosts_means_the_default_port(tmp_path: Path) -> None:
    """#3: `clone_hosts: [git.example.com]` allows https://git.example.com/... only on
    443; another port, another scheme, a user name or a look-alike host are refused."""
    config = parse_config(
        "repositories:\n  - name: acme/web\n    forge: gitea\n    secret: s\n"
        "    clone_hosts: [git.example.com, '127.0.0.1:3000']\n"
        "    image: r/x\n    rules: [{branch: main}]\n",
        {},
    )
    repository = config.repositories[0]
    assert repository.clone_url_problem("https://git.example.com/acme/web.git") is None
    assert repository.clone_url_problem("https://GIT.example.com:443/acme/web.git") is None
    assert repository.clone_url_problem("https://127.0.0.1:3000/acme/web.git") is None
    for refused in (
        "https://git.example.com:8443/acme/web.git",
        "http://git.example.com/acme/web.git",
        "https://127.0.0.1/acme/web.git",
        "https://127.0.0.1:3001/acme/web.git",
        "https://evil@git.example.com/acme/web.git",
        "https://git.example.com.evil.test/acme/web.git",
        "git@git.example.com:acme/web.git",
        "https://[::1]:3000/acme/web.git",
    ):
        assert repository.clone_url_problem(refused), refused


def test_clone_settings_are_checked_in_the_config() -> None:
    """#3: `clone_hosts` entries are hosts, `clone_schemes` known transports, and a
    config clone_url is never read as an option."""
    from builder.errors import ConfigError

    for bad in (
        "clone_hosts: ['https://git.example.com']",
        "clone_hosts: ['git.example.com:99999']",
        "clone_schemes: [file]",
        "clone_url: '--upload-pack=x'",
    ):
        with pytest.raises(ConfigError):
            parse_config(
                "repositories:\n  - name: a/b\n    forge: gitea\n    secret: s\n"
                f"    {bad}\n    image: r/x\n    rules: [{{branch: main}}]\n",
                {},
            )


@pytest.mark.parametrize("ref", ["refs/heads/a\u0000b", "refs/heads/../x", "main\u001b[2J"])
def test_a_trigger_with_a_bad_ref_and_a_sha_is_refused(
    ref: str, redis: Redis, tmp_path: Path
) -> None:
    """#8: a trigger naming a sha (so no `ls-remote` checks the ref) and a ref git would
    refuse is answered 400 with the reason; nothing is queued."""
    entry = configs.repository(
        "acme/web",
        "127.0.0.1:5000/x",
        forge="gitea",
        secret=SECRET,
        clone_url="https://git.example.com/acme/web.git",
        trigger_token="trigger-token-123",
        rules=ANY_BRANCH_LATEST,
    )
    config = configs.config(tmp_path, [entry])
    client = TestClient(create_app(config, redis))

    response = client.post(
        "/trigger/acme/web/trigger-token-123", json={"ref": ref, "sha": "a" * 40}
    )

    assert response.status_code == 400, response.text
    assert "ref" in response.json()["error"]
    assert queued(redis) == 0


def test_preview_of_a_self_hosted_repository_says_whether_payload_urls_are_taken(
    redis: Redis,
) -> None:
    """#3: `preview` of a self-hosted repository without clone_url builds where
    clone_hosts lets payload URLs in, and says why not where nothing does."""
    config = parse_config(
        "repositories:\n"
        "  - {name: org/app, forge: gitea, secret: s, clone_hosts: [git.example.com],"
        " image: r/app, rules: [{branch: main}]}\n"
        "  - {name: org/bare, forge: gitea, secret: s, image: r/bare, rules: [{branch: main}]}\n",
        {},
    )
    client = TestClient(create_app(config, redis))

    taken = client.post("/api/preview", json={"repository": "org/app", "ref": "main"}).json()
    refused = client.post("/api/preview", json={"repository": "org/bare", "ref": "main"}).json()

    assert taken["skipped"] is None and taken["images"][0]["tags"]
    assert "set clone_hosts or clone_url" in refused["skipped"]


def test_a_default_branch_that_is_no_branch_name_is_refused_at_intake(
    redis: Redis, tmp_path: Path
) -> None:
    """#8: the payload's default branch (fetched for path filters) is checked like a ref."""
    config = make_config(
        tmp_path / "state", "127.0.0.1:5000", extra_repo="    clone_url: git://127.0.0.1/x\n"
    )
    payload = json.loads(github_push_body("acme/web", "refs/heads/main", "f" * 40, "x"))
    payload["repository"]["default_branch"] = "main:refs/heads/other"
    body = json.dumps(payload).encode()

    response = TestClient(create_app(config, redis)).post(
        "/hooks/github", content=body, headers=forge_headers("github", "push", body, SECRET, "b1")
    )

    assert response.status_code == 400, response.text
    assert "default branch" in response.json()["error"]
    assert queued(redis) == 0


@pytest.mark.docker
def test_a_stored_plan_with_a_bad_ref_fails_before_git_runs(
    redis: Redis, docker_host: str, make_repo: MakeRepo, tmp_path: Path
) -> None:
    """#8: a plan stored before refs were checked, with a ref git would refuse, fails
    with the reason instead of reaching git."""
    repo = make_repo()
    sha = repo.commit({"Dockerfile": DOCKERFILE, "version.txt": "x\n"})
    repo.push("main")
    config = make_config(tmp_path / "state", "127.0.0.1:5000")
    plan = plan_of(config, "acme/web", repo.url, sha)
    bad = BuildPlan.from_dict({**plan.to_dict(), "ref": "refs/heads/a..b"})

    [build] = BuildQueue.for_config(redis, config).submit([bad])
    work(config, redis, docker_host, name="test-worker")

    record = BuildStore(redis).get(build)
    assert record is not None and record.status == BuildStatus.FAILED
    assert "not fetching" in (record.error or "") and "a..b" in (record.error or "")


@pytest.mark.parametrize("clone_url", [{"href": "x"}, 42, ["git://127.0.0.1/x"]])
def test_a_clone_url_that_is_not_a_string_is_refused_at_intake(
    clone_url: object, redis: Redis, tmp_path: Path
) -> None:
    """#3: a payload clone URL that is no string is answered 400, not queued (nor 500)."""
    config = make_config(tmp_path / "state", "127.0.0.1:5000")
    payload = json.loads(github_push_body("acme/web", "refs/heads/main", "f" * 40, "x"))
    payload["repository"]["clone_url"] = clone_url
    body = json.dumps(payload).encode()

    response = TestClient(create_app(config, redis)).post(
        "/hooks/github", content=body, headers=forge_headers("github", "push", body, SECRET, "t1")
    )

    assert response.status_code == 400, response.text
    assert "clone URL" in response.json()["error"]
    assert queued(redis) == 0


def test_prune_removes_every_repositorys_mirrors_and_the_old_shared_ones(
    make_repo: MakeRepo, tmp_path: Path
) -> None:
    """#3: mirrors kept per repository are still pruned to the disk budget, as are the
    mirrors an earlier version shared between repositories."""
    repo = make_repo()
    sha = repo.commit({"Dockerfile": DOCKERFILE})
    repo.push("main")
    root = MirrorCache(tmp_path / "mirrors")
    for cache in (root, root.for_repository("github", "a/b"), root.for_repository("gitea", "c/d")):
        cache.fetch(repo.url, "refs/heads/main", sha)
    mirrors = [*root.root.glob("*.git"), *root.root.glob("*/*/*.git")]
    assert len(mirrors) == 3

    removed = root.prune(0)

    assert sorted(removed) == sorted(mirrors)
    assert not any(path.exists() for path in mirrors)
