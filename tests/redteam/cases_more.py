"""Session-19 red-team cases for vaultgate (new; none of these is in cases.py).
Reuses cases.py's helpers.  build_cases() returns the list; harness_s19.py sends them."""
import base64, gzip, json, zlib
import cases as C
from cases import http, dumps, b64, PAN, P, JSON_CT, FORM_CT, q2card, hw

CASES = []


def case(name, cat, build, **kw):
    d = {'name': name, 'cat': cat, 'build': build}
    d.update(kw)
    CASES.append(d)


def luhn_ok(s):
    t = 0
    for i, ch in enumerate(reversed(s)):
        d = int(ch)
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        t += d
    return t % 10 == 0


def card_from(prefix, alphabet, n=16):
    """A Luhn-valid card of n digits from prefix, using only `alphabet` digits."""
    import itertools
    for tail in itertools.product(alphabet, repeat=n - len(prefix)):
        s = prefix + ''.join(tail)
        if luhn_ok(s):
            return s
    raise ValueError


# a Mastercard 2-series number made of the digits 1, 2, 3 only (latin1 has superscript 1, 2, 3)
PAN123 = card_from('2221', '123')
if PAN123 not in C.PANS:
    C.PANS.append(PAN123)

SUP = {'1': '\xb9', '2': '\xb2', '3': '\xb3'}


def mp(parts, boundary='XyZ', extra='', nl='\r\n'):
    out = ''
    for hdrs, data in parts:
        out += '--%s%s%s%s%s%s%s' % (boundary, nl, nl.join(hdrs), nl, nl, data, nl)
    return out + '--%s--%s' % (boundary, nl) + extra


MPCT = ('Content-Type', 'multipart/form-data; boundary=XyZ')
TE = ('Transfer-Encoding', 'chunked')


def chunked(body, size=7, ext='', trailer=''):
    out = b''
    for i in range(0, len(body), size):
        part = body[i:i + size]
        out += b'%x%s\r\n' % (len(part), ext.encode()) + part + b'\r\n'
    return out + b'0\r\n' + trailer.encode() + b'\r\n'


