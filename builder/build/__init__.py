"""The build's edges: everything that does I/O for a build, around the pure core above.

`pipeline` runs one build as a list of steps over: `source` (git mirrors), a `BuildEngine`
(`engine`; `docker/` is the Docker implementation, with BuildKit and the classic builder as
the two `buildstep`s), `registry` (tags pushed through the registry's API), `publish` (which
tag goes where) and `retry`. The core (builder/*.py, builder/tags/) imports none of it.
"""
