// Express 5 backend that records what it received and what it parsed.
// Usage: node backend.js PORT LOGFILE
const express = require('express');
const qs = require('qs');
const querystring = require('node:querystring');
const fs = require('fs');
const multer = require('multer');

const port = parseInt(process.argv[2], 10);
const logfile = process.argv[3];
const app = express();
app.set('query parser', 'extended'); // qs for req.query, as most apps configure

// an upload endpoint that answers before it has read the body (streaming consumers do)
app.post('/early', (req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.write('started\n');
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  const done = (how) => {
    const raw = Buffer.concat(chunks);
    fs.appendFileSync(logfile, JSON.stringify({ backend: 'node', handler: 'early', how, id: req.headers['x-rt-id'] || null, method: req.method,
      url: req.originalUrl, path: req.path, headers: req.headers, raw_b64: raw.toString('base64'), body: raw.toString('latin1'), views: {} }) + '\n');
  };
  req.on('end', () => { done('end'); res.end('done\n'); });
  req.on('aborted', () => done('aborted'));
  req.on('error', () => done('error'));
});

function verify(req, res, buf) { req.rawBody = Buffer.from(buf); }
// capture raw bytes of what body-parser decoded (after inflate)
app.use(express.json({ verify, limit: '10mb' }));
app.use(express.urlencoded({ extended: true, verify, limit: '10mb' }));
app.use(express.text({ type: 'text/*', verify, limit: '10mb' }));
const upload = multer();
app.use((req, res, next) => {
  if (req.is('multipart/form-data')) return upload.any()(req, res, (e) => { if (e) req.multerError = String(e); next(); });
  next();
});
app.use(express.raw({ type: () => true, verify, limit: '10mb' }));
app.use((err, req, res, next) => { req.parseError = String(err && err.message); next(); });

function safe(v, depth = 0) {
  if (depth > 40) return '<deep>';
  if (v === null || v === undefined) return v === undefined ? '<undefined>' : null;
  if (Buffer.isBuffer(v)) return { '<buffer>': v.toString('latin1') };
  if (typeof v === 'number') return { '<number>': String(v), 'int': Number.isFinite(v) ? BigInt(Math.round(v)).toString() : String(v) };
  if (typeof v === 'bigint') return String(v);
  if (typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map((x) => safe(x, depth + 1));
  const out = {};
  for (const k of Object.getOwnPropertyNames(v)) out[k] = safe(v[k], depth + 1);
  // what property reads through the prototype chain would see (Object.assign / merge results)
  const proto = Object.getPrototypeOf(v);
  if (proto && proto !== Object.prototype && proto !== Array.prototype) out['<proto>'] = safe(proto, depth + 1);
  return out;
}

function views(req) {
  const v = {};
  const raw = req.rawBody ? req.rawBody.toString('latin1') : '';
  const ct = String(req.headers['content-type'] || '');
  // what an app doing its own merge would read
  try { v.assign = safe(Object.assign({}, typeof req.body === 'object' && !Buffer.isBuffer(req.body) ? req.body : {})); } catch (e) { v.assign = String(e); }
  if (raw) {
    // default qs (depth 5, arrayLimit 20, parameterLimit 1000, no dots) and qs with allowDots
    try { v.qs_default = safe(qs.parse(req.rawBody.toString('utf8'))); } catch (e) { }
    try { v.qs_dots = safe(qs.parse(req.rawBody.toString('utf8'), { allowDots: true })); } catch (e) { }
    try { v.querystring = safe(querystring.parse(req.rawBody.toString('utf8'))); } catch (e) { }
    // base64 "sensitive params": what a Plano-like backend decodes
    try {
      const dec = Buffer.from(req.rawBody.toString('latin1').trim(), 'base64').toString('utf8');
      v.b64 = dec;
      try { v.b64_json = safe(JSON.parse(dec)); } catch (e) { v.b64_qs = safe(qs.parse(dec)); }
    } catch (e) { }
  }
  return v;
}

function record(tag) {
  return (req, res) => {
    const rec = {
      backend: 'node', handler: tag, id: req.headers['x-rt-id'] || null,
      method: req.method, url: req.originalUrl, path: req.path,
      headers: req.headers, trailers: req.trailers, rawHeaders: req.rawHeaders,
      raw_b64: req.rawBody ? req.rawBody.toString('base64') : null,
      body: safe(req.body), query: safe(req.query), params: safe(req.params),
      files: req.files ? req.files.map((f) => ({ field: f.fieldname, name: f.originalname, data: f.buffer.toString('latin1') })) : null,
      parseError: req.parseError || null, multerError: req.multerError || null,
      views: views(req), httpVersion: req.httpVersion,
    };
    fs.appendFileSync(logfile, JSON.stringify(rec) + '\n');
    res.json({ ok: true, handler: tag });
  };
}

app.post('/v1/payment', record('q2open'));
app.post('/brm/paymentMethods/:version/paymentMethod', record('oracle_brm'));
app.post('/accounts/:accountId/paymentInfo', record('hostway'));
app.post('/payment-method', record('payment_method'));
app.post('/payment-methods', record('plano'));
app.all('/pt/:a/:b', record('pt_params'));
app.all('/{*splat}', record('catchall'));
app.all('/', record('root'));

const server = app.listen(port, '127.0.0.1', () => console.log('node backend on', port));
server.keepAliveTimeout = 65000;
