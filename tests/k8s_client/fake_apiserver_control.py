"""The fake kube-apiserver's control API, under /fake (see fake_apiserver.py, whose docstring
documents every endpoint), and the fault a test injects through it. Nothing here is part of the
Kubernetes API; the control API is never authenticated and never faulted."""

import fnmatch
import gc
import time

from fake_apiserver_model import (KIND_ALIASES, KINDS, MSG_INCONSISTENT_CONTINUE,
                                  MSG_LIST_EXPIRED, MSG_WATCH_EXPIRED, STATUS_REASONS, ApiError,
                                  compact, conflict, make_token, not_found, read_token, too_large,
                                  unauthorized)

WRITE_VERBS = ('create', 'update', 'patch', 'delete', 'deletecollection')


class Fault:
    """One injected fault: which requests it catches (every key optional, all must match) and
    what it does to them; see POST /fake/inject in fake_apiserver.py."""

    def __init__(self, spec, fid):
        self.id = fid
        self.path = spec.get('path')
        self.match = spec.get('match', 'any')
        self.count = int(spec.get('count', 1))
        self.spec = spec
        if 'inband_status' in spec or 'reset_after_events' in spec or 'raw_body' in spec:
            self.match = 'watch'  # only a watch can carry these
        verbs = spec.get('verb')
        self.verbs = [verbs] if isinstance(verbs, str) else verbs
        self.method = (spec.get('method') or '').upper() or None

    def applies(self, rec, has_continue):
        if self.count == 0:
            return False
        if self.path and not _like(rec['path'], self.path):
            return False
        if self.method and rec['method'] != self.method:
            return False
        if self.verbs and rec.get('verb') not in self.verbs:
            return False
        for key in ('namespace', 'name'):
            if key in self.spec and not _like(rec.get(key) or '', self.spec[key]):
                return False
        if 'resource' in self.spec:
            res = rec.get('resource') or ''
            if rec.get('subresource'):
                res += '/' + rec['subresource']
            if not _like(res, self.spec['resource']):
                return False
        is_watch = rec['watch']
        return (self.match == 'any' or (self.match == 'watch' and is_watch) or
                (self.match == 'list' and not is_watch and rec['method'] == 'GET') or
                (self.match == 'continue' and has_continue))

    def after_commit(self, rec):
        return bool(self.spec.get('after_commit')) and rec.get('verb') in WRITE_VERBS


def fault_error(fault, query, is_watch, rec, current_rv):
    """The Status reply of an injected "status" fault."""
    code = int(fault['status'])
    headers = {}
    kind = KINDS.get(rec.get('resource') or '')
    if code == 409 and kind is not None:
        err = conflict(kind, rec.get('name') or '')
    elif code == 404 and kind is not None:
        err = not_found(kind, rec.get('name') or '')
    elif code == 410:
        if query.get('continue'):
            # A fresh token, as handleCompactedErrorForPaging gives when it can.
            snap_id, rv, start = read_token(query['continue'])
            fresh = make_token(0, current_rv, start)
            err = ApiError(410, 'Expired', MSG_INCONSISTENT_CONTINUE,
                           metadata={'continue': fresh})
        else:
            err = ApiError(410, 'Expired', MSG_WATCH_EXPIRED if is_watch else MSG_LIST_EXPIRED)
    elif code == 504:
        err = too_large(query.get('resourceVersion', ''), current_rv)
    elif code == 429:
        retry = int(fault.get('retry_after', 1))
        headers['Retry-After'] = str(retry)
        err = ApiError(429, 'TooManyRequests', 'Too many requests, please try again later.',
                       details={'retryAfterSeconds': retry})
    elif code == 401:
        err = unauthorized()
    elif code == 500:
        err = ApiError(500, 'InternalError', 'Internal error occurred: injected by the fake',
                       details={'causes': [{'message': 'injected'}]})
    else:
        err = ApiError(code, STATUS_REASONS.get(code, 'Unknown'), 'injected %d' % code)
    if 'retry_after' in fault and code != 429:
        headers['Retry-After'] = str(int(fault['retry_after']))
    err.headers = headers
    return err


def _like(value, pattern):
    """Exact, or a shell-style pattern when it has * ? or [ (fnmatch)."""
    if any(c in pattern for c in '*?['):
        return fnmatch.fnmatchcase(value, pattern)
    return value == pattern


