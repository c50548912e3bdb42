-- LuaJIT FFI binding of libaiproxy (include/aiproxy.h).
--
--   local aiproxy = require("aiproxy")
--   local cfg = assert(aiproxy.config('{"provider": {"type": "openai", "apiTokens": ["sk-..."]}}'))
--   local ex = assert(cfg:exchange())
--   local r = assert(ex:on_request("POST", "/v1/chat/completions", {{"content-type", "application/json"}}, body))
--   -- r.action == "forward" | "local_reply" | "callout"
--   local h = assert(ex:on_response_headers(200, upstream_headers))   -- h.mode
--   local out = assert(ex:on_response_body(chunk, false))             -- out.data / out.unchanged
--   ex:free()
--
-- Every result is copied into Lua strings and tables, so it stays valid after later calls.
-- Handles are freed by :free() (idempotent) and, as a fallback, by the garbage collector.
-- Errors are returned as `nil, err` where err = {code = n, message = "...", field = "..."}
-- (tostring(err) gives the message); API keys never appear in them.
--
-- The library is loaded from, in order: the `lib` argument of aiproxy.load(), $AIPROXY_LIB,
-- <repo>/target/release/libaiproxy.so next to this file (an in-repository checkout), the system
-- loader's libaiproxy.so.0 / libaiproxy.so (scripts/install.sh). Its version must match this
-- module's major.minor.

local ffi = require("ffi")

local M = { VERSION = "0.1.0" }

ffi.cdef([[
typedef struct AiproxyConfig AiproxyConfig;
typedef struct AiproxyError AiproxyError;
typedef struct AiproxyExchange AiproxyExchange;
/* `const char *` where the header says `const uint8_t *`: same ABI, and LuaJIT passes Lua
   strings to char pointers without a copy. */
typedef struct { const char *ptr; size_t len; } AiproxyStr;
typedef struct { AiproxyStr name; AiproxyStr value; } AiproxyHeader;
typedef struct {
  int32_t action;
  uint16_t status;
  AiproxyStr authority;
  AiproxyStr path;
  const AiproxyStr *remove_headers;
  size_t remove_headers_len;
  const AiproxyHeader *headers;
  size_t headers_len;
  bool body_replaced;
  AiproxyStr body;
  AiproxyStr model;
  AiproxyStr callout_cluster;
  uint16_t callout_port;
  AiproxyStr callout_method;
  uint64_t timeout_ms;
} AiproxyRequestResult;
typedef struct {
  int32_t mode;
  const AiproxyStr *remove_headers;
  size_t remove_headers_len;
  const AiproxyHeader *headers;
  size_t headers_len;
} AiproxyResponseHeadersResult;
typedef struct { bool unchanged; AiproxyStr data; uint16_t status; } AiproxyBodyResult;
typedef struct {
  bool present;
  uint64_t prompt_tokens;
  uint64_t completion_tokens;
  uint64_t total_tokens;
} AiproxyUsage;

const char *aiproxy_version(void);
AiproxyConfig *aiproxy_config_new(const char *json, size_t len, AiproxyError **err);
void aiproxy_config_free(AiproxyConfig *cfg);
int32_t aiproxy_config_translates(const AiproxyConfig *cfg, const char *method, size_t method_len,
    const char *path, size_t path_len, bool *out, AiproxyError **err);
int32_t aiproxy_config_needs_request_body(const AiproxyConfig *cfg, const char *method,
    size_t method_len, const char *path, size_t path_len, bool *out, AiproxyError **err);
AiproxyExchange *aiproxy_exchange_new(const AiproxyConfig *cfg, AiproxyError **err);
void aiproxy_exchange_free(AiproxyExchange *ex);
int32_t aiproxy_exchange_on_request(AiproxyExchange *ex, const char *method, size_t method_len,
    const char *path, size_t path_len, const AiproxyHeader *headers, size_t headers_len,
    const char *body, size_t body_len, AiproxyRequestResult *out, AiproxyError **err);
int32_t aiproxy_exchange_on_callout_response(AiproxyExchange *ex, uint16_t status,
    const char *body, size_t body_len, AiproxyRequestResult *out, AiproxyError **err);
int32_t aiproxy_exchange_on_response_headers(AiproxyExchange *ex, uint16_t status,
    const AiproxyHeader *headers, size_t headers_len, AiproxyResponseHeadersResult *out,
    AiproxyError **err);
int32_t aiproxy_exchange_on_response_body(AiproxyExchange *ex, const char *chunk, size_t chunk_len,
    bool end_of_stream, AiproxyBodyResult *out, AiproxyError **err);
int32_t aiproxy_exchange_on_upstream_abort(AiproxyExchange *ex, AiproxyBodyResult *out,
    AiproxyError **err);
int32_t aiproxy_exchange_usage(const AiproxyExchange *ex, AiproxyUsage *out);
int32_t aiproxy_error_code(const AiproxyError *err);
const char *aiproxy_error_message(const AiproxyError *err);
const char *aiproxy_error_field(const AiproxyError *err);
void aiproxy_error_free(AiproxyError *err);
]])

