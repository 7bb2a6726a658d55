-- The seed config of SPEC §2, written the way an operator writes it today: an inline
-- envoy_on_request/envoy_on_response pair in an EnvoyFilter (envoy.filters.http.lua) on
-- istio-ingressgateway. This is the baseline canary-tagger is benchmarked against in
-- bench/run.sh ("lua" variant); it makes the same decisions for the benchmark's requests.
--
-- Deliberate operator-style shortcuts (each one makes the Lua *cheaper* than the spec, so
-- the comparison flatters Lua, not canary-tagger):
--   * Lua has no regular expressions: the ".*Chrome.*" regex becomes a plain substring find.
--   * 64-bit FNV-1a + fmix64 is awkward in LuaJIT: the 50/50 split uses djb2 over
--     "salt:key" mod 10000 instead. Same kind of work (hash the key, pick a bucket),
--     different buckets than canary-tagger.
--   * IPv6 CIDR 2001:db8::/32 is a string-prefix test; IPv4 CIDRs are real mask arithmetic.
--   * No counters/metrics, no sticky-cookie generation (the seed's split key chain ends in
--     source_ip, which is always present, so the sticky cookie never fires for it anyway).

local TAG = "x-canary-version"
local VERSIONS = { v1 = true, v2 = true, v3 = true }
local DEFAULT_VERSION = "v1"
local GRPCSVC_ALLOWED = { v1 = true, v2 = true, v3 = true, v4 = true }
local TRUSTED_HOPS = 1

-- "a.b.c.d" -> 32-bit number, or nil
local function ipv4_to_number(ip)
  local a, b, c, d = ip:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then return nil end
  a, b, c, d = tonumber(a), tonumber(b), tonumber(c), tonumber(d)
  if a > 255 or b > 255 or c > 255 or d > 255 then return nil end
  return ((a * 256 + b) * 256 + c) * 256 + d
end

local function in_ipv4_cidr(ip, base, bits)
  local n = ipv4_to_number(ip)
  if not n then return false end
  local size = 2 ^ (32 - bits)
  return math.floor(n / size) == math.floor(base / size)
end

local OFFICE_V4 = ipv4_to_number("192.168.0.58")
local TRUSTED_TAG_V4 = ipv4_to_number("10.20.0.0")

local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

-- Client IP: x-forwarded-for, skipping TRUSTED_HOPS entries from the right (Envoy has
-- already appended the peer); fall back to the peer address.
local function client_ip(request_handle, headers)
  local xff = headers:get("x-forwarded-for")
  if xff then
    local entries = {}
    for entry in xff:gmatch("[^,]+") do
      entries[#entries + 1] = trim(entry)
    end
    local pick = entries[#entries - TRUSTED_HOPS]
    if pick and pick ~= "" then
      return pick
    end
  end
  local peer = request_handle:streamInfo():downstreamDirectRemoteAddress()
  local v6 = peer:match("^%[(.*)%]:%d+$")
  if v6 then return v6 end
  return (peer:gsub(":%d+$", ""))
end

local function cookie(headers, name)
  local raw = headers:get("cookie")
  if not raw then return nil end
  for k, v in raw:gmatch("([^;%s=]+)=([^;]*)") do
    if k == name then return trim(v) end
  end
  return nil
end

local function query(path, name)
  local q = path:match("%?(.*)$")
  if not q then return nil end
  for k, v in q:gmatch("([^&=]+)=([^&]*)") do
    if k == name then return v end
  end
  return nil
end

-- djb2 over "salt:key", bucket 0..9999
local function bucket(salt, key)
  local s = salt .. ":" .. key
  local h = 5381
  for i = 1, #s do
    h = (h * 33 + s:byte(i)) % 4294967296
  end
  return h % 10000
end

local function decide(request_handle, headers, ip)
  -- testers: cookie user=tester -> v2
  if cookie(headers, "user") == "tester" then return "v2" end

  -- office: 192.168.0.58/32 or 2001:db8::/32 -> v3
  if in_ipv4_cidr(ip, OFFICE_V4, 32) or ip:lower():match("^2001:0*db8:") then
    return "v3"
  end

  -- chrome: user-agent ~ .*Chrome.* -> v2
  local ua = headers:get("user-agent") or ""
  if ua:find("Chrome", 1, true) then return "v2" end

  -- pick: grpcsvc present and a known version -> that version
  local grpcsvc = headers:get("grpcsvc")
  if grpcsvc and VERSIONS[grpcsvc] then return grpcsvc end

  -- android: UA contains Android and not ?beta=0 -> 50/50 by uid cookie / x-user-id / ip
  if ua:find("Android", 1, true) and query(headers:get(":path") or "", "beta") ~= "0" then
    local key = cookie(headers, "uid") or headers:get("x-user-id") or ip
    if bucket("android", key) < 5000 then return "v2" end
    return "v1"
  end

  return DEFAULT_VERSION
end

function envoy_on_request(request_handle)
  local headers = request_handle:headers()
  local ip = client_ip(request_handle, headers)

  -- spoof guard: keep a client-sent tag only from 10.20.0.0/16 and only if it is known
  local sent = headers:get(TAG)
  local version
  if sent then
    if in_ipv4_cidr(ip, TRUSTED_TAG_V4, 16) and VERSIONS[sent] then
      version = sent
    else
      headers:remove(TAG)
    end
  end

  -- normalize grpcsvc for gRPC requests (SEEDS.md setup A)
  local ct = headers:get("content-type")
  if ct and ct:sub(1, 16) == "application/grpc" then
    if not GRPCSVC_ALLOWED[headers:get("grpcsvc") or ""] then
      headers:replace("grpcsvc", "v1")
    end
  end

  if not version then
    version = decide(request_handle, headers, ip)
    headers:replace(TAG, version)
  end

  -- W3C baggage: add or replace the canary-version member, keep the others
  local baggage = headers:get("baggage")
  local member = "canary-version=" .. version
  if baggage and baggage ~= "" then
    local kept = {}
    for m in baggage:gmatch("[^,]+") do
      m = trim(m)
      if m ~= "" and not m:match("^canary%-version%s*=") then kept[#kept + 1] = m end
    end
    kept[#kept + 1] = member
    headers:replace("baggage", table.concat(kept, ","))
  else
    headers:replace("baggage", member)
  end

  request_handle:streamInfo():dynamicMetadata():set("canary", "version", version)
end

function envoy_on_response(response_handle)
  local meta = response_handle:streamInfo():dynamicMetadata():get("canary")
  if meta and meta["version"] then
    response_handle:headers():add(TAG, meta["version"])
  end
end
