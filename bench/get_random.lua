-- wrk script: GET PREFIX..N for a random N in 1..ESKIT_BENCH_KEYS.
local prefix = os.getenv("ESKIT_BENCH_PREFIX") or "/"
local keys = tonumber(os.getenv("ESKIT_BENCH_KEYS") or "1000")

function init(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
end

function request()
  return wrk.format("GET", prefix .. math.random(1, keys))
end
