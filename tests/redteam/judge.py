"""How the red-team gate sends a case and judges what a backend parsed from it.

A finding is a sensitive value a backend could read from what it received (in any of
its parsers' views, or in the raw bytes), a sensitive value in the proxy's answer, a
5xx from the proxy, or a hang."""
import base64, email, email.policy, html, re, socket, time, unicodedata
import xml.etree.ElementTree as ET
from cases import PANS, CVVS, BANKS, RULES_PATH_RE


def send_raw(port, data, timeout=8.0, chunks=None):
    t0 = time.time()
    s = socket.create_connection(('127.0.0.1', port), timeout=timeout)
    resp = b''
    err = None
    try:
        if chunks:
            for c, delay in chunks:
                s.sendall(c)
                time.sleep(delay)
        else:
            s.sendall(data)
        try:
            pass
        except OSError:
            pass
        while True:
            try:
                b = s.recv(65536)
            except socket.timeout:
                err = 'timeout'
                break
            except ConnectionResetError:
                err = 'reset'
                break
            if not b:
                break
            resp += b
    finally:
        s.close()
    return resp, err, time.time() - t0

def statuses(resp):
    return [int(m.group(1)) for m in re.finditer(rb'HTTP/1\.[01] (\d{3})', resp)]

SEP = set(' \t\n\r-._/,+\u00a0\u2007\u202f\u200b\u200c\u200d\u2060\ufeff\u2010\u2011\u2012\u2013\u2014\u2212\u00b7\u2022')

def digits_norm(s):
    out = []
    for c in s:
        d = unicodedata.decimal(c, None)
        if d is None:
            try:
                d2 = unicodedata.digit(c, None)
            except Exception:
                d2 = None
            d = d2
        if d is not None:
            out.append(str(d))
        elif c in SEP or unicodedata.category(c) in ('Mn', 'Cf', 'Zs'):
            continue
        else:
            out.append(c)
    return ''.join(out)

def leaves(o, path=()):
    if isinstance(o, dict):
        if '<number>' in o:
            yield path, o['<number>']
            yield path, o.get('int', '')
            return
        if 'data' in o and ('name' in o or 'field' in o):
            nm = o.get('field') or o.get('name') or ''
            yield path + (nm,), o.get('data') or ''
            if o.get('text'):
                yield path + (nm,), o['text']
            return
        for k, v in o.items():
            yield from leaves(v, path + (str(k),))
            yield path + (str(k),), str(k)  # keys themselves
    elif isinstance(o, list):
        for i, v in enumerate(o):
            yield from leaves(v, path)
    elif o is None:
        return
    else:
        yield path, str(o)

CVV_KEYS = ('cardcode', 'cvc', 'cvv', 'verificationnumber', 'securitycode')

def keynorm(k):
    k = unicodedata.normalize('NFKC', k).lower()
    return re.sub(r'[^a-z0-9]', '', k)

