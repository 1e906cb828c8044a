"""A build plan: everything a worker needs to build one image, as plain JSON-able data.

Plans travel through the queue (RQ jobs carry data only), so they hold no secrets: a worker
looks up clone and registry credentials in its own config by repository and image.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any


def short_ref(ref: str) -> str:
    """`refs/heads/main` -> `main`, `refs/tags/v1` -> `v1`; a short name stays as it is."""
    return ref.split("/", 2)[-1] if ref.startswith("refs/") else ref


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
    before: str = ""
    default_branch: str = "main"
    target: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    oci_labels: bool = True  # hookbuild's own labels too (builder.build.pipeline.oci_labels)
    builder: str = "auto"  # "buildkit" or "classic": the engine's (builder.builderchoice)
    network: str = "default"  # "none": RUN steps reach no network (builder.buildnetwork)
    # tag -> "pinned" | "release" | "moving" (builder.tags.kinds); tags still holding
    # `{date...}` are filled in by the worker once it knows the commit's date.
    tag_kinds: Mapping[str, str] = field(default_factory=dict)
    overwrite: tuple[str, ...] = ()  # release tags that may be pointed at another image
    version: str | None = None  # the tag ref's semver, which orders its moving tags
    paths: tuple[str, ...] = ()
    ignore_paths: tuple[str, ...] = ()
    cancel_superseded: bool = False  # a newer push of the same image and ref cancels this
    # Tags made valid from something that was not (`-main` -> `main`): they may collide
    # with another ref's exact tag, which then wins (builder.tags.owners).
    sanitised: tuple[str, ...] = ()

    @property
    def ref_name(self) -> str:
        return short_ref(self.ref)

    def kind_of(self, tag: str) -> str:
        return self.tag_kinds.get(tag, "moving")

    def to_dict(self) -> dict[str, Any]:
        # Shallow on purpose: every field is plain data, and `asdict`'s deep copy was a
        # measurable share of a webhook's cost (bench/intake.py).
        data = {name: getattr(self, name) for name in _FIELDS}
        for name in _TUPLES:
            data[name] = list(getattr(self, name))
        for name in _MAPPINGS:
            data[name] = dict(getattr(self, name))
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BuildPlan:
        known = cls.__dataclass_fields__
        values = {key: value for key, value in data.items() if key in known}
        for name in _TUPLES:
            values[name] = tuple(values.get(name, ()))
        for name in _MAPPINGS:
            values[name] = dict(values.get(name, {}))
        return cls(**values)


_TUPLES = ("tags", "notes", "overwrite", "paths", "ignore_paths", "sanitised")
_MAPPINGS = ("build_args", "labels", "tag_kinds")
_FIELDS = tuple(f.name for f in fields(BuildPlan))
