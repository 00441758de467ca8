-- wrk script for deploy/bench/jwt.sh: every request carries the next token of a file (one
-- per line), in rotation, as "Authorization: Bearer ...", so that with more distinct tokens
-- than gatehouse's per-worker cache holds (4096) nearly every request is a cache miss.
--
--   wrk -s jwt_rotate.lua http://127.0.0.1:PORT/hs/bench -- TOKENS_FILE
--
-- The requests are formatted once, in init, so the per-request cost on wrk's side is a
-- table lookup (wrk shares a CPU with the upstream).
local requests, n, i = {}, 0, 0

function init(args)
   local file = assert(args[1], "usage: wrk -s jwt_rotate.lua URL -- TOKENS_FILE")
   for token in io.lines(file) do
      if token ~= "" then
         n = n + 1
         requests[n] = wrk.format(nil, nil, { ["Authorization"] = "Bearer " .. token })
      end
   end
   assert(n > 0, "no token in " .. file)
   i = math.random(n) - 1 -- threads start at different places
end

function request()
   i = i + 1
   if i > n then i = 1 end
   return requests[i]
end
