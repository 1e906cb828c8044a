"""The prefix of every Redis key hookbuild writes (RQ's own keys start with `rq:`)."""

PREFIX = "hookbuild"
