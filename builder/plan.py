"""A build plan: everything a worker needs to build one image, as plain JSON-able data.

Plans travel through the queue (RQ jobs carry data only), so they hold no secrets: a worker
looks up clone and registry credentials in its own config by repository and image.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class BuildPlan:
    forge: str
    repository: str
    clone_url: str
    ref: str
    sha: str
    image: str
    tags: tuple[str, ...]
    dockerfile: str = "Dockerfile"
    context: str = "."
    build_args: Mapping[str, str] = field(default_factory=dict)
    timeout: int = 3600
    message: str | None = None
    pusher: str | None = None
    delivery_id: str | None = None
    notes: tuple[str, ...] = ()  # decisions the build log should show (e.g. a tag made valid)

    @property
    def ref_name(self) -> str:
        return self.ref.split("/", 2)[2] if self.ref.startswith("refs/") else self.ref

    def image_refs(self) -> list[str]:
        return [f"{self.image}:{tag}" for tag in self.tags]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["tags"] = list(self.tags)
        data["notes"] = list(self.notes)
        data["build_args"] = dict(self.build_args)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BuildPlan:
        values = dict(data)
        values["tags"] = tuple(values.get("tags", ()))
        values["notes"] = tuple(values.get("notes", ()))
        values["build_args"] = dict(values.get("build_args", {}))
        return cls(**values)
