"""Round-3 red-team cases for vaultgate (none is in cases.py or cases_more.py).
build_cases() returns the list; gate.py sends them."""
import json
import cases as C
from cases import http, dumps, PAN, P, JSON_CT, FORM_CT
from cases_more import mp, MPCT, chunked, TE

CASES = []


def case(name, cat, build, **kw):
    d = {'name': name, 'cat': cat, 'build': build}
    d.update(kw)
    CASES.append(d)


FW = ''.join(chr(0xFF10 + int(c)) for c in PAN)
XML_CT = ('Content-Type', 'application/xml')


def build_cases():
    CASES.clear()
    # ============ 1. XML declarations naming an encoding (Java's parser decodes by them) ============
    for enc, name in [('shift_jis', 'Shift_JIS'), ('gb18030', 'GB18030'), ('big5', 'Big5'), ('euc_jp', 'EUC-JP'), ('euc_kr', 'EUC-KR'),
                      ('iso2022_jp', 'ISO-2022-JP'), ('cp949', 'x-windows-949'), ('gbk', 'GBK'), ('shift_jis', 'SJIS'), ('shift_jis', 'MS932')]:
        body = ('<?xml version="1.0" encoding="%s"?><pay><n>' % name).encode() + FW.encode(enc) + b'</n></pay>'
        for rn in ('pt', 'pm'):
            case('xmldecl_%s_%s' % (rn, name), 'xml-decl', http('POST', P[rn], [XML_CT], body), xmldecl=True)
        case('xmldecl_pt_ctutf8_%s' % name, 'xml-decl', http('POST', P['pt'], [('Content-Type', 'text/xml; charset=utf-8')], body), xmldecl=True)
        part = mp([(['Content-Disposition: form-data; name="doc"', 'Content-Type: application/xml'], body.decode('latin1'))]).encode('latin1')
        case('xmldecl_pt_part_%s' % name, 'xml-decl', http('POST', P['pt'], [MPCT], part), xmldecl=True)
        case('xmldecl_pm_part_%s' % name, 'xml-decl', http('POST', P['pm'], [MPCT], part), xmldecl=True)
        case('xmldecl_pt_chunked_%s' % name, 'xml-decl', http('POST', P['pt'], [XML_CT, TE], chunked(body, size=5), cl=False), xmldecl=True)
    # single-quoted, spaced declaration
    body = b"<?xml version='1.0' encoding = 'shift_jis' ?><a>" + FW.encode('shift_jis') + b'</a>'
    case('xmldecl_pt_odd_spelling', 'xml-decl', http('POST', P['pt'], [XML_CT], body), xmldecl=True)
    # upper case: Java and expat refuse `<?XML` (a reserved PI target): no document; the judge
    # here decodes naively, so this one is expected to be forwarded and flagged (not a finding)
    body = b"<?XML VERSION='1.0' ENCODING = 'shift_jis' ?><a>" + FW.encode('shift_jis') + b'</a>'
    case('xmldecl_pt_upper_no_parser_reads', 'xml-decl-known', http('POST', P['pt'], [XML_CT], body), known='parsers refuse <?XML')
    # BOM then declaration
    body = b'\xef\xbb\xbf<?xml version="1.0" encoding="Shift_JIS"?><a>' + FW.encode('shift_jis') + b'</a>'
    case('xmldecl_pt_bom', 'xml-decl', http('POST', P['pt'], [XML_CT], body), xmldecl=True)
    # controls: declarations the guard reads, ordinary XML passes
    for name in ('UTF-8', 'ISO-8859-1', 'windows-1252', 'US-ASCII'):
        body = ('<?xml version="1.0" encoding="%s"?><pay><amount>12.50</amount></pay>' % name).encode()
        case('xmlok_pt_%s' % name, 'xml-decl-ok', http('POST', P['pt'], [XML_CT], body), expect_ok=True)
        case('xmlok_pm_%s' % name, 'xml-decl-ok', http('POST', P['pm'], [XML_CT], body), expect_ok=True)
    # ============ 2. a field a route reads in the query string, sent in the body ============
    q = '/custom-q?card_number=%s' % PAN
    for vn, (ct, body) in {
        'form': (FORM_CT, 'cvv=218'), 'form_upper': (FORM_CT, 'CVV=218'), 'form_bracket': (FORM_CT, 'cvv[]=218'),
        'form_semicolon': (FORM_CT, 'a=1;cvv=218'), 'json': (JSON_CT, '{"cvv":"218"}'), 'json_num': (JSON_CT, '{"cvv":218}'),
        'json_arr': (JSON_CT, '{"cvv":["218"]}'),
        'multipart': (MPCT, mp([(['Content-Disposition: form-data; name="cvv"'], '218')])),
        'json_pan': (JSON_CT, '{"card_number":"%s"}' % PAN),
    }.items():
        case('qbody_%s' % vn, 'query-fields-in-body', http('POST', q, [ct], body), rules=True)
    case('qbody_ok_amount', 'query-fields-in-body-ok', http('POST', q + '&cvv=218', [FORM_CT], 'amount=12'), rules=True, expect_ok=True)
    case('qbody_ok_text', 'query-fields-in-body-ok', http('POST', q + '&cvv=218', [('Content-Type', 'text/plain')], 'hello'), rules=True, expect_ok=True)
    # ============ 3. a card written as a key's bracket index: the error must not name it ============
    for vn, (path, ct, body) in {
        'dup_form': ('/custom-form', FORM_CT, 'card_number=4111111111111111&cvv[%s]=218&cvv[%s]=219' % (PAN, PAN)),
        'dup_zero': ('/custom-form', FORM_CT, 'card_number=4111111111111111&cvv[000%s]=218&cvv[000%s]=219' % (PAN, PAN)),
        'dup_nested': ('/custom-form', FORM_CT, 'card_number=4111111111111111&cvv[0][%s]=218&cvv[0][%s]=219' % (PAN, PAN)),
        'q2_query': ('/v1/payment?cardCode[%s]=218' % PAN, JSON_CT, dumps(C.q2card())),
        'q2_query_pct': ('/v1/payment?cardCode[%%34%s]=218' % PAN[1:], JSON_CT, dumps(C.q2card())),
        'custom_query': ('/custom-form?cvv[%s]=1' % PAN, FORM_CT, 'card_number=4111111111111111'),
        'mp_name': ('/custom-form', MPCT, mp([(['Content-Disposition: form-data; name="card_number"'], '4111111111111111'),
                                              (['Content-Disposition: form-data; name="cvv[%s]"' % PAN], '218'),
                                              (['Content-Disposition: form-data; name="cvv[%s]"' % PAN], '219')])),
    }.items():
        case('echo_%s' % vn, 'error-echo', http('POST', path, [ct], body), rules=True)
    # ============ 4. transport ============
    def pipelined(rid):
        r1 = http('POST', P['pt'], [JSON_CT], '{}', close=False)(rid)
        r2 = http('POST', P['pt'], [JSON_CT], '{"n":"%s"}' % PAN)(rid + '-2')
        return r1 + r2
    case('tr_pipeline_card_second', 'transport3', pipelined)
    def pipelined_rules(rid):
        r1 = http('POST', P['q2'], [JSON_CT], dumps(C.q2card()), close=False)(rid)
        r2 = http('POST', P['q2'], [JSON_CT], dumps(C.q2card(pan='5555555555554444')))(rid + '-2')
        return r1 + r2
    case('tr_pipeline_rules', 'transport3', pipelined_rules, rules=True)
    case('tr_expect_pt', 'transport3', http('POST', P['pt'], [JSON_CT, ('Expect', '100-continue')], '{"n":"%s"}' % PAN))
    case('tr_chunk_ext_card', 'transport3', http('POST', P['pt'], [JSON_CT, TE], chunked(b'{"a":1}', ext=';n=%s' % PAN), cl=False))
    case('tr_options_star', 'transport3', http('OPTIONS', '*', []))
    case('tr_long_uri', 'transport3', http('GET', '/pt/' + 'a' * 9000 + '?n=' + PAN, []))
    case('tr_abs_form_pt', 'transport3', http('GET', 'http://x/pt/a?n=%s' % PAN, []))
    case('tr_conn_nominates_ct', 'transport3', http('POST', P['q2'], [JSON_CT, ('Connection', 'content-type, close')], dumps(C.q2card())), rules=True, close=False)
    # ============ 5. numbers ============
    for vn, lit in {'neg_zero_frac': '-4242424242424242.0', 'plus_str': '"+4242424242424242"', 'underscore_str': '"4242_4242_4242_4242"',
                    'trailing_dot0_str': '"4242424242424242.0"', 'exp_str': '"4.242424242424242e15"', 'bigint_n': '"4242424242424242n"',
                    'key_num': None}.items():
        body = '{"%s":1}' % PAN if lit is None else '{"amount":%s}' % lit
        case('num3_pt_%s' % vn, 'numbers3', http('POST', P['pt'], [JSON_CT], body), numeric=True)
        case('num3_pm_%s' % vn, 'numbers3', http('POST', P['pm'], [JSON_CT], body), numeric=True)
    return CASES
