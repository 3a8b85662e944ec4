-- `login` with the seeded user's correct password ($BENCH_EMAIL / $BENCH_PASSWORD).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "common.lua")
graphql(
   "mutation($input: LoginInput!) { login(input: $input) { token } }",
   { variables = '{"input":{"email":' .. env_json("BENCH_EMAIL")
                 .. ',"password":' .. env_json("BENCH_PASSWORD") .. "}}" }
)
