-- wrk script: single appends to fresh streams (no expected version).
local counter = 0
local prefix = ""

function init(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
  prefix = "b" .. math.random(1, 1000000000) .. "-"
end

function request()
  counter = counter + 1
  local body = '{"originator":{"id":"' .. prefix .. counter ..
    '"},"event_type":"Bench.Created","payload":{"n":' .. counter .. ',"name":"bench"}}'
  return wrk.format("POST", "/v1/events", {["Content-Type"] = "application/json"}, body)
end
