-- POST the q2open card example with the same card every time and no CVV (path 5:
-- the deterministic lookup path, no new record, no fsync). Without the CVV because a
-- 3-digit CVV token is unique only within its card's scope: one card can hold at most
-- 1,000 live CVV tokens (for the CVV TTL, one hour by default), so the same card sent
-- more often than that is refused with token_space_exhausted, by design.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"clientId":"56e1ddbd1a05319bc198d36f","paymentType":"card",'
  .. '"identifier":"optional_custom_identifier","cardNumber":"4242424242424242",'
  .. '"expMonth":"10","expYear":"2030","zipcode":"12345",'
  .. '"name":"Bench User","setAsDefault":true,"customLabel":"Entertainment Rewards Card"}'
