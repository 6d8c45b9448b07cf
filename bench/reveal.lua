-- POST /v1/detokenize with batches of 100 tokens, cycling through a token file
-- (one JSON batch body per line, written by run.sh), with Bearer auth.
local bodies = {}
local i = 0
function init(args)
  local f = assert(io.open(args[1], "r"))
  for line in f:lines() do bodies[#bodies + 1] = line end
  f:close()
  i = math.random(0, #bodies - 1)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. args[2]
end
function request()
  i = i % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
