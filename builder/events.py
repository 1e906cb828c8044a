"""The forge-independent push event: what every forge driver turns its webhook into."""

from __future__ import annotations

from dataclasses import dataclass

ZERO_SHA = "0" * 40


@dataclass(frozen=True)
class PushEvent:
    """A ref that moved on a forge. Everything after the receiver sees only this."""

    forge: str
    repository: str  # the forge's full name: `acme/web`, `group/sub/repo`, `PROJ/repo`
    ref: str  # full ref: `refs/heads/main`, `refs/tags/v1.2.3`
    sha: str  # the commit to build; empty when the ref was deleted
    before: str = ""
    clone_url: str | None = None
    deleted: bool = False
    message: str | None = None
    pusher: str | None = None
    delivery_id: str | None = None
    default_branch: str | None = None  # as the payload tells it, where it does

    @property
    def ref_type(self) -> str:
        if self.ref.startswith("refs/heads/"):
            return "branch"
        if self.ref.startswith("refs/tags/"):
            return "tag"
        return "other"

    @property
    def ref_name(self) -> str:
        for prefix in ("refs/heads/", "refs/tags/"):
            if self.ref.startswith(prefix):
                return self.ref[len(prefix) :]
        return self.ref

    @property
    def branch(self) -> str:
        return self.ref_name if self.ref_type == "branch" else ""

    @property
    def tag(self) -> str:
        return self.ref_name if self.ref_type == "tag" else ""
