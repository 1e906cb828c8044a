"""The Docker engine as a `BuildEngine`, through docker-py: the engine, the build context
it is sent, BuildKit's progress, and the one place docker-py's errors become ours."""
