#!/usr/bin/env python3
"""Python backend: records raw bytes and what stdlib parsers make of them.
Usage: backend.py PORT LOGFILE"""
import base64, binascii, email, email.policy, gzip, json, sys, threading, zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit, parse_qs, unquote

PORT = int(sys.argv[1])
LOG = sys.argv[2]
lock = threading.Lock()

def jsafe(o):
    if isinstance(o, float):
        try:
            return {'<number>': repr(o), 'int': str(int(round(o)))}
        except Exception:
            return repr(o)
    if isinstance(o, int) and not isinstance(o, bool):
        return {'<number>': str(o), 'int': str(o)}
    if isinstance(o, dict):
        return {str(k): jsafe(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [jsafe(x) for x in o]
    if isinstance(o, bytes):
        return o.decode('latin1')
    return o

def parse_multipart(ct, body):
    msg = email.message_from_bytes(b'Content-Type: ' + ct.encode('latin1') + b'\r\nMIME-Version: 1.0\r\n\r\n' + body, policy=email.policy.HTTP)
    out = []
    if msg.is_multipart():
        for part in msg.iter_parts():
            try:
                payload = part.get_payload(decode=True)
            except Exception:
                payload = None
            try:
                text = part.get_content() if part.get_content_maintype() == 'text' else None
            except Exception as e:
                text = None
            out.append({'name': part.get_param('name', header='content-disposition'), 'filename': part.get_filename(),
                        'cte': part.get('content-transfer-encoding'), 'data': (payload or b'').decode('latin1'),
                        'text': text if isinstance(text, str) else None})
    return out

def body_views(ct, body):
    v = {}
    ctl = (ct or '').lower()
    text = body.decode('utf-8', 'replace')
    if 'json' in ctl or not ctl:
        try: v['json'] = jsafe(json.loads(body))
        except Exception as e: v['json_error'] = str(e)
    if 'form-urlencoded' in ctl or not ctl:
        v['parse_qs'] = parse_qs(text, keep_blank_values=True)
    if 'multipart' in ctl:
        try: v['multipart'] = parse_multipart(ct, body)
        except Exception as e: v['multipart_error'] = str(e)
    # base64 sensitive params (lenient, like b64decode without validate)
    try:
        dec = base64.b64decode(body.strip() + b'===', altchars=b'-_' if (b'-' in body or b'_' in body) else None)
        v['b64'] = dec.decode('utf-8', 'replace')
        try: v['b64_json'] = jsafe(json.loads(dec))
        except Exception: v['b64_qs'] = parse_qs(v['b64'], keep_blank_values=True)
    except Exception:
        pass
    return v

class H(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def log_message(self, *a):
        pass
    def read_body(self):
        te = (self.headers.get('Transfer-Encoding') or '').lower()
        if 'chunked' in te:
            data = b''
            while True:
                line = self.rfile.readline()
                n = int(line.split(b';')[0].strip() or b'0', 16)
                if n == 0:
                    while self.rfile.readline() not in (b'\r\n', b'\n', b''):
                        pass
                    break
                data += self.rfile.read(n)
                self.rfile.readline()
            return data
        n = int(self.headers.get('Content-Length') or 0)
        return self.rfile.read(n) if n else b''
    def handle_any(self):
        body = self.read_body()
        ce = (self.headers.get('Content-Encoding') or '').lower()
        dec = body
        try:
            if ce in ('gzip', 'x-gzip'): dec = gzip.decompress(body)
            elif ce == 'deflate': dec = zlib.decompress(body)
        except Exception:
            pass
        u = urlsplit(self.path)
        rec = {'backend': 'py', 'id': self.headers.get('x-rt-id'), 'method': self.command, 'url': self.path,
               'path': unquote(u.path), 'query': parse_qs(u.query, keep_blank_values=True),
               'headers': dict(self.headers.items()), 'raw_b64': base64.b64encode(body).decode(),
               'views': body_views(self.headers.get('Content-Type', ''), dec), 'version': self.request_version}
        with lock:
            with open(LOG, 'a') as f:
                f.write(json.dumps(rec) + '\n')
        out = b'{"ok":true}'
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = handle_any

ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(('127.0.0.1', PORT), H).serve_forever()
