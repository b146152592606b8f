-- POST {"student_id": ...} naming one of the seeded students at random, with the bench's
-- token; behind TLS as in production (the proxy's X-Forwarded-Proto). At the end, one JSON
-- line with the figures bench/api.py reads (wrk's own report has no p95).
local token = os.getenv("BENCH_TOKEN")
local students = tonumber(os.getenv("BENCH_STUDENTS"))
local prefix = os.getenv("BENCH_STUDENT_PREFIX")

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. token
wrk.headers["X-Forwarded-Proto"] = "https"

request = function()
  local body = string.format('{"student_id": "%s%05d"}', prefix, math.random(0, students - 1))
  return wrk.format(nil, nil, nil, body)
end

done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "non2xx": %d, "socket_errors": %d,'
      .. ' "p50_us": %d, "p95_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
