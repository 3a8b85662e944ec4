-- First page of `myOrders` for the seeded user with 200 orders.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "common.lua")
graphql("{ myOrders(first: 20) { edges { node { id amount status } } } }", { auth = true })