def control(h, method, path, query):
    """Serve one /fake request on handler `h` (fake_apiserver.Handler)."""
    st = h.state
    store = st.store
    parts = path.strip('/').split('/')[1:]
    if parts == ['objects'] and method == 'POST':
        body = h.read_json()
        items = body['items'] if 'items' in body else ([body] if 'kind' in body else [])
        deleted = 0
        with store.lock:
            resolved = []
            for it in items:
                resource = KIND_ALIASES.get(it.get('kind', ''))
                if resource is None:
                    raise ApiError(400, 'BadRequest', 'unknown kind %r' % it.get('kind'))
                resolved.append((resource, it))
            for resource, it in resolved:
                store.put(resource, it)
            for d in body.get('delete', []):
                resource = KIND_ALIASES.get(d.get('kind', ''))
                if resource is None:
                    raise ApiError(400, 'BadRequest', 'unknown kind %r' % d.get('kind'))
                deleted += store.delete(resource, d.get('namespace', 'default'), d['name'])
            rv = store.rv
            store.cond.notify_all()
        # Objects loaded in bulk live long: out of the cyclic collector's way (gc.freeze), or
        # with 10,000 Services and their slices held a full collection holds every thread for
        # 0.2-0.3 s at random, which a benchmark would take for its client's latency.
        gc.freeze()
        return h.send_body(200, compact({'resourceVersion': str(rv), 'written': len(items),
                                            'deleted': deleted}))
    if len(parts) in (3, 4) and parts[0] == 'objects' and method == 'DELETE':
        resource = KIND_ALIASES.get(parts[1])
        if resource is None:
            raise ApiError(400, 'BadRequest', 'unknown kind %r' % parts[1])
        ns, name = (parts[2], parts[3]) if len(parts) == 4 else ('', parts[2])
        with store.lock:
            ok = store.delete(resource, ns, name)
            rv = store.rv
            store.cond.notify_all()
        if not ok:
            raise ApiError(404, 'NotFound', '%s %s/%s not found' % (parts[1], ns, name))
        return h.send_body(200, compact({'resourceVersion': str(rv)}))
    if parts == ['objects'] and method == 'GET':
        resource = KIND_ALIASES.get(query.get('kind', 'services'))
        if resource is None:
            raise ApiError(400, 'BadRequest', 'unknown kind')
        with store.lock:
            objs = store.sorted_objects(resource)
            rv = store.rv
        return h.send_body(200, '{"resourceVersion":"%d","items":[%s]}' % (
            rv, ','.join(o.json for o in objs)))
    if parts == ['state'] and method == 'GET':
        with store.lock:
            s = {'resourceVersion': str(store.rv), 'compacted': str(store.compacted),
                 'history': len(store.history)}
        with st.meta_lock:
            s['open_watches'] = len(st.open_watches)
            s['watches_served'] = st.watches_served
        return h.send_body(200, compact(s))
    if parts == ['compact'] and method == 'POST':
        body = h.read_json()
        with store.lock:
            c = store.compact_to(int(body.get('rv', store.rv)))
        return h.send_body(200, compact({'compacted': str(c)}))
    if parts == ['inject']:
        with st.meta_lock:
            if method == 'POST':
                f = Fault(h.read_json(), st.next_fault_id)
                st.next_fault_id += 1
                st.faults.append(f)
                out = {'id': f.id}
            elif method == 'DELETE':
                out = {'cleared': len(st.faults)}
                st.faults = []
            else:
                out = {'faults': [dict(f.spec, id=f.id, remaining=f.count) for f in st.faults]}
        return h.send_body(200, compact(out))
    if parts == ['token'] and method == 'POST':
        st.token = h.read_json().get('token', '')
        return h.send_body(200, '{}')
    if parts == ['reset-watches'] and method == 'POST':
        body = h.read_json()
        with st.meta_lock:
            waiting = [ev for p, ev in st.open_watches.values()
                       if body.get('path') in (None, p)]
        with store.lock:
            store.cut_mode = body.get('mode', 'reset')
            store.cut_path = body.get('path')
            store.cut_generation += 1
            store.cond.notify_all()
        deadline = time.monotonic() + 5
        for ev in waiting:
            ev.wait(max(0.0, deadline - time.monotonic()))
        return h.send_body(200, compact({'cut': len(waiting)}))
    if parts == ['config'] and method == 'POST':
        body = h.read_json()
        if 'bookmark_interval' in body:
            st.bookmark_interval = float(body['bookmark_interval'])
        if 'max_chunk' in body:
            st.max_chunk = int(body['max_chunk'])
        if 'continue_ttl' in body:
            st.continue_ttl = float(body['continue_ttl'])
        if 'history' in body:
            with store.lock:
                store.history_limit = int(body['history'])
        return h.send_body(200, '{}')
    if parts == ['requests']:
        with st.meta_lock:
            if method == 'DELETE':
                st.requests = []
                return h.send_body(200, '{}')
            since = int(query.get('since', 0))
            reqs = [r for r in st.requests if r['seq'] >= since]
            nxt = st.next_seq
        return h.send_body(200, compact({'requests': reqs, 'next': nxt}))
    if parts == ['watch-events']:
        with st.meta_lock:
            if method == 'DELETE':
                st.sent = []
                return h.send_body(200, '{}')
            since = int(query.get('since', 0))
            sent = [x for x in st.sent if x['seq'] >= since]
            nxt = st.next_sent
        return h.send_body(200, compact({'events': sent, 'next': nxt}))
    raise ApiError(404, 'NotFound', 'no control endpoint %s %s' % (method, path))
