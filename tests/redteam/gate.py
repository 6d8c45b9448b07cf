#!/usr/bin/env python3
"""The red-team gate: sends every crafted request in cases*.py through
vaultgate proxies in front of real backends (Express, Python's standard library), reads
what each backend parsed, and fails on any finding that expected.txt does not list.

Usage: gate.py --proxy NAME=PORT --log NAME=FILE [...] [--expected FILE]
               [--out results.json] [--only SUBSTR]
run.sh starts everything and calls it; see README.md."""
import argparse, json, os, sys, time, uuid

import cases
import cases_more
import cases_round3
import cases_round4
import judge


def kind_of(finding):
    """A finding's kind, the unit expected.txt lists: a value (`leak`), a 5xx, a hang,
    an ordinary request (a control case) refused."""
    if finding.startswith('control'):
        return 'refused'
    if finding.startswith('5xx'):
        return '5xx'
    if finding.startswith('proxy timeout'):
        return 'hang'
    return 'leak'


def load_expected(path):
    """`case backend kind` per line (`*` for any backend); `#` starts a comment."""
    allowed = set()
    if not path:
        return allowed
    with open(path) as f:
        for line in f:
            line = line.split('#', 1)[0].split()
            if not line:
                continue
            if len(line) != 3 or line[2] not in ('leak', '5xx', 'hang', 'refused'):
                sys.exit('expected.txt: bad line %r' % ' '.join(line))
            allowed.add(tuple(line))
    return allowed


def read_records(logs, offsets):
    """The backends' records since `offsets`, by (backend, request id)."""
    recs = {}
    for be, fn in logs.items():
        if not os.path.exists(fn):
            continue
        with open(fn) as f:
            f.seek(offsets[be])
            for line in f:
                try:
                    r = json.loads(line)
                except ValueError:
                    continue
                rid = (r.get('id') or '').split(',')[0].strip()
                recs.setdefault((be, rid), []).append(r)
    return recs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--proxy', action='append', default=[], help='NAME=PORT')
    ap.add_argument('--log', action='append', default=[], help='NAME=FILE')
    ap.add_argument('--expected')
    ap.add_argument('--out')
    ap.add_argument('--only')
    a = ap.parse_args()
    proxies = {k: int(v) for k, v in (p.split('=', 1) for p in a.proxy)}
    logs = dict(p.split('=', 1) for p in a.log)

    every = cases.build_cases() + cases_more.build_cases() + cases_round3.build_cases() + cases_round4.build_cases()
    names = [c['name'] for c in every]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        sys.exit('duplicate case names: %s' % sorted(dup))
    if a.only:
        every = [c for c in every if a.only in c['name']]

    offsets = {b: os.path.getsize(fn) if os.path.exists(fn) else 0 for b, fn in logs.items()}
    sent = []
    t0 = time.time()
    for c in every:
        for be, port in proxies.items():
            if c.get('backends') and be not in c['backends']:
                continue
            rid = uuid.uuid4().hex[:16]
            chunks = c.get('chunks')
            resp, err, dt = judge.send_raw(port, c['build'](rid), timeout=c.get('timeout', 8.0),
                                           chunks=chunks(rid) if chunks else None)
            sent.append({'case': c['name'], 'cat': c['cat'], 'backend': be, 'id': rid,
                         'status': judge.statuses(resp), 'err': err, 'dt': round(dt, 3),
                         'resp': resp[:600].decode('latin1')})
    time.sleep(1.0)
    recs = read_records(logs, offsets)
    bycase = {c['name']: c for c in every}
    allowed = load_expected(a.expected)
    unexpected, seen = [], set()
    for s in sent:
        c = bycase[s['case']]
        rs = recs.get((s['backend'], s['id']), [])
        s['forwarded'] = len(rs)
        f = []
        for r in rs:
            f += judge.judge_record(r, c) + judge.extra_judge(r, c)
        body = s['resp'].split('\r\n\r\n', 1)[-1]
        f += ['VALUE %s in proxy response body' % v for v in judge.scan_text_for_values(body)]
        if any(st >= 500 for st in s['status']):
            f.append('5xx from proxy: %s' % s['status'])
        if s['err'] == 'timeout':
            f.append('proxy timeout/hang (%.1fs)' % s['dt'])
        if c.get('expect_ok') and s['status'][:1] != [200]:
            f.append('control refused: %s' % s['status'])
        s['findings'] = sorted(set(f))
        for kind in sorted({kind_of(x) for x in s['findings']}):
            key = (s['case'], s['backend'], kind)
            if key in allowed or (s['case'], '*', kind) in allowed:
                seen.add(key)
            else:
                unexpected.append((s, kind))
    if a.out:
        with open(a.out, 'w') as fo:
            json.dump(sent, fo, indent=1)
    listed = sum(1 for s in sent if s['findings'])
    print('red-team gate: %d requests (%d cases) in %.0f s; %d with findings, %d of them listed in expected.txt'
          % (len(sent), len(every), time.time() - t0, listed, listed - len({id(s) for s, _ in unexpected})))
    stale = sorted(k for k in allowed if k[1] != '*' and k not in seen and (not a.only or a.only in k[0]))
    for k in stale:
        print('   no longer found (remove from expected.txt?): %s %s %s' % k)
    for s, kind in unexpected:
        print('!! %-40s %-4s %-4s %s %s fwd=%d %s' % (s['case'], s['backend'], kind, s['status'], s['err'] or '',
              s['forwarded'], '; '.join(s['findings'])[:400]))
    if unexpected:
        print('red-team gate: FAILED, %d unexpected findings' % len(unexpected))
        sys.exit(1)
    print('red-team gate: passed')


if __name__ == '__main__':
    main()
