-- aiproxy as an NGINX (lua-nginx-module) content handler.
--
--   http {
--     lua_package_path "/path/to/bindings/lua/?.lua;;";
--     lua_check_client_abort on;            # free the exchange as soon as a client goes away
--     lua_ssl_trusted_certificate /etc/ssl/certs/ca-certificates.crt;
--     resolver 127.0.0.53;                   # provider hosts are resolved at request time
--     init_by_lua_block { require("aiproxy.nginx").init({configs = {main = {file = "/etc/aiproxy.json"}}}) }
--     init_worker_by_lua_block { require("aiproxy.nginx").init_worker() }
--     server {
--       listen 127.0.0.1:8080;
--       set $aiproxy_config main;            # which configuration this server uses
--       set $aiproxy_provider ""; set $aiproxy_model ""; set $aiproxy_prompt_tokens "";
--       set $aiproxy_completion_tokens ""; set $aiproxy_total_tokens "";
--       location / {
--         content_by_lua_block { require("aiproxy.nginx").handle() }
--         log_by_lua_block { require("aiproxy.nginx").log() }
--       }
--     }
--   }
--
-- Request: the body is read (NGINX buffers it; keep client_body_buffer_size = client_max_body_size
-- so it stays in memory) and translated by the core; a callout (context file, Moonshot file) is a
-- cosocket request to the service; the upstream request goes out over a pooled cosocket, with TLS
-- (certificate verified, SNI = the provider host) unless `upstream` routes everything to a plain
-- HTTP test server (`upstream_tls` keeps TLS for it).
--
-- Response: the upstream's status and headers go to the core, which picks the mode. STREAM: each
-- upstream chunk is translated and flushed to the client as it arrives (nothing is held back).
-- BUFFER: the body is fed to the core and the translated reply is sent at the end, with the status
-- the core returns -- which can differ from the upstream's (Tencent Cloud and MiniMax report
-- errors as HTTP 200). That is why the response is produced here rather than by proxy_pass plus
-- header/body filters: NGINX sends the status line when the header filter chain runs, before any
-- body is read, and lua-nginx-module has no way to hold it back. PASSTHROUGH: bytes as they come.
--
-- Lifetimes: one config handle per configuration per worker (created in init_worker); one
-- exchange per request, freed when the response is done, on a client abort (ngx.on_abort), and in
-- any case in the log phase (log()), which NGINX runs for every request.
--
-- Observability: $aiproxy_provider, $aiproxy_model, $aiproxy_prompt_tokens,
-- $aiproxy_completion_tokens and $aiproxy_total_tokens are set for the access log (declare them
-- with `set` as above). Nothing here logs headers or bodies, so no key reaches a log.

local aiproxy = require("aiproxy")

local ngx = ngx
local concat = table.concat
local lower = string.lower

local M = {}

local opts = {} -- from init()
local texts = {} -- name -> configuration JSON text (read by the master in init)
local providers = {} -- name -> provider type, for the log
local configs = {} -- name -> aiproxy Config (per worker)

local HOP_BY_HOP = {
  ["connection"] = true,
  ["keep-alive"] = true,
  ["proxy-connection"] = true,
  ["te"] = true,
  ["trailer"] = true,
  ["transfer-encoding"] = true,
  ["upgrade"] = true,
  ["host"] = true,
  ["content-length"] = true,
  ["expect"] = true,
}

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then
    return nil, err
  end
  local text = f:read("*a")
  f:close()
  return text
end

