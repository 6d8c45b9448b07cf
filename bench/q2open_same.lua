-- POST the q2open card example with the same card and CVV every time, unchanged,
-- to the direct, nginx and vaultgate pass-through paths (1-3), so that every path
-- moves the same bytes.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"clientId":"56e1ddbd1a05319bc198d36f","paymentType":"card",'
  .. '"identifier":"optional_custom_identifier","cardNumber":"4242424242424242",'
  .. '"cardCode":"218","expMonth":"10","expYear":"2030","zipcode":"12345",'
  .. '"name":"Bench User","setAsDefault":true,"customLabel":"Entertainment Rewards Card"}'
