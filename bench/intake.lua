-- wrk script for bench/intake.py: the same signed body, a new delivery id per request, and a
-- count of the 202s (a duplicate delivery id would get 200 and be counted apart).
local file = io.open(os.getenv("HOOKBUILD_BODY_FILE"), "rb")
local body = file:read("*a")
file:close()
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

function init(args)
  id = wrk.thread:get("id")
  prefix = os.getenv("HOOKBUILD_DELIVERY_PREFIX") or "wrk"
  counter = 0
  accepted = 0
  wrk.method = "POST"
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-GitHub-Event"] = "push"
  wrk.headers["X-Hub-Signature-256"] = os.getenv("HOOKBUILD_SIGNATURE")
end

function request()
  counter = counter + 1
  wrk.headers["X-GitHub-Delivery"] = string.format("%s-%d-%d", prefix, id, counter)
  return wrk.format()
end

function response(status, headers, body)
  if status == 202 then accepted = accepted + 1 end
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("accepted") end
  io.write(string.format("WRK requests=%d errors=%d non2xx=%d accepted=%d p50_ms=%.2f p99_ms=%.2f\n",
    summary.requests, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, total, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
