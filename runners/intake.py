"""Queue a delivery's builds in one Redis round trip, atomically.

Everything a delivery writes (its builds' records and indexes, their RQ jobs or places in
their repository's waiting line, the delivery's dedup entry and its line in the delivery
log) is prepared in Python, then run by one Lua script. The script first looks the
delivery id up, so a redelivery writes nothing and learns the first delivery's builds; then
it takes each build's slot in its repository if one is free, marks the build it supersedes,
writes everything, and marks the delivery done last. One round trip instead of five, and
atomic: no client ever sees half a delivery, and what the forge is told was queued is
queued. (On this machine a round trip costs ~0.2 ms: bench/intake.py.)

The commands are recorded on a redis-py pipeline that is never sent: RQ writes its job
there as it always does, so the job's format stays RQ's own.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack  # type: ignore[import-untyped]
from redis.client import Pipeline
from redis.exceptions import ResponseError

from runners.records import text

# Each ARGV: one delivery's whole call, packed with MessagePack (one argument to encode and
# send instead of a hundred and more; Redis's Lua has cmsgpack built in):
#   {delivery key ("" for none), its TTL, its value, builds, commands for everything else}
# each build: {id, slots key, slot cap, head key ("" when it supersedes nothing), record key
#   prefix, created_at, burst seconds, settle key, settle seconds, commands if it got a
#   slot (its RQ job), commands if not (its place in the waiting line)}
# Several deliveries may come in one call (runners/intakebatch.py); each is done apart, and
# a failing one leaves the others done. Returns one reply per ARGV, in order:
# {0, builds of the first delivery} for a redelivery; {1, got-a-slot flags, {superseded id,
# by id, ...}} for a new one; {2, Redis's error} for one that could not be written.
INTAKE_SCRIPT = """
local function intake(packed)
  local call = cmsgpack.unpack(packed)
  local delivery_key, ttl, delivery_value = call[1], call[2], call[3]
  local builds, common = call[4], call[5]
  local function run(commands)
    for _, command in ipairs(commands) do redis.call(unpack(command)) end
  end
  if delivery_key ~= "" then
    local earlier = redis.call('GET', delivery_key)
    if earlier then return {0, earlier} end
  end
  local ready, superseded = {}, {}
  for i, build in ipairs(builds) do
    local id, slots, cap, head, prefix = build[1], build[2], tonumber(build[3]), build[4], build[5]
    local created_at, burst = tonumber(build[6]), tonumber(build[7])
    local settle_key, settle = build[8], build[9]
    if head ~= "" then
      local previous = redis.call('GETSET', head, id)
      if previous and previous ~= id then
        local state = redis.call('HMGET', prefix .. previous, 'status', 'created_at')
        if state[1] == '"queued"' or state[1] == '"running"' then
          table.insert(superseded, previous)
          table.insert(superseded, id)
          if created_at - tonumber(state[2]) < burst then
            redis.call('SET', settle_key, settle, 'EX', 3600)
          end
        end
      end
    end
    local got = redis.call('SCARD', slots) < cap
    if got then
      redis.call('SADD', slots, id)
      run(build[10])
    else
      run(build[11])
    end
    ready[i] = got and 1 or 0
  end
  run(common)
  -- Last: should a command above fail (a key of the wrong type), the delivery is not marked
  -- done, and the forge's redelivery tries again rather than being taken for a duplicate.
  if delivery_key ~= "" then
    redis.call('SET', delivery_key, delivery_value, 'EX', ttl)
  end
  return {1, ready, superseded}
end
local replies = {}
for i, packed in ipairs(ARGV) do
  local done, reply = pcall(intake, packed)
  if not done then
    reply = {2, type(reply) == 'table' and reply.err or tostring(reply)}
  end
  replies[i] = reply
end
return replies
"""


@dataclass
class BuildSlot:
    """One build's part of the script's arguments."""

    build_id: str
    slots_key: str
    cap: int
    head_key: str
    record_prefix: str
    created_at: float
    burst_seconds: float
    settle_key: str
    settle_seconds: float
    if_ready: Pipeline
    if_waiting: Pipeline


@dataclass
class IntakeCall:
    delivery_key: str
    delivery_ttl: int
    build_ids: list[str]
    slots: list[BuildSlot] = field(default_factory=list)

    def pack(self, common: Pipeline) -> bytes:
        """The script's argument for this delivery (one ARGV)."""
        builds = [
            [
                slot.build_id,
                slot.slots_key,
                str(slot.cap),
                slot.head_key,
                slot.record_prefix,
                repr(slot.created_at),
                repr(slot.burst_seconds),
                slot.settle_key,
                repr(slot.settle_seconds),
                _commands(slot.if_ready),
                _commands(slot.if_waiting),
            ]
            for slot in self.slots
        ]
        call = [
            self.delivery_key,
            str(self.delivery_ttl),
            json.dumps(self.build_ids),
            builds,
            _commands(common),
        ]
        # The old raw types: the cmsgpack in Redis 7.0 knows no "bin" (use_bin_type).
        packed: bytes = msgpack.packb(call, use_bin_type=False)
        return packed


@dataclass(frozen=True)
class IntakeReply:
    duplicate_of: list[str] | None  # a redelivery: the first delivery's builds
    ready: list[bool]
    superseded: list[tuple[str, str]]  # (older build, the build that supersedes it)

    @classmethod
    def parse(cls, raw: Sequence[Any]) -> IntakeReply:
        """One delivery's reply; raises ResponseError for a delivery Redis could not write."""
        if int(raw[0]) == 2:
            raise ResponseError(text(raw[1]))
        if int(raw[0]) == 0:
            value = raw[1]
            # "pending": a claim written by an earlier version, whose builds were not recorded.
            earlier = json.loads(value) if value not in (None, b"pending", "pending") else []
            return cls(list(earlier), [], [])
        flat = [v.decode() if isinstance(v, bytes) else str(v) for v in raw[2]]
        return cls(
            None,
            [bool(int(flag)) for flag in raw[1]],
            list(zip(flat[::2], flat[1::2], strict=True)),
        )


def _commands(recorded: Pipeline) -> list[list[bytes | str]]:
    """A recorded pipeline's commands, each argument as Redis would get it (numbers as
    redis-py writes them, never as Lua would print them); the pipeline is then emptied."""
    # A delivery's commands carry some 600 arguments, nearly all str or bytes: an exact
    # type check first (`isinstance` with a union showed in the intake's profile).
    commands = [
        [arg if type(arg) in _AS_IS else _argument(arg) for arg in args]
        for args, _options in recorded.command_stack
    ]
    recorded.reset()
    return commands


_AS_IS = frozenset((str, bytes))


def _argument(value: Any) -> str | bytes:
    if isinstance(value, str | bytes):  # a subclass: a StrEnum, say
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value)
    raise TypeError(f"a Redis argument cannot be {type(value).__name__}: {value!r}")
