-- wrk script: a selective _find (about 10 results) on a random city value.
-- FIND_CITIES: how many distinct city values the documents have; FIND_TYPE:
-- the entity type (default Q).
local cities = tonumber(os.getenv("FIND_CITIES") or "10000")
local etype = os.getenv("FIND_TYPE") or "Q"

function init(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
end

function request()
  local body = '{"selector":{"city":"c' .. math.random(0, cities - 1) .. '"},"limit":100}'
  return wrk.format("POST", "/v1/entities/" .. etype .. "/_find",
                    {["Content-Type"] = "application/json"}, body)
end
