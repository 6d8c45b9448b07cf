-- POST a Plano "sensitive params" body: base64 of JSON, fresh card per request.
local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  math.randomseed(os.time() * 1000 + (tid or 0) * 104729 + math.floor(os.clock() * 1e6) + 17)
end

local function luhn_check_digit(body)
  local sum, double = 0, true
  for i = #body, 1, -1 do
    local d = string.byte(body, i) - 48
    if double then d = d * 2; if d > 9 then d = d - 9 end end
    sum = sum + d
    double = not double
  end
  return (10 - (sum % 10)) % 10
end

local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function b64(s)
  local out = {}
  local bit = require("bit")
  for i = 1, #s, 3 do
    local a, b, c = string.byte(s, i, i + 2)
    local n = bit.bor(bit.lshift(a, 16), bit.lshift(b or 0, 8), c or 0)
    local c1 = bit.band(bit.rshift(n, 18), 63) + 1
    local c2 = bit.band(bit.rshift(n, 12), 63) + 1
    local c3 = bit.band(bit.rshift(n, 6), 63) + 1
    local c4 = bit.band(n, 63) + 1
    out[#out + 1] = alphabet:sub(c1, c1) .. alphabet:sub(c2, c2)
      .. (b and alphabet:sub(c3, c3) or "=") .. (c and alphabet:sub(c4, c4) or "=")
  end
  return table.concat(out)
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "text/plain"

function request()
  local card = string.format("424242%09d", math.random(0, 999999999))
  card = card .. luhn_check_digit(card)
  local json = '{"payment_method":{"name_on_card":"Bench User","card_number":"' .. card
    .. '","cvc":"' .. string.format("%03d", math.random(0, 999))
    .. '","exp_month":12,"exp_year":2030,"street":"1 Demo St","city":"Denver",'
    .. '"province_iso":"us_co","postal_code":"80202"},"token":"bench-session-token",'
    .. '"application":"planoauth"}'
  return wrk.format(nil, nil, nil, b64(json))
end