def judge_record(rec, case):
    """Return a list of findings (strings) for one backend record."""
    found = []
    view = {'body': rec.get('body'), 'query': rec.get('query'), 'params': rec.get('params'),
            'files': rec.get('files'), 'path': rec.get('path'), 'url': rec.get('url'),
            'trailers': rec.get('trailers')}
    views = dict(rec.get('views') or {})
    plano = 'payment-methods' in (rec.get('path') or '').lower() or case.get('b64ok')
    if not plano:
        for k in list(views):
            if k.startswith('b64'):
                del views[k]
    ctype = str((rec.get('headers') or {}).get('content-type') or (rec.get('headers') or {}).get('Content-Type') or '').lower()
    if 'form-urlencoded' not in ctype:
        for k in ('qs_default', 'qs_dots', 'querystring'):
            views.pop(k, None)
    view['views'] = views
    if case.get('scan_headers'):
        view['headers'] = {k: v for k, v in (rec.get('headers') or {}).items() if k.lower() not in ('authorization',)}
    raw = base64.b64decode(rec.get('raw_b64') or '')
    rawtexts = [raw.decode('latin1')]
    try:
        rawtexts.append(raw.decode('utf-8'))
    except Exception:
        pass
    items = list(leaves(view))
    handler = rec.get('handler')
    path = rec.get('path') or ''
    rules_target = (handler in ('q2open', 'oracle_brm', 'hostway', 'plano')) or path.lower().startswith('/custom') or bool(RULES_PATH_RE.match(path.lower().rstrip('/') or '/')) or case.get('rules')
    for kp, s in items:
        if not isinstance(s, str) or not s:
            continue
        n = digits_norm(s)
        for p in PANS:
            if p in n:
                found.append('PAN %s at %s: %r' % (p, '/'.join(kp), s[:120]))
    # the raw bytes as received: ASCII digits, up to 3 of space/dash between them
    for p in PANS:
        if re.search(r'[ -]{0,3}'.join(p), rawtexts[0]):
            found.append('PAN %s in raw bytes' % p)
    if rules_target:
        # exact documented fields as the backend parsed them (prototype chain included)
        for kp, s in items:
            if not isinstance(s, str) or not s:
                continue
            keys = [k for k in kp if k not in ('<proto>',)]
            # strip the view prefix: body/..., views/<name>/...
            if keys and keys[0] in ('body', 'query'):
                rel = keys[1:]
            elif len(keys) > 1 and keys[0] == 'views':
                rel = keys[2:]
            else:
                rel = None
            n = digits_norm(s).upper()
            doc = None
            DOC_CVV = (['cardCode'], ['verificationNumber'], ['payment_method', 'cvc'], ['payment_method[cvc]'])
            DOC_ACCT = (['accountNumber'] if 'brm' not in path.lower() and 'paymentmethod' not in path.lower() else ['-'], ['details', 'accountNumber'], ['payment_method', 'card_number'], ['payment_method[card_number]'])
            if path.lower().startswith('/custom'):
                DOC_CVV = DOC_CVV + (['cvv'],)
                DOC_ACCT = DOC_ACCT + (['card_number'],)
            if rel in DOC_CVV:
                doc = 'cvv'
            elif rel in DOC_ACCT:
                doc = 'acct'
            if doc is None or kp[-1] == s:  # a key itself
                continue
            top = kp[0]
            if top not in ('body', 'views', 'query'):
                continue
            # position: documented paths only
            if doc == 'cvv':
                try:
                    nn2 = str(int(float(s))) if re.fullmatch(r'-?[0-9.eE+]+', s) else n
                except Exception:
                    nn2 = n
                for c in CVVS[:1]:  # only the value we send; 3-digit tokens can equal other CVV-like numbers
                    if n.strip() == c or nn2 == c:
                        found.append('CVV %s at %s: %r' % (c, '/'.join(kp), s[:80]))
            else:
                for b in BANKS:
                    if b in n:
                        found.append('BANK %s at %s: %r' % (b, '/'.join(kp), s[:80]))
    return sorted(set(found))

def scan_text_for_values(t):
    n = digits_norm(t)
    out = []
    for p in PANS + BANKS:
        if p in n.upper():
            out.append(p)
    return out

def has_pan(s):
    n = digits_norm(s)
    return [p for p in PANS if p in n]


def numeric_views(o, path=()):
    for kp, s in leaves(o, path):
        if isinstance(s, str) and re.fullmatch(r'\s*[-+]?[0-9.]+([eE][-+]?[0-9]+)?\s*', s or ''):
            try:
                f = float(s)
                yield kp, s, '%d' % round(f)
            except Exception:
                pass


