"""Crafted requests for the vaultgate red-team harness."""
import base64, gzip, json, re, zlib

PANS = ['4242424242424242', '4111111111111111', '5555555555554444', '378282246310005', '6011111111111117']
CVVS = ['218', '1234', '123']
BANKS = ['000123456789', 'DE89370400440532013000', '9900000002']
PAN = PANS[0]
RULES_PATH_RE = re.compile(r'^(/v1/payment|/brm/paymentmethods/[^/]+/paymentmethod|/accounts/[^/]+/paymentinfo|/payment-methods|/hdr/accounts/[^/]+/paymentinfo)$')

P = {'q2': '/v1/payment', 'brm': '/brm/paymentMethods/v1/paymentMethod', 'hw': '/accounts/42/paymentInfo',
     'pm': '/payment-method', 'plano': '/payment-methods', 'pt': '/pt/a/b', 'hwh': '/hdr/accounts/42/paymentInfo'}
JSON_CT = ('Content-Type', 'application/json')
FORM_CT = ('Content-Type', 'application/x-www-form-urlencoded')

def enc(b):
    return b if isinstance(b, bytes) else b.encode('utf-8')

def http(method, path, headers=(), body=b'', version='HTTP/1.1', cl=True, host='127.0.0.1', close=True):
    body = enc(body)
    def build(rid):
        h = [('Host', host)] if host is not None else []
        h += list(headers) + [('x-rt-id', rid)]
        if close:
            h.append(('Connection', 'close'))
        if cl and body is not None:
            h.append(('Content-Length', str(len(body))))
        head = '%s %s %s\r\n' % (method, path, version) + ''.join('%s: %s\r\n' % kv for kv in h) + '\r\n'
        return head.encode('latin1') + (body or b'')
    return build

CASES = []

def case(name, cat, build, **kw):
    d = {'name': name, 'cat': cat, 'build': build}
    d.update(kw)
    CASES.append(d)

def jpost(name, cat, route, text, headers=(JSON_CT,), **kw):
    case(name, cat, http('POST', P[route], headers, text), rules=route in ('q2', 'brm', 'hw', 'plano', 'hwh'), **kw)

def q2card(pan=PAN, cvv='218', pt='card'):
    return {"clientId": "56e1ddbd1a05319bc198d36f", "paymentType": pt, "cardNumber": pan, "cardCode": cvv, "expMonth": "10", "expYear": "2030"}

def q2bank(acct='000123456789'):
    return {"clientId": "56e1ddbd1a05319bc198d36f", "paymentType": "bank", "routingNumber": "021000021", "accountNumber": acct, "accountType": "checking"}

def brm(acct='DE89370400440532013000'):
    return {"type": "bankAccountDebit", "name": "n", "details": {"accountNumber": acct, "accountNumberType": "Checking"}}

def hw(acct=PAN, cvv='218', t='credit_card'):
    return {"paymentInfoType": t, "accountNumber": acct, "cardHolderName": "A B", "expirationDate": "2030-1", "verificationNumber": cvv}

def hwdd(acct='000123456789'):
    return {"paymentInfoType": "direct_debit", "accountNumber": acct, "routingNumber": "021000021"}

def plano_json(pan=PAN, cvc='218'):
    return {"payment_method": {"card_number": pan, "cvc": cvc, "exp_month": 1, "exp_year": 2030}, "token": "t"}

def subst(v):
    if v == '218':
        return 'DE89370400440532013000'
    if isinstance(v, list):
        return [subst(x) for x in v]
    if isinstance(v, dict):
        return {k: subst(x) for k, x in v.items()}
    return v

def b64(s):
    return base64.b64encode(enc(s)).decode()

def dumps(o):
    return json.dumps(o, separators=(',', ':'), ensure_ascii=False)

