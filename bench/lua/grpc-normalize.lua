-- SEEDS.md setup A, the script canary-tagger replaces, as operators write it: an inline
-- envoy_on_request in an EnvoyFilter on istio-ingressgateway, inserted before the router.
-- A gRPC request (content-type mentions grpc) whose `grpcsvc` header is missing or is not
-- one of the installed versions v1..v4 gets `grpcsvc: v1`, so the VirtualService's
-- per-version header routes always match. Everything else passes untouched.
--
-- bench/envoy_bench.py runs it as the "lua-grpc" variant against canary-tagger with
-- envoyfilter/grpc-normalize/plugin-config.json ("canary-grpc"). Two header reads, at most
-- one replace; no tag header, no counters.

local INSTALLED = { v1 = true, v2 = true, v3 = true, v4 = true }

function envoy_on_request(request_handle)
  local headers = request_handle:headers()
  local content_type = headers:get("content-type")
  if content_type == nil or not string.find(content_type, "grpc", 1, true) then
    return
  end
  if not INSTALLED[headers:get("grpcsvc") or ""] then
    headers:replace("grpcsvc", "v1")
  end
end