def extra_judge(rec, case):
    found = []
    raw = base64.b64decode(rec.get('raw_b64') or '')
    hdrs = {k.lower(): v for k, v in (rec.get('headers') or {}).items()}
    ct = hdrs.get('content-type', '')
    # filenames / field names that harness.leaves does not look at
    for f in rec.get('files') or []:
        for p in has_pan(f.get('name') or ''):
            found.append('PAN %s in multer originalname %r' % (p, f.get('name')))
    for part in ((rec.get('views') or {}).get('multipart') or []):
        for k in ('filename', 'name'):
            for p in has_pan(str(part.get(k) or '')):
                found.append('PAN %s in py multipart %s %r' % (p, k, part.get(k)))
    if case.get('numeric'):
        for where in ('query', 'body', 'params', 'path'):
            v = rec.get(where)
            for kp, s, n in numeric_views(v if not isinstance(v, str) else {'path': v}, (where,)):
                for p in PANS:
                    if p in n:
                        found.append('PAN %s as Number(%r) at %s' % (p, s, '/'.join(kp)))
            if isinstance(v, str):
                for seg in re.split(r'[/?&=]', v):
                    try:
                        n = '%d' % round(float(seg))
                    except Exception:
                        continue
                    for p in PANS:
                        if p in n:
                            found.append('PAN %s as Number(%r) in %s' % (p, seg, where))
    if case.get('walk') and raw and 'multipart' in ct.lower():
        try:
            msg = email.message_from_bytes(b'Content-Type: ' + ct.encode('latin1') + b'\r\n\r\n' + raw, policy=email.policy.HTTP)
            for part in msg.walk():
                if part.is_multipart():
                    continue
                try:
                    pl = (part.get_payload(decode=True) or b'').decode('latin1')
                except Exception:
                    pl = ''
                try:
                    txt = part.get_content() if part.get_content_maintype() == 'text' else ''
                except Exception:
                    txt = ''
                fnm = part.get_filename() or ''
                nm = part.get_param('name', header='content-disposition') or ''
                for lab, s in (('payload', pl), ('text', txt if isinstance(txt, str) else ''), ('filename', fnm), ('name', str(nm))):
                    for p in has_pan(s):
                        found.append('PAN %s in email.walk %s %r' % (p, lab, s[:60]))
        except Exception as e:
            pass
    if case.get('xml') and raw:
        try:
            root = ET.fromstring(raw)
            for el in root.iter():
                t = ''.join(el.itertext())
                for p in has_pan(t):
                    found.append('PAN %s in xml text of <%s> %r' % (p, el.tag, t[:60]))
        except Exception as e:
            pass
    if case.get('html') and raw:
        t = html.unescape(raw.decode('utf-8', 'replace'))
        for p in has_pan(t):
            found.append('PAN %s in html.unescape(body) %r' % (p, t[:60]))
    m = re.search(r'charset="?([A-Za-z0-9_-]+)', ct)
    if raw and m:
        try:
            t = raw.decode(m.group(1))
            for p in has_pan(t):
                found.append('PAN %s in body decoded as %s %r' % (p, m.group(1), t[:60]))
        except Exception:
            pass
    m2 = re.search(rb'<\?xml[^>]*?encoding\s*=\s*["\']([A-Za-z0-9_.:-]+)', raw or b'', re.I)
    if raw and m2:
        enc = m2.group(1).decode().lower().replace('x-windows-949', 'cp949').replace('ms932', 'cp932').replace('sjis', 'shift_jis')
        try:
            t = raw.decode(enc, 'replace')
            for p in has_pan(t):
                found.append('PAN %s in body decoded by its XML declaration (%s) %r' % (p, enc, t[:60]))
        except LookupError:
            pass
    # EBCDIC XML, as libxml2 and Xerces detect it from its first bytes (`<?xm`)
    if raw and b'\x4c\x6f\xa7\x94' in raw:
        for cp in ('cp037', 'cp500', 'cp1140'):
            t = raw.decode(cp, 'replace')
            for p in has_pan(t):
                found.append('PAN %s in body decoded as EBCDIC XML (%s) %r' % (p, cp, t[:60]))
    # HTML's <meta charset>, as BeautifulSoup's EncodingDetector finds it
    for m3 in re.finditer(rb'<\s*meta[^>]+charset\s*=\s*["\']?([^>]*?)[ /;\'">]', raw or b'', re.I):
        enc = m3.group(1).decode('latin1').lower().replace('sjis', 'shift_jis')
        try:
            t = raw.decode(enc, 'replace')
        except LookupError:
            continue
        for p in has_pan(t):
            found.append('PAN %s in body decoded by its <meta charset> (%s) %r' % (p, enc, t[:60]))
    return found


