-- wrk script: batch appends of BATCH events (env ESKIT_BENCH_BATCH, default 100).
local counter = 0
local prefix = ""
local batch = tonumber(os.getenv("ESKIT_BENCH_BATCH") or "100")

function init(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
  prefix = "bb" .. math.random(1, 1000000000) .. "-"
end

function request()
  counter = counter + 1
  local parts = {}
  for i = 1, batch do
    parts[i] = '{"originator":{"id":"' .. prefix .. counter .. '-' .. i ..
      '"},"event_type":"Bench.Created","payload":{"n":' .. i .. '}}'
  end
  local body = '{"events":[' .. table.concat(parts, ",") .. ']}'
  return wrk.format("POST", "/v1/events", {["Content-Type"] = "application/json"}, body)
end