--- Master process (init_by_lua): loads the library, reads and validates every configuration.
--- opts: configs = {name = {file = path} | {json = text}, ...}; lib (library path);
--- upstream ("host:port": every provider connection goes there, over plain HTTP unless
--- upstream_tls is true -- then TLS with SNI and verification as for the real hosts);
--- services ({cluster = "host:port"}: where callouts to a context service go); timeout_ms
--- (upstream read timeout, default 120000); connect_timeout_ms (10000); keepalive (pool size, 32).
function M.init(o)
  opts = o or {}
  local _, err = aiproxy.load(opts.lib)
  if err then
    error("aiproxy: " .. err, 0)
  end
  for name, c in pairs(opts.configs or {}) do
    local text = c.json
    if c.file then
      local read_err
      text, read_err = read_file(c.file)
      if not text then
        error(("aiproxy: cannot read configuration %s: %s"):format(c.file, read_err), 0)
      end
    end
    local cfg, cerr = aiproxy.config(text)
    if not cfg then
      -- The message names the field; it never contains a key.
      error(("invalid aiproxy configuration '%s': %s"):format(name, cerr.message), 0)
    end
    cfg:free()
    texts[name] = text
    providers[name] = c.provider or text:match('"type"%s*:%s*"([%w_%-]+)"') or "unknown"
  end
  opts.configs = nil -- the texts stay in `texts` only
end

--- Each worker (init_worker_by_lua): its own config handles.
function M.init_worker()
  for name, text in pairs(texts) do
    configs[name] = assert(aiproxy.config(text))
    ngx.log(ngx.INFO, "aiproxy: configuration '", name, "' loaded for provider ", providers[name])
  end
end

-- ---------------------------------------------------------------------------------------------
-- Small HTTP/1.1 client over cosockets
-- ---------------------------------------------------------------------------------------------

local function split_authority(authority, default_port)
  local host, port = authority:match("^%[(.+)%]:(%d+)$")
  if not host then
    host, port = authority:match("^([^:]+):(%d+)$")
  end
  if host then
    return host, tonumber(port)
  end
  return authority, default_port
end

local function hostport(s)
  local host, port = split_authority(s, 80)
  return host, port
end

-- Connects to host:port (TLS with SNI `sni` and certificate verification when tls).
local function connect(host, port, tls, sni, timeouts)
  local sock = ngx.socket.tcp()
  sock:settimeouts(timeouts[1], timeouts[2], timeouts[3])
  local pool = (tls and "tls:" .. sni .. "@" or "") .. host .. ":" .. port
  local ok, err = sock:connect(host, port, { pool = pool })
  if not ok then
    return nil, "connect to " .. host .. ":" .. port .. " failed: " .. tostring(err)
  end
  if tls and sock:getreusedtimes() == 0 then
    -- pcall: Debian's lua-resty-core 0.1.25 asserts (a Lua error, not a return value) when a
    -- handshake whose certificate fails verification completes without yielding; either way it
    -- is a failed handshake, and the request must get our 502 rather than NGINX's 500 page.
    local called, session
    called, session, err = pcall(sock.sslhandshake, sock, nil, sni, true)
    if not called then
      err, session = session, nil
    end
    if not session then
      sock:close()
      return nil, "TLS handshake with " .. sni .. " failed: " .. tostring(err)
    end
  end
  return sock
end

