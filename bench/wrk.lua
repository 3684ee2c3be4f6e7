-- wrk script for bench/http.ts: sends $WRK_METHOD (default POST) with the JSON body in $WRK_BODY_FILE
-- (if set) to the URL on the command line or, with $WRK_CUSTOMERS = "count:idWidth", a body naming a
-- random stored customer per request ({"customerId":"c-000042"}); when done, prints one line
-- "WRK_JSON {...}" with the totals and latency percentiles (µs).
wrk.method = os.getenv("WRK_METHOD") or "POST"
local path = os.getenv("WRK_BODY_FILE")
if path and path ~= "" then
  local f = assert(io.open(path, "r"), "cannot open " .. path)
  wrk.body = f:read("*a"):gsub("%s+$", "")
  f:close()
  wrk.headers["Content-Type"] = "application/json"
end

local count, width = (os.getenv("WRK_CUSTOMERS") or ""):match("^(%d+):(%d+)$")
if count then
  count = tonumber(count)
  local body = '{"customerId":"c-%0' .. width .. 'd"}'
  wrk.headers["Content-Type"] = "application/json"
  math.randomseed(os.time())
  -- wrk builds each request with this function when the script defines it (else it sends one fixed request).
  request = function()
    return wrk.format(nil, nil, nil, string.format(body, math.random(count)))
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"durationUs":%d,"requests":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50Us":%.1f,"p90Us":%.1f,"p99Us":%.1f,"maxUs":%.1f,"meanUs":%.1f}\n',
    summary.duration, summary.requests, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
