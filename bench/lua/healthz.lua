-- GET /healthz: the ceiling every other operation is compared with.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "common.lua")
wrk.method = "GET"
wrk.path = "/healthz"
