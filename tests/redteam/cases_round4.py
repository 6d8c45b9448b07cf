"""Round-4 red-team cases for vaultgate (none is in an earlier round's file).
build_cases() returns the list; gate.py sends them."""
import cases as C
from cases import http, dumps, PAN, P, JSON_CT, FORM_CT
from cases_more import mp, MPCT, chunked, TE

CASES = []


def case(name, cat, build, **kw):
    d = {'name': name, 'cat': cat, 'build': build}
    d.update(kw)
    CASES.append(d)


FW = ''.join(chr(0xFF10 + int(c)) for c in PAN)
HTML_CT = ('Content-Type', 'text/html')


def build_cases():
    CASES.clear()
    # ============ 1. HTML <meta charset> (jsoup, BeautifulSoup, lxml decode a byte body by it) ============
    for enc, name in [('shift_jis', 'shift_jis'), ('euc_jp', 'EUC-JP'), ('gb18030', 'gb18030'), ('big5', 'Big5'),
                      ('euc_kr', 'euc-kr'), ('iso2022_jp', 'ISO-2022-JP'), ('shift_jis', 'SJIS')]:
        for vn, head in {
            'charset': '<meta charset="%s">' % name,
            'equiv': '<meta http-equiv="Content-Type" content="text/html; charset=%s">' % name,
            'upper': '<META CHARSET=%s>' % name.upper(),
        }.items():
            body = ('<html><head>%s</head><body><p>' % head).encode() + FW.encode(enc) + b'</p></body></html>'
            case('meta_pt_%s_%s' % (vn, name), 'html-meta', http('POST', P['pt'], [HTML_CT], body))
            case('meta_pm_%s_%s' % (vn, name), 'html-meta', http('POST', P['pm'], [HTML_CT], body))
        body = ('<html><head><meta charset="%s"></head><body><p>' % name).encode() + FW.encode(enc) + b'</p></body></html>'
        case('meta_pt_chunked_%s' % name, 'html-meta', http('POST', P['pt'], [HTML_CT, TE], chunked(body, size=5), cl=False))
        part = mp([(['Content-Disposition: form-data; name="page"', 'Content-Type: text/html'], body.decode('latin1'))]).encode('latin1')
        case('meta_pt_part_%s' % name, 'html-meta', http('POST', P['pt'], [MPCT], part))
        case('meta_pm_part_%s' % name, 'html-meta', http('POST', P['pm'], [MPCT], part))
    # a base64 field on a rules route holding a Shift_JIS page
    import base64
    page = b'<html><meta charset="shift_jis"><p>' + FW.encode('shift_jis') + b'</p></html>'
    case('meta_q2_b64_field', 'html-meta', http('POST', P['q2'], [JSON_CT], dumps(dict(C.q2card(), note=base64.b64encode(page).decode()))), rules=True)
    # controls: ASCII-transparent declarations and ordinary pages pass
    for name in ('utf-8', 'UTF-8', 'iso-8859-1', 'windows-1252'):
        body = ('<html><head><meta charset="%s"><meta http-equiv="Content-Type" content="text/html; charset=%s"></head><body><p>12.50</p></body></html>' % (name, name)).encode()
        case('metaok_pt_%s' % name, 'html-meta-ok', http('POST', P['pt'], [HTML_CT], body), expect_ok=True)
        case('metaok_pm_%s' % name, 'html-meta-ok', http('POST', P['pm'], [HTML_CT], body), expect_ok=True)
    body = b'<html><head><meta name="viewport" content="width=device-width"><meta property="og:title" content="Order 12"></head><body><p>12.50</p></body></html>'
    case('metaok_pt_no_charset', 'html-meta-ok', http('POST', P['pt'], [HTML_CT], body), expect_ok=True)
    import gzip
    page = b'<html><meta charset="shift_jis"><p>' + FW.encode('shift_jis') + b'</p></html>'
    case('meta_pt_gzip', 'html-meta', http('POST', P['pt'], [HTML_CT, ('Content-Encoding', 'gzip')], gzip.compress(page)))
    # ============ 2. EBCDIC XML (libxml2 and Xerces detect it from `<?xm` = 4C 6F A7 94): refused already ============
    for cp in ('cp037', 'cp500', 'cp1140'):
        doc = ('<?xml version="1.0" encoding="%s"?><pay><n>%s</n></pay>' % ({'cp037': 'IBM037', 'cp500': 'IBM500', 'cp1140': 'IBM01140'}[cp], PAN)).encode(cp)
        for rn in ('pt', 'pm'):
            case('ebcdic_%s_%s' % (rn, cp), 'xml-ebcdic', http('POST', P[rn], [('Content-Type', 'application/xml')], doc))
        doc2 = ('<?xml version="1.0"?><pay><n>%s</n></pay>' % PAN).encode(cp)
        case('ebcdic_nodecl_pt_%s' % cp, 'xml-ebcdic', http('POST', P['pt'], [('Content-Type', 'application/xml')], doc2))
    # ============ 3. a card spelled across the keys of a refusal's location, five digits a key ============
    FW2 = ''.join(chr(0xFF10 + int(c)) for c in '4111111111111111')
    for rn in ('q2', 'pm', 'brm'):
        body = '{"42424":{"24242":{"42424":{"2":"%s"}}}}' % FW2
        case('locecho_%s_nested' % rn, 'error-echo', http('POST', P[rn], [JSON_CT], body), rules=rn != 'pm')
        body = '{"4242-4":{"242-42":{"4242-4":{"2":"%s"}}}}' % FW2
        case('locecho_%s_dashed' % rn, 'error-echo', http('POST', P[rn], [JSON_CT], body), rules=rn != 'pm')
    body = 'card_number=4111111111111111&a.42424.24242.42424.2=%EF%BC%94%EF%BC%91%EF%BC%91%EF%BC%91%EF%BC%91%EF%BC%91%EF%BC%91%EF%BC%91%EF%BC%91%EF%BC%91%EF%BC%91%EF%BC%91%EF%BC%91%EF%BC%91%EF%BC%91%EF%BC%91'
    case('locecho_form_dots', 'error-echo', http('POST', '/custom-form', [FORM_CT], body), rules=True)
    return CASES
