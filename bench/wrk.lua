-- wrk script for bench/http.ts: sends $WRK_METHOD (default POST) with the JSON body in $WRK_BODY_FILE
-- (if set) to the URL on the command line and, when done, prints one line "WRK_JSON {...}" with the
-- totals and latency percentiles (µs).
wrk.method = os.getenv("WRK_METHOD") or "POST"
local path = os.getenv("WRK_BODY_FILE")
if path and path ~= "" then
  local f = assert(io.open(path, "r"), "cannot open " .. path)
  wrk.body = f:read("*a"):gsub("%s+$", "")
  f:close()
  wrk.headers["Content-Type"] = "application/json"
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"durationUs":%d,"requests":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50Us":%.1f,"p90Us":%.1f,"p99Us":%.1f,"maxUs":%.1f,"meanUs":%.1f}\n',
    summary.duration, summary.requests, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