M.OK = 0
M.ERR_NULL_POINTER = 1
M.ERR_INVALID_UTF8 = 2
M.ERR_CONFIG_JSON = 3
M.ERR_CONFIG_INVALID = 4
M.ERR_BAD_STATE = 5
M.ERR_INTERNAL = 6
M.ERR_INVALID_ARGUMENT = 7

local ACTIONS = { [0] = "forward", [1] = "local_reply", [2] = "callout" }
local MODES = { [0] = "passthrough", [1] = "stream", [2] = "buffer" }

local C -- the loaded library
local lib_path

local function here()
  local src = debug.getinfo(1, "S").source
  return (src:sub(1, 1) == "@" and src:sub(2):match("^(.*)/[^/]*$")) or "."
end

local function file_exists(path)
  local f = io.open(path, "rb")
  if f then
    f:close()
    return true
  end
  return false
end

local function major_minor(v)
  return (tostring(v or ""):match("^(%d+%.%d+)"))
end

--- Loads the library (once); returns the library or nil, message.
function M.load(lib)
  if C then
    return C
  end
  local candidates = {}
  if lib and lib ~= "" then
    candidates[#candidates + 1] = lib
  else
    local env = os.getenv("AIPROXY_LIB")
    if env and env ~= "" then
      candidates[#candidates + 1] = env
    else
      local in_repo = here() .. "/../../target/release/libaiproxy.so"
      if file_exists(in_repo) then
        candidates[#candidates + 1] = in_repo
      end
      candidates[#candidates + 1] = "libaiproxy.so.0"
      candidates[#candidates + 1] = "aiproxy"
    end
  end
  local errors = {}
  for _, path in ipairs(candidates) do
    local ok, loaded = pcall(ffi.load, path)
    if ok then
      local version = ffi.string(loaded.aiproxy_version())
      if major_minor(version) ~= major_minor(M.VERSION) then
        return nil, ("%s is libaiproxy %s; this binding needs %s"):format(path, version, M.VERSION)
      end
      C, lib_path = loaded, path
      return C
    end
    errors[#errors + 1] = tostring(loaded)
  end
  return nil, "cannot load libaiproxy: " .. table.concat(errors, "; ")
end

local function lib()
  if C then
    return C
  end
  local loaded, err = M.load()
  if not loaded then
    error(err, 3)
  end
  return loaded
end

--- The version of the loaded library, and where it was loaded from.
function M.version()
  return ffi.string(lib().aiproxy_version()), lib_path
end

local Error = {}
Error.__index = Error
Error.__tostring = function(e)
  return e.message -- the core's messages already name the field
end

local function take_error(L, rc, errp)
  local e = errp[0]
  if e == nil then
    return setmetatable({ code = rc, message = "aiproxy call failed with code " .. tostring(rc), field = "" }, Error)
  end
  local out = setmetatable({
    code = tonumber(L.aiproxy_error_code(e)),
    message = ffi.string(L.aiproxy_error_message(e)),
    field = ffi.string(L.aiproxy_error_field(e)),
  }, Error)
  L.aiproxy_error_free(e)
  errp[0] = nil
  return out
end

local function str(s)
  if s.len == 0 or s.ptr == nil then
    return ""
  end
  return ffi.string(s.ptr, s.len)
end

local function names(ptr, n)
  local out = {}
  for i = 0, tonumber(n) - 1 do
    out[i + 1] = str(ptr[i])
  end
  return out
end

local function pairs_of(ptr, n)
  local out = {}
  for i = 0, tonumber(n) - 1 do
    out[i + 1] = { str(ptr[i].name), str(ptr[i].value) }
  end
  return out
end

-- Headers in: a list of {name, value} pairs, or a map name -> value | {values}. Returns the
-- array, its length and a table keeping the strings alive for the call.
local function header_array(headers)
  if not headers then
    return nil, 0
  end
  local flat = {}
  if headers[1] ~= nil then
    for _, h in ipairs(headers) do
      flat[#flat + 1] = tostring(h[1])
      flat[#flat + 1] = tostring(h[2])
    end
  else
    for k, v in pairs(headers) do
      if type(v) == "table" then
        for _, one in ipairs(v) do
          flat[#flat + 1] = tostring(k)
          flat[#flat + 1] = tostring(one)
        end
      else
        flat[#flat + 1] = tostring(k)
        flat[#flat + 1] = tostring(v)
      end
    end
  end
  local n = #flat / 2
  if n == 0 then
    return nil, 0
  end
  local arr = ffi.new("AiproxyHeader[?]", n)
  for i = 0, n - 1 do
    local name, value = flat[2 * i + 1], flat[2 * i + 2]
    arr[i].name.ptr, arr[i].name.len = name, #name
    arr[i].value.ptr, arr[i].value.len = value, #value
  end
  return arr, n, flat
end

local function request_result(r)
  local action = ACTIONS[tonumber(r.action)] or "unknown"
  local out = { action = action, model = str(r.model) }
  if action == "forward" then
    out.authority = str(r.authority)
    out.path = str(r.path)
    out.remove_headers = names(r.remove_headers, r.remove_headers_len)
    out.headers = pairs_of(r.headers, r.headers_len)
    if r.body_replaced then
      out.body = str(r.body)
    end
  elseif action == "local_reply" then
    out.status = tonumber(r.status)
    out.headers = pairs_of(r.headers, r.headers_len)
    out.body = str(r.body)
  elseif action == "callout" then
    out.authority = str(r.authority)
    out.path = str(r.path)
    out.headers = pairs_of(r.headers, r.headers_len)
    out.cluster = str(r.callout_cluster)
    out.port = tonumber(r.callout_port)
    out.method = str(r.callout_method)
    -- Empty for a GET; a Vertex service account's token exchange is a form-encoded POST.
    out.body = str(r.body)
    out.timeout_ms = tonumber(r.timeout_ms)
  end
  return out
end

-- Scratch result structures, reused by every call of this Lua state (NGINX runs one Lua state
-- per worker, single-threaded; results are copied out before the next call).
local req_out = ffi.new("AiproxyRequestResult[1]")
local hdr_out = ffi.new("AiproxyResponseHeadersResult[1]")
local body_out = ffi.new("AiproxyBodyResult[1]")
local usage_out = ffi.new("AiproxyUsage[1]")
local errp = ffi.new("AiproxyError*[1]")
local bool_out = ffi.new("bool[1]")

local Config = {}
Config.__index = Config
local Exchange = {}
Exchange.__index = Exchange

--- Loads a configuration (the plugin's `{"provider": {...}}` JSON text).
function M.config(json)
  local L = lib()
  json = tostring(json)
  local h = L.aiproxy_config_new(json, #json, errp)
  if h == nil then
    return nil, take_error(L, M.ERR_CONFIG_INVALID, errp)
  end
  return setmetatable({ h = ffi.gc(h, L.aiproxy_config_free) }, Config)
end

function Config:free()
  local h = self.h
  if h ~= nil then
    self.h = nil
    ffi.gc(h, nil)
    C.aiproxy_config_free(h)
  end
end

local function config_question(self, fn, method, path)
  if self.h == nil then
    return nil, setmetatable({ code = M.ERR_NULL_POINTER, message = "config is freed", field = "" }, Error)
  end
  local rc = fn(self.h, method, #method, path, #path, bool_out, errp)
  if rc ~= 0 then
    return nil, take_error(C, rc, errp)
  end
  return bool_out[0]
end

--- Whether the core translates requests with this method and path (reads and rewrites the body).
function Config:translates(method, path)
  return config_question(self, C.aiproxy_config_translates, method, path)
end

--- Whether the core needs this request's body before it decides (false: on_request may get "").
function Config:needs_request_body(method, path)
  return config_question(self, C.aiproxy_config_needs_request_body, method, path)
end

--- A new exchange (one client request and its response).
function Config:exchange()
  if self.h == nil then
    return nil, setmetatable({ code = M.ERR_NULL_POINTER, message = "config is freed", field = "" }, Error)
  end
  local h = C.aiproxy_exchange_new(self.h, errp)
  if h == nil then
    return nil, take_error(C, M.ERR_INTERNAL, errp)
  end
  return setmetatable({ h = ffi.gc(h, C.aiproxy_exchange_free) }, Exchange)
end

local function closed()
  return nil, setmetatable({ code = M.ERR_NULL_POINTER, message = "exchange is freed", field = "" }, Error)
end

function Exchange:free()
  local h = self.h
  if h ~= nil then
    self.h = nil
    ffi.gc(h, nil)
    C.aiproxy_exchange_free(h)
  end
end

function Exchange:on_request(method, path, headers, body)
  if self.h == nil then
    return closed()
  end
  body = body or ""
  local arr, n, keep = header_array(headers)
  local rc = C.aiproxy_exchange_on_request(self.h, method, #method, path, #path, arr, n, body, #body, req_out, errp)
  local _ = keep
  if rc ~= 0 then
    return nil, take_error(C, rc, errp)
  end
  return request_result(req_out[0])
end

function Exchange:on_callout_response(status, body)
  if self.h == nil then
    return closed()
  end
  body = body or ""
  local rc = C.aiproxy_exchange_on_callout_response(self.h, status, body, #body, req_out, errp)
  if rc ~= 0 then
    return nil, take_error(C, rc, errp)
  end
  return request_result(req_out[0])
end

function Exchange:on_response_headers(status, headers)
  if self.h == nil then
    return closed()
  end
  local arr, n, keep = header_array(headers)
  local rc = C.aiproxy_exchange_on_response_headers(self.h, status, arr, n, hdr_out, errp)
  local _ = keep
  if rc ~= 0 then
    return nil, take_error(C, rc, errp)
  end
  local r = hdr_out[0]
  return {
    mode = MODES[tonumber(r.mode)] or "passthrough",
    remove_headers = names(r.remove_headers, r.remove_headers_len),
    headers = pairs_of(r.headers, r.headers_len),
  }
end

--- One upstream body chunk. Returns {unchanged = bool, data = string, status = n|nil}.
function Exchange:on_response_body(chunk, end_of_stream)
  if self.h == nil then
    return closed()
  end
  chunk = chunk or ""
  local rc = C.aiproxy_exchange_on_response_body(self.h, chunk, #chunk, end_of_stream and true or false, body_out, errp)
  if rc ~= 0 then
    return nil, take_error(C, rc, errp)
  end
  local r = body_out[0]
  local status = tonumber(r.status)
  return { unchanged = r.unchanged, data = r.unchanged and "" or str(r.data), status = status ~= 0 and status or nil }
end

--- The upstream failed before its body ended: what to send to end the client's response
--- ({unchanged, data, status} as for on_response_body; status 502 in BUFFER mode).
function Exchange:on_upstream_abort()
  if self.h == nil then
    return closed()
  end
  local rc = C.aiproxy_exchange_on_upstream_abort(self.h, body_out, errp)
  if rc ~= 0 then
    return nil, take_error(C, rc, errp)
  end
  local r = body_out[0]
  local status = tonumber(r.status)
  return { unchanged = r.unchanged, data = r.unchanged and "" or str(r.data), status = status ~= 0 and status or nil }
end

--- Token usage so far: {prompt_tokens, completion_tokens, total_tokens} or nil when none.
function Exchange:usage()
  if self.h == nil then
    return nil
  end
  if C.aiproxy_exchange_usage(self.h, usage_out) ~= 0 or not usage_out[0].present then
    return nil
  end
  local u = usage_out[0]
  return {
    prompt_tokens = tonumber(u.prompt_tokens),
    completion_tokens = tonumber(u.completion_tokens),
    total_tokens = tonumber(u.total_tokens),
  }
end

return M
