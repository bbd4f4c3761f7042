-- wrk script of benchmarks/e2e.py: every connection keeps its own session cookie, as a browser does.
--
-- Run with as many threads as connections (wrk -t N -c N): a thread then has
-- one connection, so this thread's cookie is its connection's own session.
-- Every request is GET /; the first one carries no cookie, and whenever an
-- answer sets the cookie (a new session, or a signed cookie holding the
-- data) the next request sends the new value. The view answers the session's
-- counter after adding one, so each answer is checked against the one before
-- on the same connection: one more (the session was kept) and higher (the
-- floor's counter, shared by every connection). done() prints one line,
-- "e2e-result {json}", for e2e.py to parse.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  cookie = nil
  last = 0
  answers = {}
  counts = { counted = 0, in_step = 0, rising = 0, set_cookie = 0, vary_cookie = 0 }
end

function request()
  if cookie == nil then
    return wrk.format("GET", "/")
  end
  return wrk.format("GET", "/", { Cookie = cookie })
end

-- One request in flight per connection: this answers the request sent last.
function response(status, headers, body)
  local key = tostring(status)
  answers[key] = (answers[key] or 0) + 1
  for name, value in pairs(headers) do
    local lower = string.lower(name)
    if lower == "set-cookie" then
      cookie = value:match("^[^;]+")
      counts.set_cookie = counts.set_cookie + 1
    elseif lower == "vary" and value:find("Cookie", 1, true) then
      counts.vary_cookie = counts.vary_cookie + 1
    end
  end
  local n = tonumber(body)
  if status == 200 and n then
    counts.counted = counts.counted + 1
    if n == last + 1 then
      counts.in_step = counts.in_step + 1
    end
    if n > last then
      counts.rising = counts.rising + 1
    end
    last = n
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
  local all, counted = {}, { sessions = 0 }
  for _, thread in ipairs(threads) do
    add(all, thread:get("answers"))
    add(counted, thread:get("counts"))
    if thread:get("cookie") ~= nil then
      counted.sessions = counted.sessions + 1
    end
  end
  local e = summary.errors
  io.write(string.format(
    'e2e-result {"requests":%d,"duration_us":%d,"socket_errors":%d,"answers":%s,"counts":%s}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout,
    object(all), object(counted)))
end