-- Sends one request; returns sock, status, headers (list of {lower name, value}), header map.
local function send_request(target, method, path, authority, headers, body)
  local lines = { method, " ", path, " HTTP/1.1\r\nhost: ", authority, "\r\n" }
  for _, h in ipairs(headers) do
    lines[#lines + 1] = h[1]
    lines[#lines + 1] = ": "
    lines[#lines + 1] = h[2]
    lines[#lines + 1] = "\r\n"
  end
  if #body > 0 or (method ~= "GET" and method ~= "HEAD") then
    lines[#lines + 1] = "content-length: " .. #body .. "\r\n"
  end
  lines[#lines + 1] = "\r\n"
  lines[#lines + 1] = body
  local request = concat(lines)

  -- A pooled connection may have been closed by the server meanwhile: retry once on a new one.
  for attempt = 1, 2 do
    local sock, err = connect(target.host, target.port, target.tls, target.sni, target.timeouts)
    if not sock then
      return nil, err
    end
    local reused = sock:getreusedtimes() > 0
    local sent
    sent, err = sock:send(request)
    local line
    if sent then
      line, err = sock:receive("*l")
    end
    if line then
      local status = tonumber(line:match("^HTTP/%d%.%d (%d%d%d)"))
      if not status then
        sock:close()
        return nil, "malformed upstream status line"
      end
      local list, map = {}, {}
      while true do
        local h, herr = sock:receive("*l")
        if not h then
          sock:close()
          return nil, "reading upstream headers failed: " .. tostring(herr)
        end
        if h == "" then
          break
        end
        local name, value = h:match("^([^:]+):%s*(.-)%s*$")
        if name then
          name = lower(name)
          list[#list + 1] = { name, value }
          map[name] = value
        end
      end
      if status >= 100 and status < 200 and status ~= 101 then
        -- 100 Continue and friends: the real response follows.
        local final_status, final_list, final_map
        line = sock:receive("*l")
        final_status = line and tonumber(line:match("^HTTP/%d%.%d (%d%d%d)"))
        if not final_status then
          sock:close()
          return nil, "malformed upstream response after 1xx"
        end
        final_list, final_map = {}, {}
        while true do
          local h = sock:receive("*l")
          if not h then
            sock:close()
            return nil, "reading upstream headers failed"
          end
          if h == "" then
            break
          end
          local name, value = h:match("^([^:]+):%s*(.-)%s*$")
          if name then
            final_list[#final_list + 1] = { lower(name), value }
            final_map[lower(name)] = value
          end
        end
        status, list, map = final_status, final_list, final_map
      end
      return sock, status, list, map
    end
    sock:close()
    if not (reused and attempt == 1) then
      return nil, "upstream request failed: " .. tostring(err)
    end
  end
end

-- Returns an iterator over body pieces: each call gives data, or nil plus "done" at the end,
-- or nil plus an error. `keepalive` says at the end whether the connection can be pooled.
local function body_reader(sock, method, status, map)
  local state = { done = false, keepalive = true }
  if method == "HEAD" or status == 204 or status == 304 then
    state.done = true
    return function()
      return nil, "done"
    end, state
  end
  if map["connection"] and lower(map["connection"]):find("close", 1, true) then
    state.keepalive = false
  end
  local te = map["transfer-encoding"]
  if te and lower(te):find("chunked", 1, true) then
    local remaining = 0 -- of the current chunk
    return function()
      if state.done then
        return nil, "done"
      end
      if remaining == 0 then
        local line, err = sock:receive("*l")
        if not line then
          return nil, "upstream body: " .. tostring(err)
        end
        local size = tonumber(line:match("^%s*(%x+)"), 16)
        if not size then
          return nil, "upstream body: malformed chunk size"
        end
        if size == 0 then
          -- trailers, then the empty line
          repeat
            line, err = sock:receive("*l")
            if not line then
              return nil, "upstream body: " .. tostring(err)
            end
          until line == ""
          state.done = true
          return nil, "done"
        end
        remaining = size
      end
      local data, err = sock:receiveany(remaining < 65536 and remaining or 65536)
      if not data then
        return nil, "upstream body: " .. tostring(err)
      end
      remaining = remaining - #data
      if remaining == 0 then
        local crlf
        crlf, err = sock:receive(2)
        if not crlf then
          return nil, "upstream body: " .. tostring(err)
        end
      end
      return data
    end, state
  end
  local length = tonumber(map["content-length"] or "")
  if length then
    local remaining = length
    return function()
      if remaining <= 0 then
        state.done = true
        return nil, "done"
      end
      local data, err = sock:receiveany(remaining < 65536 and remaining or 65536)
      if not data then
        return nil, "upstream body: " .. tostring(err)
      end
      remaining = remaining - #data
      return data
    end, state
  end
  state.keepalive = false -- delimited by the connection's end
  return function()
    if state.done then
      return nil, "done"
    end
    local data, err = sock:receiveany(65536)
    if not data then
      if err == "closed" then
        state.done = true
        return nil, "done"
      end
      return nil, "upstream body: " .. tostring(err)
    end
    return data
  end, state
end

local function release(sock, state)
  if state.done and state.keepalive then
    sock:setkeepalive(60000, opts.keepalive or 32)
  else
    sock:close()
  end
end

-- ---------------------------------------------------------------------------------------------
-- Replies
-- ---------------------------------------------------------------------------------------------

local function json_escape(s)
  return (s:gsub('[%c"\\]', function(c)
    if c == '"' then
      return '\\"'
    elseif c == "\\" then
      return "\\\\"
    end
    return ("\\u%04x"):format(c:byte())
  end))
end

-- An OpenAI-shaped error for failures of the proxy itself (upstream unreachable, ...).
local function error_reply(status, kind, code, message)
  ngx.status = status
  ngx.header["content-type"] = "application/json"
  local body = ('{"error":{"message":"%s","type":"%s","param":null,"code":"%s"}}'):format(
    json_escape(message),
    kind,
    code
  )
  ngx.header["content-length"] = #body
  ngx.print(body)
  return ngx.exit(status)
end

local function set_headers(list)
  local grouped = {}
  local order = {}
  for _, h in ipairs(list) do
    local name = h[1]
    if not grouped[name] then
      grouped[name] = {}
      order[#order + 1] = name
    end
    local g = grouped[name]
    g[#g + 1] = h[2]
  end
  for _, name in ipairs(order) do
    local values = grouped[name]
    ngx.header[name] = #values == 1 and values[1] or values
  end
end

local function local_reply(r)
  ngx.status = r.status
  set_headers(r.headers)
  ngx.header["content-length"] = #r.body
  ngx.print(r.body)
  return ngx.exit(r.status)
end

-- ---------------------------------------------------------------------------------------------
-- The handler
-- ---------------------------------------------------------------------------------------------

local function free_exchange(ctx)
  local ex = ctx.aiproxy_exchange
  if ex then
    ctx.aiproxy_exchange = nil
    local usage = ex:usage()
    if usage then
      ngx.var.aiproxy_prompt_tokens = usage.prompt_tokens
      ngx.var.aiproxy_completion_tokens = usage.completion_tokens
      ngx.var.aiproxy_total_tokens = usage.total_tokens
    end
    ex:free()
  end
end

local function timeouts(read_ms)
  return { opts.connect_timeout_ms or 10000, read_ms, read_ms }
end

-- Performs the callout the core asked for; returns its status (0 when it failed) and body.
local function callout(r)
  local host, port
  local authority_host = split_authority(r.authority, r.port)
  local service = opts.services and opts.services[r.cluster]
  local tls
  if service then
    host, port = hostport(service)
    tls = false
  elseif opts.upstream and r.cluster == authority_host then
    -- The provider's own API (Moonshot files): same route as the provider's traffic.
    host, port = hostport(opts.upstream)
    tls = opts.upstream_tls == true
  else
    host, port = r.cluster, r.port
    tls = port == 443
  end
  local target = {
    host = host,
    port = port,
    tls = tls,
    sni = authority_host,
    timeouts = timeouts(r.timeout_ms > 0 and r.timeout_ms or 10000),
  }
  local sock, status, _, map = send_request(target, r.method, r.path, r.authority, r.headers, r.body or "")
  if not sock then
    ngx.log(ngx.WARN, "aiproxy: callout to service '", r.cluster, "' failed: ", status)
    return 0, ""
  end
  local read, state = body_reader(sock, r.method, status, map)
  local parts = {}
  while true do
    local data, err = read()
    if not data then
      if err ~= "done" then
        sock:close()
        ngx.log(ngx.WARN, "aiproxy: callout to service '", r.cluster, "' failed: ", err)
        return 0, ""
      end
      break
    end
    parts[#parts + 1] = data
  end
  release(sock, state)
  return status, concat(parts)
end

local function client_headers()
  local list = {}
  local raw = ngx.req.get_headers(200, true)
  for name, value in pairs(raw) do
    local lname = lower(name)
    if type(value) == "table" then
      for _, v in ipairs(value) do
        list[#list + 1] = { lname, v }
      end
    else
      list[#list + 1] = { lname, value }
    end
  end
  return list
end

local function client_body()
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if body then
    return body
  end
  local file = ngx.req.get_body_file()
  if file then
    return read_file(file) or ""
  end
  return ""
end

-- The headers that go upstream: the client's minus hop-by-hop and the core's removals, plus the
-- core's settings.
local function upstream_headers(list, r)
  local drop = {}
  for _, name in ipairs(r.remove_headers) do
    drop[lower(name)] = true
  end
  for _, h in ipairs(r.headers) do
    drop[lower(h[1])] = true
  end
  local out = {}
  for _, h in ipairs(list) do
    if not HOP_BY_HOP[h[1]] and not drop[h[1]] then
      out[#out + 1] = h
    end
  end
  for _, h in ipairs(r.headers) do
    if not HOP_BY_HOP[lower(h[1])] then
      out[#out + 1] = { lower(h[1]), h[2] }
    end
  end
  return out
end

local function send_chunk(data)
  if data == "" then
    return true
  end
  local ok, err = ngx.print(data)
  if ok then
    ok, err = ngx.flush(true)
  end
  return ok, err
end

local function respond(ex, sock, method, status, list, map)
  local h, err = ex:on_response_headers(status, list)
  if not h then
    ngx.log(ngx.WARN, "aiproxy: response out of order: ", tostring(err))
    h = { mode = "passthrough", remove_headers = {}, headers = {} }
  end
  local read, state = body_reader(sock, method, status, map)

  local drop = {}
  for _, name in ipairs(h.remove_headers) do
    drop[lower(name)] = true
  end
  for _, one in ipairs(h.headers) do
    drop[lower(one[1])] = true
  end
  local out = {}
  for _, one in ipairs(list) do
    if not HOP_BY_HOP[one[1]] and not drop[one[1]] then
      out[#out + 1] = one
    end
  end
  for _, one in ipairs(h.headers) do
    out[#out + 1] = { lower(one[1]), one[2] }
  end

  if h.mode == "buffer" then
    -- Feed everything to the core (it keeps the body); the status comes at the end.
    while true do
      local data, rerr = read()
      if not data then
        if rerr ~= "done" then
          -- The core answers with its OpenAI-shaped 502.
          sock:close()
          ngx.log(ngx.WARN, "aiproxy: ", rerr)
          local o = ex:on_upstream_abort()
          if not o or o.unchanged then
            return error_reply(502, "upstream_error", "upstream_reset", "the upstream connection failed mid-response")
          end
          ngx.status = o.status or 502
          ngx.header["content-type"] = "application/json"
          ngx.header["content-length"] = #o.data
          free_exchange(ngx.ctx)
          ngx.print(o.data)
          return ngx.exit(ngx.status)
        end
        break
      end
      local ok, berr = ex:on_response_body(data, false)
      if not ok then
        ngx.log(ngx.WARN, "aiproxy: response out of order: ", tostring(berr))
      end
    end
    release(sock, state)
    local last, lerr = ex:on_response_body("", true)
    if not last then
      return error_reply(500, "server_error", "internal_error", "aiproxy: " .. tostring(lerr))
    end
    ngx.status = last.status or status
    set_headers(out)
    ngx.header["content-length"] = #last.data
    free_exchange(ngx.ctx)
    ngx.print(last.data)
    return ngx.exit(ngx.status)
  end

  -- STREAM and PASSTHROUGH: headers now, then every chunk as it arrives.
  ngx.status = status
  set_headers(out)
  if h.mode == "passthrough" and map["content-length"] and not drop["content-length"] then
    ngx.header["content-length"] = map["content-length"]
  end
  local ok, serr = ngx.send_headers()
  if ok then
    ok, serr = ngx.flush(true)
  end
  if not ok then
    sock:close()
    return ngx.exit(499)
  end
  local translate = h.mode == "stream"
  while true do
    local data, rerr = read()
    if not data then
      if rerr ~= "done" then
        sock:close()
        ngx.log(ngx.WARN, "aiproxy: ", rerr)
        -- STREAM: the core ends the stream with an OpenAI error event and `data: [DONE]`.
        -- PASSTHROUGH: end the client's response abruptly too (no final chunk), so the client
        -- sees a failed response rather than a complete one.
        local o = translate and ex:on_upstream_abort()
        free_exchange(ngx.ctx)
        if o and not o.unchanged then
          send_chunk(o.data)
          return ngx.exit(ngx.OK)
        end
        return ngx.exit(ngx.ERROR)
      end
      break
    end
    if translate then
      local o, berr = ex:on_response_body(data, false)
      if o then
        data = o.unchanged and data or o.data
      else
        ngx.log(ngx.WARN, "aiproxy: response out of order: ", tostring(berr))
      end
    end
    ok, serr = send_chunk(data)
    if not ok then
      sock:close()
      free_exchange(ngx.ctx)
      return ngx.exit(499)
    end
  end
  release(sock, state)
  if translate then
    local last = ex:on_response_body("", true)
    if last and not last.unchanged then
      send_chunk(last.data)
    end
  end
  free_exchange(ngx.ctx)
  return ngx.exit(ngx.OK)
end

--- content_by_lua: the whole exchange for one request.
function M.handle()
  local name = ngx.var.aiproxy_config or ""
  local cfg = configs[name]
  if not cfg then
    return error_reply(500, "server_error", "not_configured", "aiproxy: no configuration named '" .. name .. "'")
  end
  ngx.var.aiproxy_provider = providers[name]
  local ctx = ngx.ctx
  local ex, err = cfg:exchange()
  if not ex then
    return error_reply(500, "server_error", "internal_error", "aiproxy: " .. tostring(err))
  end
  ctx.aiproxy_exchange = ex
  -- A client that goes away while we wait on the upstream: free now, end the request (the main
  -- coroutine, suspended in a socket call, is never resumed).
  pcall(ngx.on_abort, function()
    free_exchange(ctx)
    return ngx.exit(499)
  end)

  local method = ngx.req.get_method()
  local uri = ngx.var.request_uri
  local headers = client_headers()
  local body = client_body()
  -- The core sees the body only when it needs it (it translates or signs it); otherwise the
  -- client's body goes upstream untouched.
  local needs_body = cfg:needs_request_body(method, uri)
  local r
  r, err = ex:on_request(method, uri, headers, needs_body == false and "" or body)
  while r and r.action == "callout" do
    local status, cbody = callout(r)
    r, err = ex:on_callout_response(status, cbody)
  end
  if not r then
    ngx.log(ngx.ERR, "aiproxy: request out of order: ", tostring(err))
    return error_reply(500, "server_error", "internal_error", "aiproxy: " .. tostring(err))
  end
  if r.model ~= "" then
    ngx.var.aiproxy_model = r.model
  end
  if r.action == "local_reply" then
    free_exchange(ctx)
    return local_reply(r)
  end

  local host, port, tls
  if opts.upstream then
    host, port = hostport(opts.upstream)
    tls = opts.upstream_tls == true
  else
    host, port = split_authority(r.authority, 443)
    tls = port == 443
  end
  local authority_host = split_authority(r.authority, 443)
  local target = {
    host = host,
    port = port,
    tls = tls,
    sni = authority_host,
    timeouts = timeouts(opts.timeout_ms or 120000),
  }
  local sock, status, list, map = send_request(
    target,
    method,
    r.path,
    r.authority,
    upstream_headers(headers, r),
    r.body or body
  )
  if not sock then
    ngx.log(ngx.WARN, "aiproxy: ", status)
    local timed_out = tostring(status):find("timeout", 1, true)
    return error_reply(
      timed_out and 504 or 502,
      "upstream_error",
      timed_out and "upstream_timeout" or "upstream_unavailable",
      timed_out and "the upstream did not answer in time" or "the upstream is not reachable"
    )
  end
  return respond(ex, sock, method, status, list, map)
end

--- log_by_lua: releases whatever the request still holds (also after a client abort).
function M.log()
  free_exchange(ngx.ctx)
end

return M
