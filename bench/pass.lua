-- POST a body the size and shape of the q2open example, with no card number in it (the
-- digits fail the Luhn check), to the direct, nginx and vaultgate pass-through paths,
-- so that every path moves the same bytes and the streaming guard scans and passes it.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"clientId":"56e1ddbd1a05319bc198d36f","paymentType":"card",'
  .. '"identifier":"optional_custom_identifier","cardNumber":"4242424242424241",'
  .. '"cardCode":"218","expMonth":"10","expYear":"2030","zipcode":"12345",'
  .. '"name":"Bench User","setAsDefault":true,"customLabel":"Entertainment Rewards Card"}'
