#!/usr/bin/env python3
"""Sums `perf script` samples (read on stdin) by component: each sample goes to the first
category met walking its stack from the leaf toward the root; kernel samples by the system
call that led there. Used by scripts/profile-proxy.sh."""
import sys, re, collections
# Attribute each sample to the first category met walking from the leaf toward the root.
CATS=[
 ('token file (FileStore)', r'FileStore::|statx'),
 ('accounts and inventory per request', r'catalog::inventory|Accounts::labels|Accounts::access|ModelCache::catalogs'),
 ('request body (intake, shaping)', r'proxy::intake|shape_for_codex|proxy::plan::prepare'),
 ('SSE framing and relay', r'bitrouter::sse::|proxy::(relay|patch)::'),
 ('translation', r'bitrouter::translate::|proxy::(translated|pivot)::'),
 ('JSON (serde_json, elsewhere)', r'serde_json::'),
 ('upstream request headers', r'proxy::outbound::|proxy::codex::request_headers|upstream::attach'),
 ('routing (resolver)', r'bitrouter::routing::'),
 ('URL building', r'^url::|idna|upstream::endpoint'),
 ('quota headers (Snapshot::from_headers)', r'Snapshot::from_headers'),
 ('access log', r'access_log::|proxy::record::'),
 ('tracing', r'^tracing'),
 ('reqwest + tower layers', r'^reqwest::|<reqwest::|tower_http::|<tower_http|tower::retry'),
 ('hyper client connection and pool', r'dispatch::Client<|role::Client|hyper_util::client'),
 ('axum routing/middleware', r'axum::|<axum|tower::util'),
 ('hyper server connection', r'dispatch::Server<|role::Server|hyper::server'),
 ('JSON scanned in place (jsonscan)', r'bitrouter::jsonscan::'),
 ('affinity and account picker', r'bitrouter::(affinity|picker)::'),
 ('response headers relayed', r'upstream::headers::'),
 ('server face (connections, listener)', r'bitrouter::server::'),
 ('other bitrouter code', r'bitrouter::'),
 ('tokio runtime/IO driver', r'tokio::|mio::'),
]
samples=[]; cur=[]
for line in sys.stdin:
    line=line.rstrip('\n')
    if not line.strip():
        if cur: samples.append(cur); cur=[]
        continue
    if line[0] not in ' \t':
        cur=[]; continue
    parts=line.strip().split(' ',1)
    if len(parts)<2: continue
    sym=parts[1]
    if '[kernel.kallsyms]' in sym: sym='[k] '+sym
    cur.append(re.sub(r'\+0x[0-9a-f]+','',sym))
if cur: samples.append(cur)
n=len(samples); c=collections.Counter(); kern=collections.Counter()
for s in samples:
    leaf_kernel = '[kernel' in ' '.join(s[:1]) or s[0].startswith(('entry_','do_syscall','__x64','finish_task','_raw_spin'))
    cat='other'
    if s[0].startswith('[k]'):
        io=None
        for f in s:
            if '[k]' in f: continue
            if re.search(r'writev|readv|recv|send|__libc_read|__libc_write|write_all|epoll_wait|accept|connect|close',f): io=f; break
            if re.search(r'statx',f): io='statx'; break
        c['kernel: '+('socket I/O, epoll, wakeups' if io and io!='statx' else ('stat of token file' if io=='statx' else 'other (scheduling, page faults, timers)'))]+=1
        continue
    for f in s:
        hit=None
        for name,pat in CATS:
            if re.search(pat,f): hit=name; break
        if hit: cat=hit; break
    c[cat]+=1
tot=sum(c.values())
print("samples",n)
for k,v in c.most_common(): print("%6.1f%%  %s"%(100*v/tot,k))