def build_cases():
    CASES.clear()
    L1 = lambda s: s.encode('latin1')
    # ================= 1. single-byte charsets: separators/digits that are not ASCII =================
    seps = {'nbsp': b'\xa0', 'shy': b'\xad', 'middot': b'\xb7', 'nbsp3': b'\xa0\xa0\xa0'}
    seps1252 = {'bullet': b'\x95', 'endash': b'\x96', 'emdash': b'\x97'}
    g = lambda sep: sep.join([b'4242'] * 4)
    for cs, table in (('latin1', seps), ('iso-8859-1', {'nbsp': b'\xa0'}), ('windows-1252', dict(seps, **seps1252)), ('iso-8859-15', {'nbsp': b'\xa0'})):
        for sn, sep in table.items():
            body = b'{"note":"' + g(sep) + b'"}'
            tp = ('Content-Type', 'text/plain; charset=' + cs)
            case('sb_pt_text_%s_%s' % (cs, sn), 'single-byte', http('POST', P['pt'], [tp], body))
            case('sb_pm_text_%s_%s' % (cs, sn), 'single-byte', http('POST', P['pm'], [tp], body))
    for sn, sep in dict(seps, **seps1252).items():
        tp = ('Content-Type', 'text/plain; charset=windows-1252')
        case('sb_custom_text_%s' % sn, 'single-byte', http('POST', '/custom-form', [tp], b'note=' + g(sep)), rules=True)
        case('sb_plano_text_%s' % sn, 'single-byte', http('POST', P['plano'], [tp], b64(dumps(C.plano_json(C.PANS[1]))).encode() + b'\n' + g(sep)), rules=True)
        case('sb_pt_html_%s' % sn, 'single-byte', http('POST', P['pt'], [('Content-Type', 'text/html; charset=windows-1252')], b'<p>' + g(sep) + b'</p>'))
        case('sb_pt_octet_%s' % sn, 'single-byte', http('POST', P['pt'], [('Content-Type', 'application/octet-stream')], g(sep)))
    # urlencoded forms declared iso-8859-1 (body-parser + qs decode raw bytes and %XX as latin1)
    fct = ('Content-Type', 'application/x-www-form-urlencoded; charset=iso-8859-1')
    for sn, sep in seps.items():
        case('sb_pt_form_raw_%s' % sn, 'single-byte', http('POST', P['pt'], [fct], b'n=' + g(sep)))
        case('sb_pm_form_raw_%s' % sn, 'single-byte', http('POST', P['pm'], [fct], b'n=' + g(sep)))
        pct = ''.join('%%%02X' % b for b in sep)
        case('sb_pt_form_pct_%s' % sn, 'single-byte', http('POST', P['pt'], [fct], 'n=' + pct.join(['4242'] * 4)))
        case('sb_pm_form_pct_%s' % sn, 'single-byte', http('POST', P['pm'], [fct], 'n=' + pct.join(['4242'] * 4)))
        case('sb_custom_form_pct_%s' % sn, 'single-byte', http('POST', '/custom-form', [fct], 'x=1&note=' + pct.join(['4242'] * 4)), rules=True)
    # latin1 superscript digits (NFKC reads them as 1, 2, 3)
    sup = ''.join(SUP[c] for c in PAN123)
    case('sb_pt_text_latin1_sup', 'single-byte', http('POST', P['pt'], [('Content-Type', 'text/plain; charset=latin1')], L1('n=' + sup)))
    case('sb_pm_text_latin1_sup', 'single-byte', http('POST', P['pm'], [('Content-Type', 'text/plain; charset=latin1')], L1('n=' + sup)))
    case('sb_pt_form_pct_sup', 'single-byte', http('POST', P['pt'], [fct], 'n=' + ''.join('%%%02X' % ord(SUP[c]) for c in PAN123)))
    case('sb_pm_form_pct_sup', 'single-byte', http('POST', P['pm'], [fct], 'n=' + ''.join('%%%02X' % ord(SUP[c]) for c in PAN123)))
    # multipart parts declared latin1
    for sn, sep in dict(seps, **seps1252).items():
        cs = 'windows-1252'
        body = mp([(['Content-Disposition: form-data; name="n"', 'Content-Type: text/plain; charset=%s' % cs], g(sep).decode('latin1'))]).encode('latin1')
        case('sb_pt_mp_%s' % sn, 'single-byte', http('POST', P['pt'], [MPCT], body))
        case('sb_pm_mp_%s' % sn, 'single-byte', http('POST', P['pm'], [MPCT], body))
        body2 = mp([(['Content-Disposition: form-data; name="card_number"'], PAN), (['Content-Disposition: form-data; name="note"', 'Content-Type: text/plain; charset=%s' % cs], g(sep).decode('latin1'))]).encode('latin1')
        case('sb_custom_mp_%s' % sn, 'single-byte', http('POST', '/custom-form', [MPCT], body2), rules=True)
    # header values with obs-text on the scan_headers route (Node reads header bytes as latin1)
    for sn, sep in dict(seps, **seps1252).items():
        case('sb_hwh_hdr_%s' % sn, 'single-byte', http('POST', P['hwh'], [JSON_CT, ('X-Note', g(sep).decode('latin1'))], dumps(hw())), rules=True, scan_headers=True)
        case('sb_hwh_cookie_%s' % sn, 'single-byte', http('POST', P['hwh'], [JSON_CT, ('Cookie', 'n=' + g(sep).decode('latin1'))], dumps(hw())), rules=True, scan_headers=True)
    # ================= 2. JSON short escapes as separators on pass-through =================
    for en, e in {'slash': '\\/', 'tab': '\\t', 'nl': '\\n', 'cr': '\\r', 'crlf': '\\r\\n', 'ff': '\\f', 'bs': '\\b', 'slash2': '\\/\\/', 'sp_slash': ' \\/ '}.items():
        body = '{"note":"%s"}' % e.join(['4242'] * 4)
        case('jesc_pt_' + en, 'json-short-escapes', http('POST', P['pt'], [JSON_CT], body))
        case('jesc_pm_' + en, 'json-short-escapes', http('POST', P['pm'], [JSON_CT], body))
        case('jesc_pt_chunked_' + en, 'json-short-escapes', http('POST', P['pt'], [JSON_CT, TE], chunked(body.encode(), 5), cl=False))
    # date-like and slash dates
    case('jesc_pt_slash_amex', 'json-short-escapes', http('POST', P['pt'], [JSON_CT], '{"note":"3782\\/822463\\/10005"}'))
    case('jesc_pt_gzip_slash', 'json-short-escapes', http('POST', P['pt'], [JSON_CT, ('Content-Encoding', 'gzip')], gzip.compress(b'{"note":"4242\\/4242\\/4242\\/4242"}')))
    # ================= 3. surrogate-pair escapes and other-plane digits =================
    def surr(cp):
        v = cp - 0x10000
        return '\\u%04x\\u%04x' % (0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF))
    for zn, zero in {'mathbold': 0x1D7CE, 'mathmono': 0x1D7F6, 'osmanya': 0x104A0, 'adlam': 0x1E950, 'segmented': 0x1FBF0, 'brahmi': 0x11066}.items():
        esc = ''.join(surr(zero + int(c)) for c in PAN)
        case('surr_pt_' + zn, 'unicode-digits', http('POST', P['pt'], [JSON_CT], '{"note":"%s"}' % esc))
        case('surr_pm_' + zn, 'unicode-digits', http('POST', P['pm'], [JSON_CT], '{"note":"%s"}' % esc))
        case('surr_pt_pctu_' + zn, 'unicode-digits', http('POST', P['pt'], [fct], 'n=' + esc.replace('\\u', '%u')))
        raw = ''.join(chr(zero + int(c)) for c in PAN)
        case('uni_pt_path_' + zn, 'unicode-digits', http('GET', '/pt/' + ''.join('%%%02X' % b for b in raw.encode()) + '/b'))
    # ================= 4. number literals in query strings / forms / text on pass-through =================
    for vn, v in {'float_round': '4242424242424241.9', 'exp_int': '42424242424242420e-1', 'exp_round': '4.2424242424242419e15', 'plus_exp': '4.242424242424242E%2B15'}.items():
        case('numq_pt_' + vn, 'query-numbers', http('GET', P['pt'] + '?amount=' + v), numeric=True)
        case('numq_pm_' + vn, 'query-numbers', http('POST', P['pm'] + '?amount=' + v, [JSON_CT], '{"a":1}'), numeric=True)
        case('numf_pt_' + vn, 'query-numbers', http('POST', P['pt'], [FORM_CT], 'amount=' + v), numeric=True)
        case('nump_pt_' + vn, 'query-numbers', http('GET', '/pt/' + v + '/b'), numeric=True)
    # ================= 5. multipart: nesting, folding, RFC 2231 / 2047 parameters =================
    inner_b64 = '--In\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n%s\r\n--In--\r\n' % b64(PAN)
    inner_qp = '--In\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n%s\r\n--In--\r\n' % ''.join('=%02X' % ord(c) for c in PAN)
    for vn, inner in {'b64': inner_b64, 'qp': inner_qp}.items():
        parts = [(['Content-Disposition: form-data; name="files"', 'Content-Type: multipart/mixed; boundary=In'], inner)]
        body = mp(parts)
        case('mpn_pt_' + vn, 'multipart-nested', http('POST', P['pt'], [MPCT], body), walk=True)
        case('mpn_pm_' + vn, 'multipart-nested', http('POST', P['pm'], [MPCT], body), walk=True)
        case('mpn_custom_' + vn, 'multipart-nested', http('POST', '/custom-form', [MPCT], mp([(['Content-Disposition: form-data; name="card_number"'], PAN)] + parts)), rules=True, walk=True)
        # top-level multipart/mixed body (email-style)
        case('mpn_pt_mixed_' + vn, 'multipart-nested', http('POST', P['pt'], [('Content-Type', 'multipart/mixed; boundary=In')], inner), walk=True)
        case('mpn_pt_related_' + vn, 'multipart-nested', http('POST', P['pt'], [('Content-Type', 'multipart/related; boundary=In')], inner), walk=True)
    # part header folding (obs-fold) and odd spellings of Content-Transfer-Encoding
    for vn, hdr in {'fold': 'Content-Transfer-Encoding:\r\n base64', 'fold_tab': 'Content-Transfer-Encoding:\r\n\tbase64',
                    'fold_mid': 'Content-Transfer-Encoding: \r\n base64', 'ws_colon': 'Content-Transfer-Encoding : base64',
                    'comment': 'Content-Transfer-Encoding: base64 (x)', 'quoted': 'Content-Transfer-Encoding: "base64"',
                    'ctype_fold_cs': 'Content-Type: text/plain;\r\n charset=utf-16le', 'upper': 'CONTENT-TRANSFER-ENCODING: BASE64',
                    'nul': 'Content-Transfer-Encoding: base64\x00', 'x_uue': 'Content-Transfer-Encoding: x-uuencode'}.items():
        data = b64(PAN) if 'cs' not in vn else PAN.encode('utf-16-le').decode('latin1')
        parts = [(['Content-Disposition: form-data; name="n"', hdr], data)]
        case('mph_pt_' + vn, 'multipart-heads', http('POST', P['pt'], [MPCT], mp(parts).encode('latin1')), walk=True)
        case('mph_pm_' + vn, 'multipart-heads', http('POST', P['pm'], [MPCT], mp(parts).encode('latin1')), walk=True)
    # LF-only framing with a base64 part on pass-through
    parts = [(['Content-Disposition: form-data; name="n"', 'Content-Transfer-Encoding: base64'], b64(PAN))]
    case('mph_pt_lf_only_b64', 'multipart-heads', http('POST', P['pt'], [MPCT], mp(parts, nl='\n')), walk=True)
    case('mph_pt_mixed_nl_b64', 'multipart-heads', http('POST', P['pt'], [MPCT], '--XyZ\r\nContent-Disposition: form-data; name="n"\nContent-Transfer-Encoding: base64\n\n%s\r\n--XyZ--\r\n' % b64(PAN)), walk=True)
    # filenames: RFC 2231 continuations, percent-encoded, RFC 2047 encoded words
    fn = {
        'cont': 'Content-Disposition: form-data; name="f"; filename*0="4242424242"; filename*1="424242.txt"',
        'cont_star': "Content-Disposition: form-data; name=\"f\"; filename*0*=UTF-8''4242424242; filename*1=\"424242.txt\"",
        'cont_pct': "Content-Disposition: form-data; name=\"f\"; filename*=UTF-8''%34%32%34%32%34%32%34%32%34%32%34%32%34%32%34%32.txt",
        'rfc2047_b': 'Content-Disposition: form-data; name="f"; filename="=?utf-8?B?%s?="' % b64(PAN + '.txt'),
        'rfc2047_q': 'Content-Disposition: form-data; name="f"; filename="=?utf-8?Q?%s?="' % ''.join('=%02X' % ord(c) for c in PAN),
        'name_cont': 'Content-Disposition: form-data; name*0="4242424242"; name*1="424242"',
        'name_2047': 'Content-Disposition: form-data; name="=?utf-8?B?%s?="' % b64(PAN),
    }
    for vn, hdr in fn.items():
        body = mp([([hdr, 'Content-Type: application/octet-stream'], 'x')])
        case('mpf_pt_' + vn, 'multipart-params', http('POST', P['pt'], [MPCT], body), walk=True)
        case('mpf_pm_' + vn, 'multipart-params', http('POST', P['pm'], [MPCT], body), walk=True)
    # boundary given via RFC 2231 / folded Content-Type on the request itself
    body = mp([(['Content-Disposition: form-data; name="n"', 'Content-Transfer-Encoding: base64'], b64(PAN))])
    for vn, ct in {'bstar': "multipart/form-data; boundary*=''XyZ", 'bcont': 'multipart/form-data; boundary*0="Xy"; boundary*1="Z"',
                   'bdup_other': 'multipart/form-data; boundary=Nope; boundary*=\'\'XyZ'}.items():
        case('mpb_pt_' + vn, 'multipart-heads', http('POST', P['pt'], [('Content-Type', ct)], body), walk=True)
        case('mpb_pm_' + vn, 'multipart-heads', http('POST', P['pm'], [('Content-Type', ct)], body), walk=True)
        cbody = mp([(['Content-Disposition: form-data; name="card_number"'], PAN), (['Content-Disposition: form-data; name="cvv"'], '218')])
        case('mpb_custom_' + vn, 'multipart-heads', http('POST', '/custom-form', [('Content-Type', ct)], cbody), rules=True, walk=True)
    # quoted-printable part, boundary only in RFC 2231 form
    qbody = mp([(['Content-Disposition: form-data; name="n"', 'Content-Transfer-Encoding: quoted-printable'], ''.join('=%02X' % ord(c) for c in PAN))])
    case('mpb_pt_bstar_qp', 'multipart-heads', http('POST', P['pt'], [('Content-Type', "multipart/form-data; boundary*=''XyZ")], qbody), walk=True)
    # ================= 6. markup: XML CDATA / comments / entities splitting a number =================
    xmls = {
        'cdata_empty': '<r><n>42424242<![CDATA[]]>42424242</n></r>',
        'cdata_wrap': '<r><n><![CDATA[4242424242]]><![CDATA[424242]]></n></r>',
        'comment': '<r><n>42424242<!-- x -->42424242</n></r>',
        'pi': '<r><n>42424242<?x y?>42424242</n></r>',
        'entity_decl': '<!DOCTYPE r [<!ENTITY a "42424242">]><r><n>&a;&a;</n></r>',
        'cdata_sp': '<r><n>4242 <![CDATA[4242]]> 4242 4242</n></r>',
    }
    for vn, x in xmls.items():
        case('xml_pt_' + vn, 'xml', http('POST', P['pt'], [('Content-Type', 'application/xml')], '<?xml version="1.0"?>' + x), xml=True)
        case('xml_pm_' + vn, 'xml', http('POST', P['pm'], [('Content-Type', 'text/xml')], '<?xml version="1.0"?>' + x), xml=True)
    for vn, t in {'nbsp': '&nbsp;', 'NBSP_long': '&NonBreakingSpace;', 'ndash': '&ndash;', 'middot': '&middot;', 'thinsp': '&thinsp;'}.items():
        case('html_pt_' + vn, 'html-entities', http('POST', P['pt'], [('Content-Type', 'text/html')], '<p>%s</p>' % t.join(['4242'] * 4)), html=True)
        case('html_pm_' + vn, 'html-entities', http('POST', P['pm'], [('Content-Type', 'text/html')], '<p>%s</p>' % t.join(['4242'] * 4)), html=True)
    # ================= 7. content codings on pass-through =================
    good = b'{"n":"%s"}' % PAN.encode()
    for vn, (ce, body) in {'gz_two_members': ('gzip', gzip.compress(b'{"a":1}') + gzip.compress(good)),
                           'gz_trailing_plain': ('gzip', gzip.compress(b'{"a":1}') + good),
                           'gz_trailing_zero_then_member': ('gzip', gzip.compress(b'{"a":1}') + b'\x00' * 8 + gzip.compress(good)),
                           'zlib_trailing': ('deflate', zlib.compress(b'{"a":1}') + good),
                           'zlib_two': ('deflate', zlib.compress(b'{"a":1}') + zlib.compress(good)),
                           'gz_fextra': ('gzip', b'\x1f\x8b\x08\x04' + b'\x00' * 6 + b'\x16\x00' + b'xx\x12\x00' + PAN.encode()[:8] + b'a' * 10 + gzip.compress(b'{"a":1}')[10:]),
                           'gz_fname': ('gzip', b'\x1f\x8b\x08\x08' + b'\x00' * 6 + PAN.encode() + b'\x00' + gzip.compress(b'{"a":1}')[10:]),
                           'gz_fcomment': ('gzip', b'\x1f\x8b\x08\x10' + b'\x00' * 6 + PAN.encode() + b'\x00' + gzip.compress(b'{"a":1}')[10:]),
                           'zstd': ('zstd', good), 'compress': ('compress', good), 'xdeflate': ('x-deflate', zlib.compress(good)),
                           'gzip_q': ('gzip;q=1', gzip.compress(good)), 'gzip_quoted': ('"gzip"', gzip.compress(good))}.items():
        case('ce_pt_' + vn, 'codings', http('POST', P['pt'], [JSON_CT, ('Content-Encoding', ce)], body))
    case('ce_pt_two_headers', 'codings', http('POST', P['pt'], [JSON_CT, ('Content-Encoding', 'identity'), ('Content-Encoding', 'gzip')], gzip.compress(good)))
    case('ce_pt_te_gzip', 'codings', http('POST', P['pt'], [JSON_CT, ('Transfer-Encoding', 'gzip, chunked')], chunked(gzip.compress(good)), cl=False))
    # ================= 8. headers on the scan_headers route =================
    hw_b = dumps(hw())
    for vn, hdrs in {'name': [('X-%s' % PAN, '1')], 'cookie_b64': [('Cookie', 's=' + b64(PAN))], 'cookie_b64_json': [('Cookie', 's=' + b64(dumps({"n": PAN})))],
                     'cookie_pct_u': [('Cookie', 's=' + ''.join('%%u%04X' % ord(c) for c in PAN))], 'proxy_auth': [('Proxy-Authorization', 'Basic ' + b64(PAN + ':x'))],
                     'hdr_num': [('X-Amount', '4242424242424241.9')], 'hdr_json_esc': [('X-Json', '{"n":"%s"}' % ''.join('\\u%04x' % ord(c) for c in PAN))],
                     'two_cookies': [('Cookie', 'a=1'), ('Cookie', 'n=' + PAN)], 'cookie_quoted': [('Cookie', 'n="%s"' % PAN)],
                     'hdr_ncr': [('X-N', ''.join('&#%d;' % ord(c) for c in PAN))], 'hdr_latin_sup': [('X-N', ''.join(SUP[c] for c in PAN123))],
                     'fwd_for': [('Forwarded', 'for="%s"' % PAN)], 'xff': [('X-Forwarded-For', PAN)]}.items():
        case('hdr19_' + vn, 'headers', http('POST', P['hwh'], [JSON_CT] + hdrs, hw_b), rules=True, scan_headers=True)
    # ================= 9. Upgrade / CONNECT / odd request lines =================
    case('upg_pt_ws', 'upgrade', http('GET', P['pt'], [('Connection', 'Upgrade'), ('Upgrade', 'websocket'), ('Sec-WebSocket-Version', '13'), ('Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ==')], '{"n":"%s"}' % PAN, close=False, cl=False), timeout=3)
    case('upg_pt_h2c', 'upgrade', http('POST', P['pt'], [('Connection', 'Upgrade, HTTP2-Settings'), ('Upgrade', 'h2c'), ('HTTP2-Settings', 'AAMAAABkAAQAAP__'), JSON_CT], '{"n":"%s"}' % PAN), timeout=3)
    case('upg_q2_ws', 'upgrade', http('POST', P['q2'], [('Connection', 'Upgrade'), ('Upgrade', 'websocket'), JSON_CT], dumps(q2card())), rules=True, timeout=3)
    case('connect_backend', 'upgrade', lambda rid: b'CONNECT 127.0.0.1:9000 HTTP/1.1\r\nHost: 127.0.0.1:9000\r\nx-rt-id: %s\r\n\r\nPOST /pt/a/b HTTP/1.1\r\nHost: x\r\nx-rt-id: %s\r\nContent-Length: 23\r\n\r\n{"n":"%s"}' % (rid.encode(), rid.encode(), PAN.encode()), timeout=3)
    # ================= 10. routing: CVV reaching a rules handler through a path the proxy routes elsewhere =================
    for vn, p in {'hw_semi_end': '/accounts/42/paymentInfo;x', 'hw_pct_slash_id': '/accounts/4%2F2/paymentInfo', 'hw_dotdot_id': '/accounts/%2e%2e/paymentInfo',
                  'hw_upper': '/ACCOUNTS/42/PAYMENTINFO', 'hw_trailing_dslash': '/accounts/42/paymentInfo//', 'hw_overlong': '/accounts/42%C0%AFpaymentInfo',
                  'hw_abs_port': 'http://127.0.0.1:8080/accounts/42/paymentInfo', 'hw_q_only': '/accounts/42/paymentInfo?', 'hw_hash': '/accounts/42/paymentInfo#',
                  'brm_upper_ver': '/brm/paymentMethods/V1/PAYMENTMETHOD', 'brm_empty_ver': '/brm/paymentMethods//paymentMethod', 'plano_trailing': '/payment-methods/'}.items():
        body = dumps(hw()) if vn.startswith('hw') else dumps(C.brm()) if vn.startswith('brm') else b64(dumps(C.plano_json()))
        ct = JSON_CT if not vn.startswith('plano') else ('Content-Type', 'text/plain')
        case('route19_' + vn, 'routing', http('POST', p, [ct], body), rules=True)
    # ================= 11. CVV / bank values on rules routes in new shapes =================
    jb = dumps(hw())
    for vn, v in {'unicode_esc_surr': '"\\ud835\\udfd0\\ud835\\udfcf\\ud835\\udfd6"', 'str_exp': '"2.18e2"', 'str_plus': '"+218"', 'str_hex': '"0xDA"',
                  'latin_sup': None}.items():
        if v is None:
            continue
        case('cvv19_hw_' + vn, 'cvv-values', http('POST', P['hw'], [JSON_CT], jb.replace('"verificationNumber":"218"', '"verificationNumber":' + v)), rules=True)
    return CASES
