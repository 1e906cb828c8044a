"""The worker side: whatever runs builds. `process` is the RQ worker (its classes and
`run_worker`), `job` the build itself (the RQ job function), `watch` a running build's
watchdog, `reaper` what ends builds whose worker died, `prefetch` and `workspace` a build's
fetch and directories, `buildlog` its log writer, `context` what a worker knows, and
`engineprobe` the line a worker logs about its Docker engine at start."""
