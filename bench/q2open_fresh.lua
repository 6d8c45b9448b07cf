-- POST the q2open card example with a fresh Luhn-valid 424242-BIN card number on
-- every request (path 4: the tokenizing route, new record + durable write each time).
local counter = 0
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  -- A different sequence per thread and per run.
  math.randomseed(os.time() * 1000 + (tid or 0) * 7919 + math.floor(os.clock() * 1e6))
end

local function luhn_check_digit(body)
  -- body: 15 digits; the check digit makes the 16-digit number Luhn-valid.
  local sum = 0
  local double = true
  for i = #body, 1, -1 do
    local d = string.byte(body, i) - 48
    if double then
      d = d * 2
      if d > 9 then d = d - 9 end
    end
    sum = sum + d
    double = not double
  end
  return (10 - (sum % 10)) % 10
end

function fresh_card()
  local body = string.format("424242%09d", math.random(0, 999999999))
  return body .. luhn_check_digit(body)
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function request()
  local body = '{"clientId":"56e1ddbd1a05319bc198d36f","paymentType":"card",'
    .. '"identifier":"optional_custom_identifier","cardNumber":"' .. fresh_card()
    .. '","cardCode":"' .. string.format("%03d", math.random(0, 999))
    .. '","expMonth":"10","expYear":"2030","zipcode":"12345","name":"Bench User",'
    .. '"setAsDefault":true,"customLabel":"Entertainment Rewards Card"}'
  return wrk.format(nil, nil, nil, body)
end
