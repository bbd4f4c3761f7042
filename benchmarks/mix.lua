-- wrk script of benchmarks/workers.py: each connection logs in, then sends READS reads per write.
--
-- Run with as many threads as connections (wrk -t N -c N): a thread then has
-- one connection, so this thread's cookie is its connection's own session.
-- wrk.format paths: /login (sets the cookie), /read, /write. Answers are
-- counted by request and status ("read 200", "write 403", ...) and by the
-- worker that served them (the X-Worker header); done() prints one line,
-- "mix-result {json}", for workers.py to parse.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  reads = tonumber(args[1]) or 10
  cookie = nil
  step = 0
  sent = "login"
  answers = {}
  served = {}
end

function request()
  if cookie == nil then
    sent = "login"
    return wrk.format("GET", "/login")
  end
  step = step % (reads + 1) + 1
  sent = step <= reads and "read" or "write"
  return wrk.format("GET", "/" .. sent, { Cookie = cookie })
end

-- One request in flight per connection: this answers the request sent last.
function response(status, headers, body)
  local key = sent .. " " .. status
  answers[key] = (answers[key] or 0) + 1
  local worker = headers["X-Worker"]
  if worker then
    served[worker] = (served[worker] or 0) + 1
  end
  if sent == "login" and status == 200 and headers["Set-Cookie"] then
    cookie = headers["Set-Cookie"]:match("^[^;]+")
  end
end

local function add(total, part)
  for k, v in pairs(part) do
    total[k] = (total[k] or 0) + v
  end
end

local function object(t)
  local parts = {}
  for k, v in pairs(t) do
    parts[#parts + 1] = string.format("%q:%d", k, v)
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, requests)
  local all, workers = {}, {}
  for _, thread in ipairs(threads) do
    add(all, thread:get("answers"))
    add(workers, thread:get("served"))
  end
  local e = summary.errors
  io.write(string.format(
    'mix-result {"requests":%d,"duration_us":%d,"socket_errors":%d,"answers":%s,"workers":%s}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout,
    object(all), object(workers)))
end
