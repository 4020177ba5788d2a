-- wrk script: POST /auth/signin with a JSON body, counting response statuses.
--
-- Credentials come from the environment (set by bench/run.sh):
--   BENCH_EMAIL, BENCH_PASSWORD
-- At the end it prints one machine-readable line:
--   bench_status total=N ok=N non200=N codes=401:3,503:2
-- (ok = status 200; codes lists every non-200 status seen with its count).

local email = os.getenv("BENCH_EMAIL") or error("BENCH_EMAIL is not set")
local password = os.getenv("BENCH_PASSWORD") or error("BENCH_PASSWORD is not set")

-- JSON string escaping for the few characters that matter here.
local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return string.format("\\u%04x", c:byte())
  end) .. '"'
end

wrk.method = "POST"
wrk.body = '{"email":' .. json_string(email) .. ',"password":' .. json_string(password) .. '}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  total = 0
  ok = 0
  codes = {}
end

function response(status, headers, body)
  total = total + 1
  if status == 200 then
    ok = ok + 1
  else
    codes[status] = (codes[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  local t_total, t_ok, merged = 0, 0, {}
  for _, thread in ipairs(threads) do
    t_total = t_total + (thread:get("total") or 0)
    t_ok = t_ok + (thread:get("ok") or 0)
    local c = thread:get("codes") or {}
    for status, n in pairs(c) do
      merged[status] = (merged[status] or 0) + n
    end
  end
  local keys = {}
  for status in pairs(merged) do table.insert(keys, status) end
  table.sort(keys)
  local parts = {}
  for _, status in ipairs(keys) do
    table.insert(parts, string.format("%d:%d", status, merged[status]))
  end
  io.write(string.format("bench_status total=%d ok=%d non200=%d codes=%s\n",
    t_total, t_ok, t_total - t_ok, #parts > 0 and table.concat(parts, ",") or "-"))
end
