-- `me` with a valid session (bearer token of the seeded user).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "common.lua")
graphql("{ me { id email permissions } }", { auth = true })
