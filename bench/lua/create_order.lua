-- `createOrder`: one new order per request.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "common.lua")
graphql(
   "mutation($input: CreateOrderInput!) { createOrder(input: $input) { id status } }",
   { auth = true, variables = '{"input":{"fromCurrency":"USD","toCurrency":"UAH","amount":"10"}}' }
)