def build_cases():
    CASES.clear()
    # ---------- baselines ----------
    jpost('base_q2card', 'baseline', 'q2', dumps(q2card()))
    jpost('base_q2bank', 'baseline', 'q2', dumps(q2bank()))
    jpost('base_brm', 'baseline', 'brm', dumps(brm()))
    jpost('base_brm_plain', 'baseline', 'brm', dumps(brm('000123456789')))
    jpost('base_hw', 'baseline', 'hw', dumps(hw()))
    jpost('base_hwdd', 'baseline', 'hw', dumps(hwdd()))
    jpost('base_pm_pan', 'baseline', 'pm', dumps({"customerId": "c", "last4": "4242", "note": PAN}))
    jpost('base_plano_json', 'baseline', 'plano', b64(dumps(plano_json())), headers=(('Content-Type', 'text/plain'),))
    jpost('base_plano_form', 'baseline', 'plano', b64('payment_method[card_number]=%s&payment_method[cvc]=218&token=t' % PAN), headers=(('Content-Type', 'text/plain'),))
    jpost('base_pt_body', 'baseline', 'pt', dumps({"n": PAN}))
    case('base_pt_query', 'baseline', http('GET', '/pt/a/b?n=' + PAN))

    # ---------- JSON key spellings ----------
    keyvars = {
        'esc1': r'\u0063ardCode', 'escU': r'card\u0043ode', 'escall': ''.join('\\u%04x' % ord(c) for c in 'cardCode'),
        'upper': 'CARDCODE', 'lower': 'cardcode', 'snake': 'card_code', 'kebab': 'card-code', 'space': 'card code',
        'trail_sp': 'cardCode ', 'lead_sp': ' cardCode', 'tab': 'cardCode\\t', 'nul': 'cardCode\\u0000',
        'zwsp': 'card\u200bCode', 'zwsp_esc': 'card\\u200bCode', 'bom': '\ufeffcardCode', 'fullwidth': 'ｃａｒｄＣｏｄｅ',
        'cyr_o': 'cardCоde', 'dot': 'card.Code', 'double_us': 'card__code', 'camel_C': 'CardCode', 'nbsp': 'card\u00a0code',
        'soft_hy': 'card\u00adCode', 'combining': 'card\u0301Code', 'nfkc_lig': 'cardCode\u200d', 'cvv': 'cvv', 'cvc': 'cvc',
        'lead_dash': '-cardCode', 'trail_us': 'cardCode_', 'dollar': '$cardCode', 'colon': 'card:code', 'brackets': 'cardCode[]',
    }
    for k, v in keyvars.items():
        body = dumps(q2card()).replace('"cardCode"', '"%s"' % v)
        jpost('key_q2_cvv_' + k, 'json-keys', 'q2', body)
        body = dumps(hw()).replace('"verificationNumber"', '"%s"' % v.replace('cardCode', 'verificationNumber').replace('card', 'verification').replace('Code', 'Number').replace('code', 'number') if k not in ('cvv', 'cvc') else '"%s"' % v)
        jpost('key_hw_cvv_' + k, 'json-keys', 'hw', body)
        body = dumps(q2bank()).replace('"accountNumber"', '"%s"' % v.replace('cardCode', 'accountNumber').replace('CARDCODE', 'ACCOUNTNUMBER').replace('cardcode', 'accountnumber').replace('card', 'account').replace('Code', 'Number').replace('code', 'number').replace('ｃａｒｄＣｏｄｅ', 'ａｃｃｏｕｎｔＮｕｍｂｅｒ'))
        jpost('key_q2_bank_' + k, 'json-keys', 'q2', body)
    # verificationNumber with dotless i / long s (unicode case folding)
    jpost('key_hw_cvv_dotless_i', 'json-keys', 'hw', dumps(hw()).replace('"verificationNumber"', '"verıficationNumber"'), note='Java/.NET/Python upper() fold ı to I')
    jpost('key_brm_long_s', 'json-keys', 'brm', dumps(brm()).replace('"details"', '"detailſ"'), note='Java equalsIgnoreCase / Python casefold fold ſ to s')
    # duplicates & proto
    c = q2card(); jb = dumps(c)
    jpost('dup_cvv_first_tok', 'json-dup', 'q2', jb.replace('"cardCode":"218"', '"cardCode":"999","cardCode":"218"'))
    jpost('dup_cvv_spellings', 'json-dup', 'q2', jb.replace('"cardCode":"218"', '"card_code":"999","cardCode":"218"'))
    jpost('dup_paymentType', 'json-dup', 'q2', jb.replace('"paymentType":"card"', '"paymentType":"bank","paymentType":"card"'))
    jpost('dup_paymentType2', 'json-dup', 'q2', jb.replace('"paymentType":"card"', '"paymentType":"card","paymentType":"bank"'))
    jpost('dup_paymentType_esc', 'json-dup', 'q2', jb.replace('"paymentType":"card"', '"paymentType":"bank","payment\\u0054ype":"card"'))
    jpost('proto_cvv', 'json-proto', 'q2', jb.replace('"cardCode":"218"', '"__proto__":{"cardCode":"218"}'))
    jpost('proto_esc_cvv', 'json-proto', 'q2', jb.replace('"cardCode":"218"', '"__proto\\u005f_":{"cardCode":"218"}'))
    jpost('proto_ptype', 'json-proto', 'q2', jb.replace('"paymentType":"card"', '"paymentType":"bank","__proto__":{"paymentType":"card"}'))
    jpost('constructor_proto', 'json-proto', 'q2', jb.replace('"cardCode":"218"', '"constructor":{"prototype":{"cardCode":"218"}}'))
    jpost('proto_nested_brm', 'json-proto', 'brm', dumps({"type": "bankAccountDebit", "details": {"__proto__": {"accountNumber": "DE89370400440532013000"}}}))
    jpost('proto_top_brm', 'json-proto', 'brm', dumps({"type": "bankAccountDebit", "__proto__": {"details": {"accountNumber": "DE89370400440532013000"}}}))
    jpost('dotted_brm', 'json-dotted', 'brm', dumps({"type": "bankAccountDebit", "details.accountNumber": "DE89370400440532013000"}))
    jpost('dotted_brm_bracket', 'json-dotted', 'brm', dumps({"type": "bankAccountDebit", "details[accountNumber]": "DE89370400440532013000"}))
    jpost('dotted_brm_slash', 'json-dotted', 'brm', dumps({"type": "bankAccountDebit", "details/accountNumber": "DE89370400440532013000"}))
    jpost('dotted_plano', 'json-dotted', 'plano', b64(dumps({"payment_method.card_number": PAN, "payment_method.cvc": "218"})), headers=(('Content-Type', 'text/plain'),))
    # ---------- wrapper / value shapes ----------
    for vn, v in {'num': 218, 'float': 218.0, 'exp': '2.18e2', 'arr': ['218'], 'arr2': [['218']], 'obj': {"v": "218"},
                  'obj2': {"a": {"b": "218"}}, 'obj3': {"a": {"b": {"c": "218"}}}, 'obj4': {"a": {"b": {"c": {"d": "218"}}}},
                  'arrobj': [{"v": ["218"]}], 'two': ["218", "999"], 'objtwo': {"a": "218", "b": "x"}, 'numstr_sp': ' 218 ',
                  'fullw': '２１８', 'arabic': '٢١٨', 'lead0': '0218', 'bool_obj': {"value": "218", "valid": True},
                  'nul': '218\u0000', 'obj_num': {"v": 218}, 'emptykey': {"": "218"}}.items():
        if vn == 'exp':
            body = jb.replace('"cardCode":"218"', '"cardCode":2.18e2')
        else:
            body = jb.replace('"cardCode":"218"', '"cardCode":' + dumps(v))
        jpost('val_q2_cvv_' + vn, 'json-values', 'q2', body)
        body = dumps(hw()).replace('"verificationNumber":"218"', '"verificationNumber":' + (dumps(v) if vn != 'exp' else '2.18e2'))
        jpost('val_hw_cvv_' + vn, 'json-values', 'hw', body)
        vb = subst(v) if vn not in ('num', 'float', 'exp', 'fullw', 'arabic', 'lead0', 'nul', 'numstr_sp', 'obj_num') else None
        if vb is not None:
            jpost('val_brm_' + vn, 'json-values', 'brm', dumps({"type": "bankAccountDebit", "details": {"accountNumber": vb}}))
    jpost('val_brm_num', 'json-values', 'brm', '{"type":"bankAccountDebit","details":{"accountNumber":123456789012}}')
    jpost('val_q2bank_num', 'json-values', 'q2', dumps(q2bank()).replace('"000123456789"', '123456789'))
    jpost('val_q2bank_lead0num', 'json-values', 'q2', dumps(q2bank()).replace('"000123456789"', '"000123456789 "'))
    jpost('val_brm_iban_spaces', 'json-values', 'brm', dumps(brm('DE89 3704 0044 0532 0130 00')))
    jpost('val_brm_iban_lower', 'json-values', 'brm', dumps(brm('de89370400440532013000')))
    jpost('val_brm_details_arr', 'json-values', 'brm', dumps({"type": "bankAccountDebit", "details": [{"accountNumber": "DE89370400440532013000"}]}))
    jpost('val_brm_details_str', 'json-values', 'brm', dumps({"type": "bankAccountDebit", "details": dumps({"accountNumber": "DE89370400440532013000"})}))
    jpost('val_brm_short', 'json-values', 'brm', dumps(brm('1234567')))
    jpost('val_q2bank_short', 'json-values', 'q2', dumps(q2bank('9900000002')))
    jpost('val_q2bank_alpha', 'json-values', 'q2', dumps(q2bank('ACCT-000123456789')))
    jpost('val_body_array', 'json-values', 'q2', dumps([q2card()]))
    jpost('val_body_wrap', 'json-values', 'q2', dumps({"data": q2card()}))
    jpost('val_body_string', 'json-values', 'q2', dumps(dumps(q2card())))
    # PAN value spellings in the card field
    for vn, v in {'num': PAN, 'float_round': '4242424242424241.9', 'exp': '4.2424242424242419e15', 'exp2': '4.242424242424242e15',
                  'frac0': '4242424242424242.0', 'neg': '-4242424242424242', 'exp_int': '42424242424242420e-1'}.items():
        body = jb.replace('"cardNumber":"%s"' % PAN, '"cardNumber":%s' % v)
        jpost('val_q2_pan_' + vn, 'json-numbers', 'q2', body)
        body = dumps(hw()).replace('"accountNumber":"%s"' % PAN, '"accountNumber":%s' % v)
        jpost('val_hw_pan_' + vn, 'json-numbers', 'hw', body)
    # ---------- free-field PAN spellings on rules routes (leak guard) ----------
    free = {
        'float_round': '4242424242424241.9', 'float_round2': '4242424242424242.4', 'float_round_amex': '378282246310004.99999',
        'float_round_mc': '5555555555554443.9', 'exp_round': '4.2424242424242419e15', 'exp_round2': '42424242424242419e-1',
        'exp_round3': '0.42424242424242419e16', 'big_exp': '4242424242424242e0', 'float_tiny': '4242424242424242.0000000001',
        'float_round_low': '4242424242424242.49', 'huge_digits': '4242424242424241.99999999999999999999999999',
        'neg_round': '-4242424242424241.9', 'exp_plus': '4.2424242424242419E+15',
    }
    for vn, v in free.items():
        jpost('free_q2_num_' + vn, 'free-numbers', 'q2', dumps(q2card()).replace('"expYear":"2030"', '"expYear":"2030","identifier":%s' % v))
        jpost('free_pm_num_' + vn, 'free-numbers', 'pm', '{"customerId":"c","last4":"4242","amount":%s}' % v)
        jpost('free_pt_num_' + vn, 'free-numbers', 'pt', '{"customerId":"c","amount":%s}' % v, known='number literals on pass-through')
        jpost('free_plano_num_' + vn, 'free-numbers', 'plano', b64('{"payment_method":{"card_number":"%s","cvc":"218"},"amount":%s}' % (PANS[1], v)), headers=(('Content-Type', 'text/plain'),))
    strs = {
        'u_esc': ''.join('\\u%04x' % ord(c) for c in PAN), 'spaces': '4242 4242 4242 4242', 'dashes': '4242-4242-4242-4242',
        'fullw': ''.join(chr(0xff10 + int(c)) for c in PAN), 'arabic': ''.join(chr(0x660 + int(c)) for c in PAN),
        'lead0': '000' + PAN, 'nested_json': dumps(dumps({"n": PAN})), 'b64': b64(PAN), 'pct': ''.join('%%%02X' % ord(c) for c in PAN),
        'ncr': ''.join('&#%d;' % ord(c) for c in PAN), 'mixed_sep': '4242 - 4242 - 4242 - 4242', 'nul_sep': '4242\\u00004242\\u00004242\\u00004242',
        'in_text': 'card4242424242424242x', 'json_num_in_str': dumps({"x": 4242424242424241.9}),
    }
    for vn, v in strs.items():
        val = v if vn in ('nested_json', 'json_num_in_str') else '"%s"' % v
        if vn == 'json_num_in_str':
            val = dumps(v)
        jpost('free_q2_str_' + vn, 'free-strings', 'q2', dumps(q2card()).replace('"expYear":"2030"', '"expYear":"2030","identifier":%s' % val))
        jpost('free_pm_str_' + vn, 'free-strings', 'pm', '{"customerId":"c","last4":"4242","note":%s}' % val)
        jpost('free_pt_str_' + vn, 'free-strings', 'pt', '{"customerId":"c","note":%s}' % val, known='b64 on pass-through' if vn == 'b64' else None)
    # ---------- forms / qs differentials (payment_method Auto, plano form, pass-through) ----------
    forms = {
        'plain': 'n=%s' % PAN, 'arr': 'n[]=%s' % PAN, 'nested': 'a[b][c][d][e][f][g]=%s' % PAN, 'plus': 'n=4242+4242+4242+4242',
        'pct': 'n=' + ''.join('%%%02X' % ord(c) for c in PAN), 'pct_u': 'n=' + ''.join('%%u%04X' % ord(c) for c in PAN),
        'dbl_pct': 'n=' + ''.join('%%25%02X' % ord(c) for c in PAN), 'fullw_pct': 'n=' + ''.join('%%EF%%BC%%%02X' % (0x90 + int(c)) for c in PAN),
        'ncr': 'n=' + ''.join('%%26%%23%d%%3B' % ord(c) for c in PAN), 'semicolon': 'a=1;n=%s' % PAN, 'key': '%s=1' % PAN,
        'many_before': '&'.join('p%d=1' % i for i in range(1200)) + '&n=%s' % PAN, 'sentinel_iso': 'utf8=%26%2310003%3B&n=' + ''.join('%%u%04X' % ord(c) for c in PAN),
    }
    for vn, v in forms.items():
        case('form_pm_' + vn, 'forms', http('POST', P['pm'], [FORM_CT], v))
        case('form_pt_' + vn, 'forms', http('POST', P['pt'], [FORM_CT], v))
        case('query_pt_' + vn, 'query', http('GET', P['pt'] + '?' + v))
        case('query_pm_' + vn, 'query', http('POST', P['pm'] + '?' + v, [JSON_CT], '{"a":1}'))
    case('form_pt_iso_pct_u', 'forms', http('POST', P['pt'], [('Content-Type', 'application/x-www-form-urlencoded; charset=iso-8859-1')], 'n=' + ''.join('%%u%04X' % ord(c) for c in PAN)))
    # plano form key readings
    plano_forms = {
        'std': 'payment_method[card_number]=%s&payment_method[cvc]=218' % PAN,
        'cvc_arr': 'payment_method[card_number]=%s&payment_method[cvc][]=218' % PAN,
        'cvc_dot': 'payment_method[card_number]=%s&payment_method.cvc=218' % PAN,
        'cvc_idx': 'payment_method[card_number]=%s&payment_method[cvc][0]=218' % PAN,
        'cvc_deep': 'payment_method[card_number]=%s&payment_method[cvc][a][b][c][d][e]=218' % PAN,
        'pm_arr': 'payment_method[][card_number]=%s&payment_method[][cvc]=218' % PAN,
        'pm_idx': 'payment_method[0][card_number]=%s&payment_method[0][cvc]=218' % PAN,
        'cvc_pct_key': 'payment_method[card_number]=%s&payment_method%%5Bcvc%%5D=218' % PAN,
        'cvc_pct_key2': 'payment_method[card_number]=%s&payment_method[c%%76c]=218' % PAN,
        'cvc_case': 'payment_method[card_number]=%s&PAYMENT_METHOD[CVC]=218' % PAN,
        'cvc_dup': 'payment_method[card_number]=%s&payment_method[cvc]=999&payment_method[cvc]=218' % PAN,
        'cvc_space': 'payment_method[card_number]=%s&payment_method[cvc ]=218' % PAN,
        'cvc_plus': 'payment_method[card_number]=%s&payment_method[cvc]+=218' % PAN,
        'cvc_after_limit': '&'.join('p%d=1' % i for i in range(1000)) + '&payment_method[card_number]=%s&payment_method[cvc]=218' % PAN,
        'cvc_utf8_sentinel': 'utf8=%%E2%%9C%%93&payment_method[card_number]=%s&payment_method[cvc]=218' % PAN,
        'cvc_amp_enc': 'payment_method[card_number]=%s&payment_method[cvc]=2%%318' % PAN,
        'cvc_proto': 'payment_method[card_number]=%s&__proto__[cvc]=218' % PAN,
        'cvc_brk_unclosed': 'payment_method[card_number]=%s&payment_method[cvc=218' % PAN,
        'cvc_brk_dbl': 'payment_method[card_number]=%s&payment_method[[cvc]]=218' % PAN,
        'cvc_brk_leading': 'payment_method[card_number]=%s&[payment_method][cvc]=218' % PAN,
        'depth6': 'a[b][c][d][e][f][payment_method][cvc]=218&payment_method[card_number]=%s' % PAN,
    }
    for vn, v in plano_forms.items():
        jpost('plano_form_' + vn, 'plano-forms', 'plano', b64(v), headers=(('Content-Type', 'text/plain'),))
    # plano base64 tricks
    pj = dumps(plano_json())
    jpost('plano_urlsafe', 'plano-b64', 'plano', base64.urlsafe_b64encode(pj.encode()).decode().rstrip('='), headers=(('Content-Type', 'text/plain'),))
    jpost('plano_wrapped', 'plano-b64', 'plano', '\n'.join(re.findall('.{1,20}', b64(pj))), headers=(('Content-Type', 'text/plain'),))
    jpost('plano_concat', 'plano-b64', 'plano', b64('{"token":"t"}') + b64(pj), headers=(('Content-Type', 'text/plain'),))
    jpost('plano_junk_chars', 'plano-b64', 'plano', '*'.join(b64(pj)), headers=(('Content-Type', 'text/plain'),))
    jpost('plano_spaces', 'plano-b64', 'plano', ' '.join(re.findall('.{1,4}', b64(pj))), headers=(('Content-Type', 'text/plain'),))
    jpost('plano_mixed_alpha', 'plano-b64', 'plano', b64(pj)[:8].replace('+', '-') + b64(pj)[8:], headers=(('Content-Type', 'text/plain'),))
    jpost('plano_json_ct', 'plano-b64', 'plano', b64(pj), headers=(JSON_CT,))
    jpost('plano_raw_json', 'plano-b64', 'plano', pj, headers=(JSON_CT,))
    jpost('plano_json_string', 'plano-b64', 'plano', dumps(b64(pj)), headers=(JSON_CT,))
    jpost('plano_form_wrap', 'plano-b64', 'plano', 'params=' + b64(pj).replace('+', '%2B').replace('/', '%2F').replace('=', '%3D'), headers=(FORM_CT,))
    jpost('plano_double_b64', 'plano-b64', 'plano', b64(b64(pj)), headers=(('Content-Type', 'text/plain'),))
    jpost('plano_trailing_garbage', 'plano-b64', 'plano', b64(pj) + '!!!!', headers=(('Content-Type', 'text/plain'),))
    jpost('plano_cvc_num', 'plano-b64', 'plano', b64(pj.replace('"cvc":"218"', '"cvc":218')), headers=(('Content-Type', 'text/plain'),))
    jpost('plano_cvc_only', 'plano-b64', 'plano', b64(dumps({"payment_method": {"cvc": "218"}})), headers=(('Content-Type', 'text/plain'),))
    jpost('plano_utf16', 'plano-b64', 'plano', b64(pj.encode('utf-16')), headers=(('Content-Type', 'text/plain'),))
    jpost('plano_bom', 'plano-b64', 'plano', b64(b'\xef\xbb\xbf' + pj.encode()), headers=(('Content-Type', 'text/plain'),))
    # ---------- conditions ----------
    for vn, v in {'Card': 'Card', 'CARD': 'CARD', 'sp': 'card ', 'lsp': ' card', 'nul': 'card\u0000', 'fw': 'ｃａｒｄ', 'arr': ['card'],
                  'obj': {"v": "card"}, 'null': None, 'num': 1, 'bank_cvv': 'bank', 'cards': 'cards', 'zw': 'card\u200b'}.items():
        jpost('cond_q2_' + vn, 'conditions', 'q2', jb.replace('"paymentType":"card"', '"paymentType":' + dumps(v)))
    jpost('cond_q2_missing', 'conditions', 'q2', dumps({k: v for k, v in q2card().items() if k != 'paymentType'}))
    jpost('cond_q2_bank_with_card', 'conditions', 'q2', dumps(dict(q2bank(), cardCode="218")))
    jpost('cond_q2_card_with_bank', 'conditions', 'q2', dumps(dict(q2card(), accountNumber="000123456789")))
    jpost('cond_hw_dd_cvv', 'conditions', 'hw', dumps(dict(hwdd(), verificationNumber="218")))
    jpost('cond_hw_cc_pan_as_dd', 'conditions', 'hw', dumps(hw(t='direct_debit')))
    jpost('cond_hw_missing_type', 'conditions', 'hw', dumps({k: v for k, v in hw().items() if k != 'paymentInfoType'}))
    jpost('cond_hw_bank_as_cc', 'conditions', 'hw', dumps(hw(acct='000123456789')))
    jpost('cond_hw_iban_as_cc', 'conditions', 'hw', dumps(hw(acct='DE89370400440532013000')))
    jpost('cond_hw_cvv_only', 'conditions', 'hw', dumps({"verificationNumber": "218"}))
    jpost('cond_hw_cvv_noacct', 'conditions', 'hw', dumps({"paymentInfoType": "credit_card", "verificationNumber": "218"}))
    jpost('cond_q2_cvv_nocard', 'conditions', 'q2', dumps({"paymentType": "card", "cardCode": "218"}))
    # ---------- encodings ----------
    gz = gzip.compress(dumps(q2card()).encode())
    zl = zlib.compress(dumps(q2card()).encode())
    rawdef = zlib.compress(dumps(q2card()).encode())[2:-4]
    for vn, (ce, body) in {'gzip': ('gzip', gz), 'GZIP': ('GZIP', gz), 'xgzip': ('x-gzip', gz), 'deflate': ('deflate', zl),
                           'rawdeflate': ('deflate', rawdef), 'gzip_identity': ('gzip, identity', gz), 'identity_gzip': ('identity, gzip', gz),
                           'gzgz': ('gzip, gzip', gzip.compress(gz)), 'gzip_sp': (' gzip ', gz), 'br_plain': ('br', dumps(q2card()).encode()),
                           'gzip_trailing': ('gzip', gz + b'garbage'), 'gzip_two_members': ('gzip', gzip.compress(b'{"a":1}') + gz),
                           'identity_plain': ('identity', dumps(q2card()).encode()), 'empty_ce': ('', dumps(q2card()).encode()),
                           'gzip_on_plain': ('gzip', dumps(q2card()).encode())}.items():
        case('enc_q2_' + vn, 'encodings', http('POST', P['q2'], [JSON_CT, ('Content-Encoding', ce)], body), rules=True)
    case('enc_q2_two_ce', 'encodings', http('POST', P['q2'], [JSON_CT, ('Content-Encoding', 'identity'), ('Content-Encoding', 'gzip')], gz), rules=True)
    case('enc_pm_gzip', 'encodings', http('POST', P['pm'], [JSON_CT, ('Content-Encoding', 'gzip')], gzip.compress(b'{"n":"%s"}' % PAN.encode())))
    case('enc_pm_br', 'encodings', http('POST', P['pm'], [JSON_CT, ('Content-Encoding', 'br')], b'\x0b\x07\x80{"n":"4242424242424242"}\x03'))
    case('enc_pt_gzip', 'encodings', http('POST', P['pt'], [JSON_CT, ('Content-Encoding', 'gzip')], gzip.compress(b'{"n":"%s"}' % PAN.encode())), known='compressed pass-through')
    q2b = dumps(q2card())
    for vn, ct in {'utf16': 'application/json; charset=utf-16', 'quoted_utf8': 'application/json; charset="utf-8"',
                   'dup_charset': 'application/json; charset=utf-8; charset=utf-16le', 'upper': 'APPLICATION/JSON',
                   'vnd': 'application/vnd.api+json', 'text': 'text/plain', 'none': None, 'form': 'application/x-www-form-urlencoded',
                   'multipart': 'multipart/form-data; boundary=x', 'json_comma': 'application/json, text/plain', 'ws': ' application/json ',
                   'charset_sp': 'application/json; charset = utf-16le', 'charset_latin1': 'application/json; charset=latin1',
                   'csv': 'text/csv', 'star': '*/*'}.items():
        hs = [('Content-Type', ct)] if ct is not None else []
        case('ct_q2_' + vn, 'content-type', http('POST', P['q2'], hs, q2b), rules=True)
    case('ct_q2_two', 'content-type', http('POST', P['q2'], [('Content-Type', 'text/plain'), JSON_CT], q2b), rules=True)
    case('ct_q2_bom', 'content-type', http('POST', P['q2'], [JSON_CT], '\ufeff' + q2b), rules=True)
    case('ct_q2_utf16_body', 'content-type', http('POST', P['q2'], [JSON_CT], q2b.encode('utf-16')), rules=True)
    case('ct_q2_utf16le_nobom', 'content-type', http('POST', P['q2'], [JSON_CT], q2b.encode('utf-16-le')), rules=True)
    case('ct_q2_utf32_nobom', 'content-type', http('POST', P['q2'], [JSON_CT], q2b.encode('utf-32-le')), rules=True)
    # UTF-16/32 bodies without a declared charset: python json.loads(bytes) auto-detects them
    for enc_name in ('utf-16-le', 'utf-16-be', 'utf-32-le', 'utf-32-be', 'utf-16', 'utf-32'):
        for sn, s in {'plain': PAN, 'spaced': '4242 4242 4242 4242', 'dashed2': '4242 - 4242 - 4242 - 4242', 'dashed': '4242-4242-4242-4242'}.items():
            b = dumps({"customerId": "c", "note": s}).encode(enc_name)
            case('utfx_pt_%s_%s' % (enc_name, sn), 'undeclared-utf16/32', http('POST', P['pt'], [JSON_CT], b))
            case('utfx_pm_%s_%s' % (enc_name, sn), 'undeclared-utf16/32', http('POST', P['pm'], [JSON_CT], b))
        b = dumps(q2card()).encode(enc_name)
        case('utfx_hw_%s' % enc_name, 'undeclared-utf16/32', http('POST', P['hw'], [JSON_CT], dumps(hw()).encode(enc_name)), rules=True)
    # text/* with iconv charsets (express.text decodes any iconv-lite charset)
    for cs in ('utf-7', 'utf7', 'unicode-1-1-utf-7', 'csunicode11utf7', 'utf-16le', 'ucs-2', 'utf-32', 'latin1', 'cp1252', 'windows-1252',
               'iso-8859-1', 'latin10', 'cp437', 'koi8-r', 'ibm037', 'shift_jis', 'iso-2022-jp', 'gb18030', 'hz-gb-2312', 'x-mac-roman', 'big5'):
        case('cs_pt_text_' + cs, 'charsets', http('POST', P['pt'], [('Content-Type', 'text/plain; charset=' + cs)], '+ADQAMgA0ADIANAAyADQAMgA0ADIANAAyADQAMgA0ADI-' if '7' in cs and 'utf' in cs else PAN))
    case('cs_pt_text_utf7_hidden', 'charsets', http('POST', P['pt'], [('Content-Type', 'text/plain; x="a;b"; charset=utf-7')], '+ADQAMgA0ADIANAAyADQAMgA0ADIANAAyADQAMgA0ADI-'))
    case('cs_pt_text_utf7_quoted_esc', 'charsets', http('POST', P['pt'], [('Content-Type', 'text/plain; charset="utf\\-7"')], '+ADQAMgA0ADIANAAyADQAMgA0ADIANAAyADQAMgA0ADI-'))
    case('cs_pt_text_utf7_ws', 'charsets', http('POST', P['pt'], [('Content-Type', 'text/plain; charset =utf-7')], '+ADQAMgA0ADIANAAyADQAMgA0ADIANAAyADQAMgA0ADI-'))
    case('cs_pt_text_utf7_CHARSET', 'charsets', http('POST', P['pt'], [('Content-Type', 'text/plain;CHARSET=UTF-7')], '+ADQAMgA0ADIANAAyADQAMgA0ADIANAAyADQAMgA0ADI-'))
    case('cs_pt_text_two_ct', 'charsets', http('POST', P['pt'], [('Content-Type', 'text/plain; charset=utf-8'), ('Content-Type', 'text/plain; charset=utf-7')], '+ADQAMgA0ADIANAAyADQAMgA0ADIANAAyADQAMgA0ADI-'))
    case('cs_pt_text_two_ct_rev', 'charsets', http('POST', P['pt'], [('Content-Type', 'text/plain; charset=utf-7'), ('Content-Type', 'text/plain; charset=utf-8')], '+ADQAMgA0ADIANAAyADQAMgA0ADIANAAyADQAMgA0ADI-'))
    case('cs_pt_json_utf7', 'charsets', http('POST', P['pt'], [('Content-Type', 'application/json; charset=utf-7')], '"+ADQAMgA0ADIANAAyADQAMgA0ADIANAAyADQAMgA0ADI-"'))
    # ---------- multipart ----------
    def mp(parts, boundary='XyZ', extra=''):
        out = ''
        for hdrs, data in parts:
            out += '--%s\r\n%s\r\n\r\n%s\r\n' % (boundary, '\r\n'.join(hdrs), data)
        return out + '--%s--\r\n' % boundary + extra
    mpct = ('Content-Type', 'multipart/form-data; boundary=XyZ')
    mparts = {
        'plain': [(['Content-Disposition: form-data; name="n"'], PAN)],
        'cs_utf16le_sp2': [(['Content-Disposition: form-data; name="n"', 'Content-Type: text/plain; charset=utf-16le'], '4242  4242  4242  4242'.encode('utf-16-le').decode('latin1'))],
        'cs_utf16le': [(['Content-Disposition: form-data; name="n"', 'Content-Type: text/plain; charset=utf-16le'], PAN.encode('utf-16-le').decode('latin1'))],
        'cs_utf16be_dash': [(['Content-Disposition: form-data; name="n"', 'Content-Type: text/plain; charset=utf-16be'], '4242 - 4242 - 4242 - 4242'.encode('utf-16-be').decode('latin1'))],
        'cs_base64': [(['Content-Disposition: form-data; name="n"', 'Content-Type: text/plain; charset=base64'], b64(PAN))],
        'cs_utf7': [(['Content-Disposition: form-data; name="n"', 'Content-Type: text/plain; charset=utf-7'], '+ADQAMgA0ADIANAAyADQAMgA0ADIANAAyADQAMgA0ADI-')],
        'cs_iso2022jp': [(['Content-Disposition: form-data; name="n"', 'Content-Type: text/plain; charset=iso-2022-jp'], ''.join(chr(0xff10 + int(c)) for c in PAN).encode('iso-2022-jp').decode('latin1'))],
        'cte_b64': [(['Content-Disposition: form-data; name="n"', 'Content-Transfer-Encoding: base64'], b64(PAN))],
        'cte_qp': [(['Content-Disposition: form-data; name="n"', 'Content-Transfer-Encoding: quoted-printable'], ''.join('=%02X' % ord(c) for c in PAN))],
        'name_star': [(["Content-Disposition: form-data; name*=utf-8''%s" % PAN], 'x')],
        'filename': [(['Content-Disposition: form-data; name="f"; filename="%s.txt"' % PAN], 'x')],
    }
    for vn, parts in mparts.items():
        body = mp(parts).encode('latin1')
        case('mp_pt_' + vn, 'multipart', http('POST', P['pt'], [mpct], body), known='b64/qp on pass-through' if vn in ('cte_b64', 'cte_qp', 'cs_base64') else None)
        case('mp_pm_' + vn, 'multipart', http('POST', P['pm'], [mpct], body))
    # multipart boundary tricks on payment_method (rules route)
    body = mp([(['Content-Disposition: form-data; name="a"'], 'x')], boundary='XyZ') + '--XyZ2\r\nContent-Disposition: form-data; name="n"\r\n\r\n%s\r\n--XyZ2--\r\n' % PAN
    case('mp_pm_second_boundary', 'multipart', http('POST', P['pm'], [('Content-Type', 'multipart/form-data; boundary=XyZ; boundary=XyZ2')], body))
    case('mp_pm_quoted_boundary', 'multipart', http('POST', P['pm'], [('Content-Type', 'multipart/form-data; boundary="XyZ"')], mp([(['Content-Disposition: form-data; name="n"'], PAN)])))
    case('mp_pm_after_close', 'multipart', http('POST', P['pm'], [mpct], mp([(['Content-Disposition: form-data; name="a"'], 'x')], extra='--XyZ\r\nContent-Disposition: form-data; name="n"\r\n\r\n%s\r\n--XyZ--\r\n' % PAN)))
    case('mp_pm_preamble', 'multipart', http('POST', P['pm'], [mpct], 'n=%s\r\n' % PAN + mp([(['Content-Disposition: form-data; name="a"'], 'x')])))
    case('mp_pm_lf_only', 'multipart', http('POST', P['pm'], [mpct], mp([(['Content-Disposition: form-data; name="n"'], PAN)]).replace('\r\n', '\n')))
    # ---------- HTTP level ----------
    q2 = dumps(q2card()).encode()
    case('http10', 'http', http('POST', P['q2'], [JSON_CT], q2, version='HTTP/1.0'), rules=True)
    case('http10_nocl', 'http', http('POST', P['q2'], [JSON_CT], q2, version='HTTP/1.0', cl=False), rules=True)
    case('abs_form', 'http', http('POST', 'http://127.0.0.1/v1/payment', [JSON_CT], q2), rules=True)
    case('abs_form_other_host', 'http', http('POST', 'http://evil.example/v1/payment', [JSON_CT], q2), rules=True)
    case('abs_form_userinfo', 'http', http('POST', 'http://u@127.0.0.1/v1/payment', [JSON_CT], q2), rules=True)
    case('abs_form_pt_path', 'http', http('POST', 'http://127.0.0.1/pt/x?n=%s' % PAN, [JSON_CT], '{}'))
    case('no_host', 'http', http('POST', P['q2'], [JSON_CT], q2, host=None), rules=True)
    case('expect100', 'http', http('POST', P['q2'], [JSON_CT, ('Expect', '100-continue')], q2), rules=True)
    case('method_lower', 'http', http('post', P['q2'], [JSON_CT], q2), rules=True)
    case('method_put', 'http', http('PUT', P['q2'], [JSON_CT], q2), rules=True)
    case('method_override_pt', 'http', http('POST', P['pt'], [JSON_CT, ('X-HTTP-Method-Override', 'PUT')], '{"n":"%s"}' % PAN))
    case('method_override_q2', 'http', http('POST', P['q2'], [JSON_CT, ('X-HTTP-Method-Override', 'POST')], q2), rules=True)
    case('get_with_body_q2', 'http', http('GET', P['q2'], [JSON_CT], q2), rules=True)
    case('get_with_body_pt', 'http', http('GET', P['pt'], [JSON_CT], '{"n":"%s"}' % PAN))
    # chunked variants
    def chunked(body, sizes=7, ext='', trailer=''):
        out = b''
        for i in range(0, len(body), sizes):
            part = body[i:i + sizes]
            out += b'%x%s\r\n' % (len(part), ext.encode()) + part + b'\r\n'
        return out + b'0\r\n' + trailer.encode() + b'\r\n'
    te = ('Transfer-Encoding', 'chunked')
    case('te_chunked', 'http', http('POST', P['q2'], [JSON_CT, te], chunked(q2), cl=False), rules=True)
    case('te_chunked_ext', 'http', http('POST', P['q2'], [JSON_CT, te], chunked(q2, ext=';a=b'), cl=False), rules=True)
    case('te_trailer_cvv', 'http', http('POST', P['hwh'], [JSON_CT, te, ('Trailer', 'cardCode')], chunked(dumps(hw()).encode(), trailer='cardCode: 218\r\nx-pan: %s\r\n' % PAN), cl=False), rules=True, scan_headers=True)
    case('te_trailer_pt', 'http', http('POST', P['pt'], [JSON_CT, te, ('Trailer', 'x-pan')], chunked(b'{}', trailer='x-pan: %s\r\n' % PAN), cl=False), known='headers on pass-through', scan_headers=True)
    case('hdr_scan_pan', 'http', http('POST', P['hwh'], [JSON_CT, ('X-Card', PAN)], dumps(hw())), rules=True, scan_headers=True)
    case('hdr_scan_pan_cookie', 'http', http('POST', P['hwh'], [JSON_CT, ('Cookie', 'c=' + PAN)], dumps(hw())), rules=True, scan_headers=True)
    case('hdr_scan_pan_obsfold', 'http', http('POST', P['hwh'], [JSON_CT, ('X-Card', '4242\r\n 4242424242424242')], dumps(hw())), rules=True, scan_headers=True)
    case('hdr_scan_pan_pct', 'http', http('POST', P['hwh'], [JSON_CT, ('X-Card', ''.join('%%%02X' % ord(c) for c in PAN))], dumps(hw())), rules=True, scan_headers=True)
    case('te_cl_both', 'smuggling', http('POST', P['q2'], [JSON_CT, te, ('Content-Length', '4')], chunked(q2), cl=False), rules=True)
    case('te_identity_chunked', 'smuggling', http('POST', P['q2'], [JSON_CT, ('Transfer-Encoding', 'identity, chunked')], chunked(q2), cl=False), rules=True)
    case('te_Chunked', 'smuggling', http('POST', P['q2'], [JSON_CT, ('Transfer-Encoding', 'Chunked')], chunked(q2), cl=False), rules=True)
    case('te_xchunked', 'smuggling', http('POST', P['q2'], [JSON_CT, ('Transfer-Encoding', 'xchunked')], chunked(q2), cl=False), rules=True)
    case('te_two_headers', 'smuggling', http('POST', P['q2'], [JSON_CT, te, ('Transfer-Encoding', 'identity')], chunked(q2), cl=False), rules=True)
    case('cl_two_diff', 'smuggling', http('POST', P['q2'], [JSON_CT, ('Content-Length', '2'), ('Content-Length', str(len(q2)))], q2, cl=False), rules=True)
    case('cl_two_same', 'smuggling', http('POST', P['q2'], [JSON_CT, ('Content-Length', str(len(q2))), ('Content-Length', str(len(q2)))], q2, cl=False), rules=True)
    case('cl_plus', 'smuggling', http('POST', P['q2'], [JSON_CT, ('Content-Length', '+%d' % len(q2))], q2, cl=False), rules=True)
    case('cl_comma', 'smuggling', http('POST', P['q2'], [JSON_CT, ('Content-Length', '%d, %d' % (len(q2), len(q2)))], q2, cl=False), rules=True)
    # pipelining: a pass-through request, then a tokenizing one on the same connection
    def pipe(rid):
        a = http('POST', P['pt'], [JSON_CT], '{"a":1}', close=False)(rid + ',a')
        b = http('POST', P['q2'], [JSON_CT], q2)(rid)
        return a + b
    case('pipeline', 'http', pipe, rules=True)
    def pipe_smuggle(rid):
        inner = http('POST', P['q2'], [JSON_CT], dumps(q2card()))(rid + ',inner')
        return http('POST', P['pt'], [('Content-Type', 'text/plain')], inner, close=False)(rid) + b''
    case('pipeline_body_is_request', 'http', pipe_smuggle, timeout=3)
    def pipe_cl0(rid):
        inner = http('POST', P['q2'], [JSON_CT], dumps(q2card()))(rid + ',inner')
        return http('GET', P['pt'], [('Content-Length', '0')], b'', close=False, cl=False)(rid) + inner
    case('pipeline_get_then_q2', 'http', pipe_cl0, rules=True)
    # ---------- routing ----------
    for vn, p in {'trailing': '/v1/payment/', 'upper': '/V1/PAYMENT', 'semi': '/v1/payment;x', 'dslash': '/v1//payment', 'dot': '/v1/./payment',
                  'dotdot': '/v1/x/../payment', 'pct_slash': '/v1%2Fpayment', 'pct_m': '/v1/pay%6dent', 'pct_M': '/v1/pay%6Dent', 'frag': '/v1/payment#x',
                  'q': '/v1/payment?', 'nul': '/v1/payment%00', 'sp': '/v1/payment%20', 'dotend': '/v1/payment.', 'json': '/v1/payment.json',
                  'lead_dslash': '//v1/payment', 'slashdot': '/v1/payment/.', 'backslash': '/v1\\payment', 'pct5c': '/v1%5Cpayment',
                  'double_trailing': '/v1/payment//', 'unicode': '/v1/paymen%C5%A3', 'zwsp': '/v1/payment%E2%80%8B', 'tab': '/v1/payment%09',
                  'fw_slash': '/v1%EF%BC%8Fpayment', 'star': '*', 'semi_pct': '/v1/payment%3Bx', 'pct_2e': '/v1/%2e/payment',
                  'kelvin_like': '/v1/paymeNt', 'long_s': '/v1/paym%C5%BFent'}.items():
        case('route_q2_' + vn, 'routing', http('POST', p, [JSON_CT], q2), rules=True)
    for vn, p in {'trailing': '/accounts/42/paymentInfo/', 'empty_id': '/accounts//paymentInfo', 'semi_id': '/accounts/42;x/paymentInfo',
                  'pct_id': '/accounts/4%32/paymentInfo', 'lower': '/accounts/42/paymentinfo', 'dotdot_id': '/accounts/../accounts/42/paymentInfo'}.items():
        case('route_hw_' + vn, 'routing', http('POST', p, [JSON_CT], dumps(hw())), rules=True)
    # path PANs (pass-through guard on the path)
    for vn, p in {'plain': '/pt/%s/b' % PAN, 'pct': '/pt/%s/b' % ''.join('%%%02X' % ord(c) for c in PAN), 'dbl': '/pt/%s/b' % ''.join('%%25%02X' % ord(c) for c in PAN),
                  'fullw': '/pt/%s/b' % ''.join('%%EF%%BC%%%02X' % (0x90 + int(c)) for c in PAN), 'semi': '/pt/a;%s/b' % PAN,
                  'dash': '/pt/4242-4242-4242-4242/b', 'plus': '/pt/4242+4242+4242+4242/b', 'across_seg': '/pt/4242424242/424242',
                  'dotdot': '/pt/x/../%s' % PAN, 'pct_u': '/pt/%s/b' % ''.join('%%u%04X' % ord(c) for c in PAN)}.items():
        case('path_pt_' + vn, 'path', http('GET', p), known='split over fields' if vn == 'across_seg' else None)
    # ---------- limits ----------
    big = dumps(dict(q2card(), pad='x' * (1024 * 1024)))
    case('limit_big_q2', 'limits', http('POST', P['q2'], [JSON_CT], big), rules=True)
    big2 = '{"pad":"%s","n":"%s"}' % ('x' * (2 * 1024 * 1024), PAN)
    case('limit_big_pt', 'limits', http('POST', P['pt'], [JSON_CT], big2))
    case('limit_big_pm', 'limits', http('POST', P['pm'], [JSON_CT], big2))
    case('limit_cl_lie_short', 'limits', http('POST', P['q2'], [JSON_CT, ('Content-Length', '10')], q2, cl=False), rules=True)
    many = '{' + ','.join('"k%d":"%s"' % (i, PAN) for i in range(70)) + '}'
    case('limit_many_pans_pm', 'limits', http('POST', P['pm'], [JSON_CT], many))
    many2 = dumps(dict(q2card(), **{'x%d' % i: '4111111111111111' for i in range(100)}))
    case('limit_many_pans_q2', 'limits', http('POST', P['q2'], [JSON_CT], many2), rules=True)
    deep = '[' * 200 + dumps(q2card()) + ']' * 200
    case('limit_deep_q2', 'limits', http('POST', P['q2'], [JSON_CT], deep), rules=True)
    wide = dumps({'x%d' % i: i for i in range(20000)} | q2card())
    case('limit_wide_q2', 'limits', http('POST', P['q2'], [JSON_CT], wide), rules=True)
    case('limit_long_header', 'limits', http('POST', P['q2'], [JSON_CT, ('X-Long', 'a' * 60000)], q2), rules=True)
    case('limit_slow_body', 'limits', lambda rid: b'', chunks=lambda rid: [(http('POST', P['pt'], [JSON_CT], '{"n":"4242424242424242"}')(rid)[:-12], 0.3), (b'4242424242"}', 0)])
    case('limit_short_body', 'limits', lambda rid: b'', chunks=lambda rid: [(http('POST', P['pt'], [JSON_CT], '{"n":"4242424242424242"}')(rid)[:-12], 0.3), (b'242424242"}', 0)], timeout=12, note='body 1 byte short of Content-Length')
    # split a pass-through card over TCP segments
    def split_chunks(rid):
        data = http('POST', P['pt'], [JSON_CT], '{"n":"%s"}' % PAN)(rid)
        i = data.index(PAN.encode()) + 8
        return [(data[:i], 0.4), (data[i:], 0)]
    case('pt_tcp_split', 'streaming', lambda rid: b'', chunks=split_chunks)
    def split_esc(rid):
        body = '{"n":"%s"}' % ''.join('\\u%04x' % ord(c) for c in PAN)
        data = http('POST', P['pt'], [JSON_CT], body)(rid)
        i = len(data) - 20
        return [(data[:i], 0.4), (data[i:], 0)]
    case('pt_tcp_split_esc', 'streaming', lambda rid: b'', chunks=split_esc)
    def chunked_split(rid):
        body = b'{"n":"%s"}' % PAN.encode()
        return [(http('POST', P['pt'], [JSON_CT, te], b'', cl=False)(rid), 0.2)] + [(b'1\r\n' + bytes([c]) + b'\r\n', 0.02) for c in body] + [(b'0\r\n\r\n', 0)]
    case('pt_chunked_bytewise', 'streaming', lambda rid: b'', chunks=chunked_split)
    # ---------- round 2 ----------
    # JS doubles: integers beyond 2^53 round, String() prints the rounded value
    for vn, v in {'int18': '424242424242424199', 'int19': '4242424242424241999', 'int18b': '424242424242424190', 'int17_amex': '37828224631000499',
                  'int18_mc': '555555555555544399', 'int20': '42424242424242419999'}.items():
        jpost('big_q2_' + vn, 'free-numbers', 'q2', dumps(q2card()).replace('"expYear":"2030"', '"expYear":"2030","identifier":%s' % v))
        jpost('big_pm_' + vn, 'free-numbers', 'pm', '{"customerId":"c","last4":"4242","amount":%s}' % v)
        jpost('big_brm_' + vn, 'free-numbers', 'brm', dumps(brm()).replace('"name":"n"', '"name":%s' % v))
        jpost('big_hw_' + vn, 'free-numbers', 'hw', dumps(hw()).replace('"expirationDate":"2030-1"', '"expirationDate":%s' % v))
    for vn, v in {'float_round': '4242424242424241.9', 'exp_round': '4.2424242424242419e15'}.items():
        jpost('free_brm_num_' + vn, 'free-numbers', 'brm', dumps(brm()).replace('"name":"n"', '"name":%s' % v))
        jpost('free_hw_num_' + vn, 'free-numbers', 'hw', dumps(hw()).replace('"expirationDate":"2030-1"', '"expirationDate":%s' % v))
        jpost('free_q2_arr_' + vn, 'free-numbers', 'q2', dumps(q2card()).replace('"expYear":"2030"', '"expYear":"2030","identifier":[1,%s]' % v))
        jpost('free_pm_form_' + vn, 'free-numbers', 'pm', 'amount=%s' % v, headers=(FORM_CT,))
    # body fields in the query string of rules routes (frameworks that merge query and body)
    for vn, q in {'plain': 'cardCode=218', 'snake': 'card_code=218', 'arr': 'cardCode[]=218', 'idx': 'cardCode[0]=218', 'pct_key': 'card%43ode=218',
                  'pct_brk': 'cardCode%5B%5D=218', 'semi': 'x=1;cardCode=218', 'nul': 'cardCode%00=218', 'proto': '__proto__[cardCode]=218',
                  'dots': 'cardCode.x=218', 'upper': 'CARDCODE=218', 'plus_key': 'card+Code=218', 'amp_enc': 'x=1%26cardCode%3D218',
                  'unclosed': 'cardCode[=218', 'lead_brk': '[cardCode]=218', 'many': '&'.join('p%d=1' % i for i in range(1100)) + '&cardCode=218'}.items():
        case('qry_q2_' + vn, 'query-fields', http('POST', P['q2'] + '?' + q, [JSON_CT], dumps(q2card())), rules=True)
    for vn, q in {'brk': 'details[accountNumber]=DE89370400440532013000', 'dot': 'details.accountNumber=DE89370400440532013000',
                  'arr': 'details[accountNumber][]=DE89370400440532013000', 'pct': 'details%5BaccountNumber%5D=DE89370400440532013000',
                  'deep': 'details[accountNumber][x]=DE89370400440532013000', 'top': 'accountNumber=DE89370400440532013000'}.items():
        case('qry_brm_' + vn, 'query-fields', http('POST', P['brm'] + '?' + q, [JSON_CT], dumps(brm())), rules=True)
    for vn, q in {'plain': 'payment_method[cvc]=218', 'dot': 'payment_method.cvc=218', 'top': 'cvc=218'}.items():
        case('qry_plano_' + vn, 'query-fields', http('POST', P['plano'] + '?' + q, [('Content-Type', 'text/plain')], b64(dumps(plano_json()))), rules=True)
    # custom multipart/form rules route: per-part charsets and RFC 2231 names
    cmp = {
        'base': [(['Content-Disposition: form-data; name="card_number"'], PAN), (['Content-Disposition: form-data; name="cvv"'], '218')],
        'cvv_utf16le': [(['Content-Disposition: form-data; name="card_number"'], PAN), (['Content-Disposition: form-data; name="cvv"', 'Content-Type: text/plain; charset=utf-16le'], '218'.encode('utf-16-le').decode('latin1'))],
        'cvv_utf7': [(['Content-Disposition: form-data; name="card_number"'], PAN), (['Content-Disposition: form-data; name="cvv"', 'Content-Type: text/plain; charset=utf-7'], '+ADIAMQA4-')],
        'cvv_base64cs': [(['Content-Disposition: form-data; name="card_number"'], PAN), (['Content-Disposition: form-data; name="cvv"', 'Content-Type: text/plain; charset=base64'], b64('218'))],
        'pan_utf16le': [(['Content-Disposition: form-data; name="card_number"', 'Content-Type: text/plain; charset=utf-16le'], PAN.encode('utf-16-le').decode('latin1')), (['Content-Disposition: form-data; name="cvv"'], '218')],
        'pan_utf7': [(['Content-Disposition: form-data; name="card_number"', 'Content-Type: text/plain; charset=utf-7'], '+ADQAMgA0ADIANAAyADQAMgA0ADIANAAyADQAMgA0ADI-'), (['Content-Disposition: form-data; name="cvv"'], '218')],
        'name_star': [(['Content-Disposition: form-data; name="card_number"'], PAN), (["Content-Disposition: form-data; name*=UTF-8''cvv"], '218')],
        'name_star_pct': [(['Content-Disposition: form-data; name="card_number"'], PAN), (["Content-Disposition: form-data; name*=UTF-8''c%76v"], '218')],
        'name_both': [(['Content-Disposition: form-data; name="card_number"'], PAN), (["Content-Disposition: form-data; name=\"x\"; name*=UTF-8''cvv"], '218')],
        'name_both_rev': [(['Content-Disposition: form-data; name="card_number"'], PAN), (["Content-Disposition: form-data; name*=UTF-8''cvv; name=\"x\""], '218')],
        'name_dup': [(['Content-Disposition: form-data; name="card_number"'], PAN), (['Content-Disposition: form-data; name="x"; name="cvv"'], '218')],
        'name_dup_rev': [(['Content-Disposition: form-data; name="card_number"'], PAN), (['Content-Disposition: form-data; name="cvv"; name="x"'], '218')],
        'name_quoted_esc': [(['Content-Disposition: form-data; name="card_number"'], PAN), (['Content-Disposition: form-data; name="c\\vv"'], '218')],
        'name_unquoted': [(['Content-Disposition: form-data; name=card_number'], PAN), (['Content-Disposition: form-data; name=cvv'], '218')],
        'name_case': [(['Content-Disposition: form-data; NAME="card_number"'], PAN), (['content-disposition: FORM-DATA; Name="cvv"'], '218')],
        'name_continuation': [(['Content-Disposition: form-data; name="card_number"'], PAN), (["Content-Disposition: form-data; name*0=\"c\"; name*1=\"vv\""], '218')],
        'filename_cvv': [(['Content-Disposition: form-data; name="card_number"'], PAN), (['Content-Disposition: form-data; name="cvv"; filename="a.txt"', 'Content-Type: application/octet-stream'], '218')],
        'cte_b64_cvv': [(['Content-Disposition: form-data; name="card_number"'], PAN), (['Content-Disposition: form-data; name="cvv"', 'Content-Transfer-Encoding: base64'], b64('218'))],
        'cte_qp_cvv': [(['Content-Disposition: form-data; name="card_number"'], PAN), (['Content-Disposition: form-data; name="cvv"', 'Content-Transfer-Encoding: quoted-printable'], '=32=31=38')],
        'cte_qp_utf16_cvv': [(['Content-Disposition: form-data; name="card_number"'], PAN), (['Content-Disposition: form-data; name="cvv"', 'Content-Transfer-Encoding: quoted-printable', 'Content-Type: text/plain; charset=utf-16le'], '2=001=008=00')],
        'cvv_ct_html': [(['Content-Disposition: form-data; name="card_number"'], PAN), (['Content-Disposition: form-data; name="cvv"', 'Content-Type: text/html; charset=utf-16be'], '218'.encode('utf-16-be').decode('latin1'))],
        'part_hdr_fold': [(['Content-Disposition: form-data; name="card_number"'], PAN), (['Content-Disposition: form-data;\r\n name="cvv"'], '218')],
        'charset_field': [(['Content-Disposition: form-data; name="_charset_"'], 'utf-16le'), (['Content-Disposition: form-data; name="card_number"'], PAN), (['Content-Disposition: form-data; name="cvv"'], '218'.encode('utf-16-le').decode('latin1'))],
    }
    for vn, parts in cmp.items():
        body = mp(parts).encode('latin1').replace(b'\\r\\n', b'\r\n')
        case('cmp_' + vn, 'custom-multipart', http('POST', '/custom-form', [mpct], body), rules=True)
    for vn, f in {'base': 'card_number=%s&cvv=218' % PAN, 'arr': 'card_number=%s&cvv[]=218' % PAN, 'pct': 'card_number=%s&c%%76v=218' % PAN,
                  'brk': 'card_number=%s&cvv[x]=218' % PAN, 'dup': 'card_number=%s&cvv=1&cvv=218' % PAN, 'semi': 'card_number=%s;cvv=218' % PAN,
                  'after_limit': '&'.join('p%d=1' % i for i in range(999)) + '&card_number=%s&cvv=218' % PAN, 'proto': 'card_number=%s&__proto__[cvv]=218' % PAN,
                  'utf8_sentinel_iso': 'utf8=%%26%%2310003%%3B&card_number=%s&c%%u0076v=218' % PAN, 'iso_pct_u': 'card_number=%s&c%%u0076v=218' % PAN}.items():
        case('cform_' + vn, 'custom-form', http('POST', '/custom-form', [FORM_CT], f), rules=True)
    case('cform_iso_charset', 'custom-form', http('POST', '/custom-form', [('Content-Type', 'application/x-www-form-urlencoded; charset=iso-8859-1')], 'card_number=%s&c%%u0076v=218' % PAN), rules=True)
    case('cjson_base', 'custom-form', http('POST', '/custom-form', [JSON_CT], dumps({"card_number": PAN, "cvv": "218"})), rules=True)
    case('cjson_text_plain_form', 'custom-form', http('POST', '/custom-form', [('Content-Type', 'text/plain')], 'card_number=%s&cvv=218' % PAN), rules=True)
    case('cjson_none_form', 'custom-form', http('POST', '/custom-form', [], 'card_number=%s&cvv=218' % PAN), rules=True)
    case('cjson_json_as_form', 'custom-form', http('POST', '/custom-form', [FORM_CT], dumps({"card_number": PAN, "cvv": "218"})), rules=True)
    case('cjson_form_as_json', 'custom-form', http('POST', '/custom-form', [JSON_CT], 'card_number=%s&cvv=218' % PAN), rules=True)
    # ---------- round 3: multipart part-header readings on the custom route ----------
    cd = {
        'Name': 'Content-Disposition: form-data; Name="cvv"', 'NAME': 'Content-Disposition: form-data; NAME="cvv"',
        'hdr_upper': 'CONTENT-DISPOSITION: form-data; name="cvv"', 'FORM_DATA': 'Content-Disposition: FORM-DATA; name="cvv"',
        'sp_eq': 'Content-Disposition: form-data; name = "cvv"', 'nospace': 'Content-Disposition: form-data;name="cvv"',
        'single_q': "Content-Disposition: form-data; name='cvv'", 'attachment': 'Content-Disposition: attachment; name="cvv"',
        'inline': 'Content-Disposition: inline; name="cvv"', 'tab': 'Content-Disposition:\tform-data;\tname="cvv"',
        'unterminated': 'Content-Disposition: form-data; name="cvv', 'trailing_semi': 'Content-Disposition: form-data; name="cvv";',
        'extra_param_first': 'Content-Disposition: form-data; foo="a;name=x"; name="cvv"', 'quoted_semicolon': 'Content-Disposition: form-data; name="cvv"; foo="x;name=y"',
        'name_in_quoted_first': 'Content-Disposition: form-data; foo="name=\\"cvv\\""; name="x"', 'filename_only': 'Content-Disposition: form-data; filename="cvv"',
        'filename_star': "Content-Disposition: form-data; name=\"cvv\"; filename*=UTF-8''a.txt", 'empty_filename': 'Content-Disposition: form-data; name="cvv"; filename=""',
        'name_2231_charset': "Content-Disposition: form-data; name*=us-ascii'en'cvv", 'name_pct_plain': 'Content-Disposition: form-data; name="c%76v"',
        'name_amp_ent': 'Content-Disposition: form-data; name="c&#118;v"', 'name_utf8_fw': 'Content-Disposition: form-data; name="ｃｖｖ"',
        'ws_before_colon': 'Content-Disposition : form-data; name="cvv"', 'dup_cd': 'Content-Disposition: form-data; name="x"\r\nContent-Disposition: form-data; name="cvv"',
        'dup_cd_rev': 'Content-Disposition: form-data; name="cvv"\r\nContent-Disposition: form-data; name="x"',
    }
    for vn, hdr in cd.items():
        parts = [(['Content-Disposition: form-data; name="card_number"'], PAN), ([hdr.replace('\\r\\n', '\r\n').replace('\\t', '\t')], '218')]
        case('cmp3_' + vn, 'custom-multipart', http('POST', '/custom-form', [mpct], mp(parts).encode('utf-8')), rules=True)
    for vn, ct in {'Boundary': 'multipart/form-data; Boundary=XyZ', 'BOUNDARY_q': 'multipart/form-data; BOUNDARY="XyZ"', 'sp_eq': 'multipart/form-data; boundary = XyZ',
                   'dup_b': 'multipart/form-data; boundary=Other; boundary=XyZ', 'dup_b_rev': 'multipart/form-data; boundary=XyZ; boundary=Other',
                   'charset16': 'multipart/form-data; boundary=XyZ; charset=utf-16le', 'mixed': 'multipart/mixed; boundary=XyZ', 'upper_type': 'MULTIPART/FORM-DATA; boundary=XyZ'}.items():
        parts = [(['Content-Disposition: form-data; name="card_number"'], PAN), (['Content-Disposition: form-data; name="cvv"'], '218')]
        case('cmpct_' + vn, 'custom-multipart', http('POST', '/custom-form', [('Content-Type', ct)], mp(parts)), rules=True)
    # per-part charsets under other part content types, on the custom route (CVV) and payment_method (PAN)
    for vn, pct in {'html16be': 'text/html; charset=utf-16be', 'html16le': 'text/html; charset=utf-16le', 'octet16': 'application/octet-stream; charset=utf-16be',
                    'json16be': 'application/json; charset=utf-16be', 'plain16be': 'text/plain; charset=utf-16be', 'plain_q16be': 'text/plain; charset="utf-16be"',
                    'csv7': 'text/csv; charset=utf-7', 'plain_CS': 'text/plain; CHARSET=utf-16be', 'noct_type': 'charset=utf-16be'}.items():
        val = '+ADIAMQA4-' if '7' in vn else '218'.encode('utf-16-be').decode('latin1')
        parts = [(['Content-Disposition: form-data; name="card_number"'], PAN), (['Content-Disposition: form-data; name="cvv"', 'Content-Type: ' + pct], val)]
        case('cmpcs_' + vn, 'custom-multipart', http('POST', '/custom-form', [mpct], mp(parts).encode('latin1')), rules=True)
        pval = '+ADQAMgA0ADIANAAyADQAMgA0ADIANAAyADQAMgA0ADI-' if '7' in vn else '4242 - 4242 - 4242 - 4242'.encode('utf-16-be').decode('latin1')
        case('mpcs_pm_' + vn, 'multipart', http('POST', P['pm'], [mpct], mp([(['Content-Disposition: form-data; name="n"', 'Content-Type: ' + pct], pval)]).encode('latin1')))
    # ---------- round 4: a pass-through upstream that answers before reading the body ----------
    def early(body_tail, delay=0.6, te=False):
        def chunks(rid):
            head_body = b'{"pad":"' + b'x' * 100 + b'","n":"'
            full = head_body + body_tail + b'"}'
            if te:
                h = http('POST', '/early', [JSON_CT, ('Transfer-Encoding', 'chunked')], b'', cl=False)(rid)
                return [(h + b'%x\r\n' % len(head_body) + head_body + b'\r\n', delay),
                        (b'%x\r\n' % (len(full) - len(head_body)) + full[len(head_body):] + b'\r\n0\r\n\r\n', 0)]
            h = http('POST', '/early', [JSON_CT], full)(rid)
            i = len(h) - len(full) + len(head_body)
            return [(h[:i], delay), (h[i:], 0)]
        return chunks
    for vn, tail in {'plain': PAN.encode(), 'spaced': b'4242 4242 4242 4242', 'esc': ''.join('\\u%04x' % ord(c) for c in PAN).encode()}.items():
        case('early_pt_' + vn, 'streaming', lambda rid: b'', chunks=early(tail), timeout=6, backends=['node'])
        case('early_pt_te_' + vn, 'streaming', lambda rid: b'', chunks=early(tail, te=True), timeout=6, backends=['node'])
    return CASES
