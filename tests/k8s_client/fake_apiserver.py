#!/usr/bin/env python3
"""A protocol-faithful fake kube-apiserver: Services, EndpointSlices, Nodes, Leases and Events.

It reproduces what a real apiserver does on the wire, as written up in k8s-api.md §1-6, §11 and
§12: a global, monotonically increasing resourceVersion (RV) stamped on every write; paginated,
consistent LISTs; chunked WATCH streams whose events are split across chunks at random; selector
transitions turned into ADDED/DELETED; bookmarks; a bounded history window with the in-band "too
old resource version" ERROR; bearer-token auth; writes through the API with optimistic
concurrency, finalizers, the Service /status subresource, the four PATCH types, Service
defaulting and allocation; and fault injection. Python 3 standard library only. Tests drive it
through a small control API on the same port. Modules next to it: fake_apiserver_model.py (kinds,
store, history, selectors, Status bodies), _registry.py (the write paths), _patch.py (PATCH and
managedFields), _strategy.py and _service.py (defaulting, validation, allocation per kind),
_control.py (the control API and faults). Their docstrings say what the real server does and
where the fake simplifies.

Command line
  fake_apiserver.py [--host 127.0.0.1] [--port 0] [--token TOKEN]
                    [--tls-cert FILE --tls-key FILE] [--seed N] [--history N]
                    [--bookmark-interval SECONDS] [--max-chunk BYTES] [--continue-ttl SECONDS]
                    [--pre-134] [--service-cidr CIDR] [--node-port-range LO-HI]
                    [--rbac POLICY.json] [--verbose]
  Prints "listening on PORT" on stdout (flushed) once it accepts connections; --port 0 picks a
  free port. --token: requests must carry "Authorization: Bearer TOKEN" (default: no auth).
  --history: how many write events the watch history keeps (default 100000); a watch from an RV
  older than the window gets the in-band ERROR 410. --bookmark-interval: seconds between BOOKMARK
  events on watches that allow them (default 60, as the real watch cache; 0 = never).
  --max-chunk: the largest chunk a watch writes; events are cut at random points (seeded by
  --seed) into chunks of 1..max-chunk bytes, each written separately with TCP_NODELAY (0 = one
  chunk per batch of events, for benchmarks). --continue-ttl: lifetime of a continue token
  (default 300). --pre-134: bookmarks carry "creationTimestamp":null as servers before v1.34 do.
  --service-cidr (default 10.96.0.0/12) and --node-port-range (default 30000-32767): what Service
  ClusterIPs and node ports are allocated from. --rbac: other tokens, each a user whose requests
  the RBAC rules of the policy's Roles and bindings authorize (fake_apiserver_rbac.py: 403
  Forbidden as the real server for what they do not grant); the --token user may do anything.

API (what the client under test uses; k8s-api.md §1, §12)
  Collections: /api/v1/services, /api/v1/namespaces/NS/services, /api/v1/nodes (cluster-scoped),
    /apis/discovery.k8s.io/v1/[namespaces/NS/]endpointslices,
    /apis/coordination.k8s.io/v1/[namespaces/NS/]leases,
    /apis/events.k8s.io/v1/[namespaces/NS/]events
  Objects: COLLECTION/NAME (namespaced kinds under namespaces/NS only); subresource
    /api/v1/namespaces/NS/services/NAME/status and /api/v1/nodes/NAME/status.
  GET COLLECTION (every kind)
    LIST: limit, continue (the same list RV on every page; a token is bound to the selectors and
      namespace it was issued for: other values on a continue request are a 400), resourceVersion
      unset (current) / "0" (whole list, limit ignored, as the watch cache serves it) / N (current
      state if N <= current; 504 "Too large resource version" if N > current; 410 if N is older
      than the history window and limit or resourceVersionMatch=Exact is given; Exact is only
      servable for N == current), labelSelector (=, ==, !=, in, notin, key, !key; comma = AND),
      fieldSelector (metadata.name, metadata.namespace with =, ==, !=). Items carry no
      kind/apiVersion; remainingItemCount is set on non-final pages of unfiltered lists.
    WATCH (watch=1|true): resourceVersion N = events after N; unset/"0" = synthetic ADDED for
      every current object first; N > current = HTTP 504; N older than the window = 200 + in-band
      ERROR 410 "too old resource version: N (oldest)". allowWatchBookmarks, timeoutSeconds (clean
      end; unset = random in [1800, 3600) s), labelSelector, fieldSelector. Event objects carry
      kind/apiVersion; DELETED carries the last state with the deletion's RV; an object that stops
      matching the selector is DELETED (previous content, the event's RV), one that starts
      matching is ADDED. A watch that falls out of the history window is ended (the client
      re-watches and gets the 410). A watch on an object's URL watches that one object.
  GET OBJECT, GET OBJECT/status: the object with kind/apiVersion; 404 NotFound Status.
  POST COLLECTION (in a namespace, or nodes): create, 201; 409 AlreadyExists.
  PUT OBJECT[/status]: update, 200 (201 when it created); metadata.resourceVersion must be the
    stored one (409 Conflict otherwise); absent = unconditional, except Leases (422).
  PATCH OBJECT[/status]: Content-Type application/merge-patch+json, application/json-patch+json,
    application/strategic-merge-patch+json, application/apply-patch+yaml (?fieldManager required,
    &force=true); anything else 415. A metadata.resourceVersion in the patch makes it conditional.
  DELETE OBJECT: 200; with metadata.finalizers the object stays with a deletionTimestamp until an
    update removes the last finalizer (then DELETED). DeleteOptions preconditions honoured.
  The main Service/Node endpoint ignores status changes, /status ignores spec changes (metadata
  changes are taken on both, as the Service status strategy does); status writes are validated
  (ingress only for type LoadBalancer, valid ip, ipMode VIP|Proxy defaulted to VIP, hostname not
  an IP: 422 Invalid with details.causes); Services are defaulted and get a ClusterIP, node ports
  and a healthCheckNodePort as the real REST layer allocates them; a type change away from
  LoadBalancer wipes loadBalancerClass and clears status.loadBalancer (dropTypeDependentFields).
  Every accepted write bumps the RV and is one watch event; a write that changes nothing is not
  written. fieldManager (or the User-Agent) names the manager recorded in metadata.managedFields.
  Not served: DELETE on a collection (405), dryRun (400), other subresources (404), Namespace
  objects (any namespace exists), YAML or protobuf bodies.

Control API (under /fake, never authenticated; JSON in and out)
  POST   /fake/objects        one object {"kind":"Service"|"EndpointSlice"|"Node"|"Lease"|
                              "Event", "metadata":{...}, ...} or a batch {"items":[obj, ...],
                              "delete":[{"kind","namespace","name"}]}: creates or replaces (by
                              namespace/name) each object as given (no defaulting, validation or
                              finalizers) and deletes the listed ones at once, one RV per write,
                              in order. Server fields (uid, creationTimestamp, resourceVersion)
                              are filled in; a Node's namespace is dropped.
                              -> {"resourceVersion": "N", "written": k, "deleted": d}
  DELETE /fake/objects/KIND/NS/NAME, /fake/objects/KIND/NAME (cluster-scoped)   KIND = services|
                              endpointslices|nodes|leases|events (or the kind's name);
                              404 when absent. -> {"resourceVersion": "N"}
  GET    /fake/objects?kind=services   the current objects (list-item form) and the current RV
  GET    /fake/state          {"resourceVersion", "compacted", "open_watches", "watches_served"}
  POST   /fake/compact        {"rv": N} (default: current): forget the history up to N; watches
                              from RV < N then get the in-band 410. -> {"compacted": "N"}
  POST   /fake/inject         a fault for the next `count` (default 1; -1 = until cleared) API
                              requests that match every key given:
                                "path": "/api/v1/services" (exact, or a pattern with * ? [ ]),
                                "match": "any"|"list" (a GET that is not a watch)|"watch"|
                                  "continue" (default any),
                                "method": "PATCH", "verb": "patch" or ["update", "patch"] (the
                                  RBAC verb: get list watch create update patch delete),
                                "resource": "services/status" (resource[/subresource], patterns
                                  allowed), "namespace", "name" (patterns allowed);
                              then what it does:
                                "status": 410|429|500|503|504|409|404|401|403|400|... a Status
                                  reply (410 on a continue request carries a fresh continue token
                                  and the "inconsistent list" message; 504 is the too-large-RV
                                  Status; 409 the Conflict and 404 the NotFound of the object);
                                  "retry_after": S sets Retry-After (429 default 1),
                                "reset": true    reset the connection (RST) instead of replying,
                                "delay": S       hold the request S seconds (at most 60) first,
                                "after_commit": true   writes only: serve the write (it is
                                  stored and watchers see it), then apply delay/reset/status to
                                  the reply, as when the reply is lost after etcd committed,
                                "inband_status": 410   watch only: 200, then an ERROR event, end,
                                "reset_after_events": K   watch only: serve K events, then half
                                  of the next line, then RST,
                                "raw_body": "TEXT"   watch only: 200, TEXT as the body, clean
                                  end (for malformed or unknown events).  -> {"id": n}
  GET    /fake/inject         the pending faults;   DELETE /fake/inject  clears them
  POST   /fake/token          {"token": "T"}: from now on only T is accepted ("" = no auth)
  POST   /fake/reset-watches  {"mode": "reset"|"end", "path": optional}: cut every open watch,
                              with an RST mid-event (reset, the default) or a clean end of stream
                              (end); returns once they are closed. -> {"cut": n}
  POST   /fake/config         {"bookmark_interval": S, "max_chunk": B, "history": N,
                              "continue_ttl": S}: change settings at run time
  GET    /fake/requests?since=SEQ   the API requests seen: {"requests": [{"seq", "t" (seconds
                              since start, monotonic), "method", "path", "query": {k: v}, "watch",
                              "status" (code, or "reset"), "auth", "ended" (watch: clean|reset|
                              error|gone), and for a known URL "verb" (RBAC: get list watch
                              create update patch delete deletecollection), "apiGroup",
                              "apiVersion", "resource", "subresource", "namespace", "name";
                              "content_type" and "body" (first 64 KiB) when sent, "user" for
                              a --rbac user's request}], "next": SEQ}.
                              DELETE /fake/requests forgets them.
  GET    /fake/watch-events?since=SEQ   the events the watches wrote from the history (not the
                              synthetic ADDED of a watch from RV 0/unset, nor bookmarks):
                              {"events": [{"seq", "t" (as above: once the chunk holding it was
                              handed to the kernel), "watch" (the watch request's seq),
                              "type" (ADDED|MODIFIED|DELETED as sent), "rv", "resource",
                              "namespace", "name"}], "next": SEQ}; the last 100000 at most.
                              DELETE /fake/watch-events forgets them.
"""

import argparse
import json
import random
import select
import socket
import ssl
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit, unquote

from fake_apiserver_control import control, fault_error
from fake_apiserver_model import (KINDS, MSG_INCONSISTENT_CONTINUE, MSG_LIST_EXPIRED,
                                  STATUS_REASONS, ApiError, Filter, Snapshot, Store, compact,
                                  event_line, make_token, method_not_allowed, not_found,
                                  parse_field_selector, parse_label_selector, rbac_verb,
                                  read_token, route, too_large, unauthorized, with_kind)
from fake_apiserver_registry import Registry
from fake_apiserver_rbac import Rbac, forbidden

START = time.monotonic()


class ConnectionCut(Exception):
    """The handler reset the connection on purpose: stop handling it."""


# ---------------------------------------------------------------------------------------------
# The server

class State:
    def __init__(self, args):
        self.args = args
        self.store = Store(args.history)
        self.registry = Registry(self.store, args.service_cidr, args.node_port_range)
        self.token = args.token or ''
        self.rbac = None
        if args.rbac:
            with open(args.rbac) as f:
                self.rbac = Rbac(json.load(f))
        self.bookmark_interval = args.bookmark_interval
        self.max_chunk = args.max_chunk
        self.continue_ttl = args.continue_ttl
        self.seed = args.seed
        self.meta_lock = threading.Lock()  # faults, requests log, snapshots, watch registry
        self.faults = []
        self.next_fault_id = 1
        self.requests = []
        self.next_seq = 1
        self.sent = []  # watch events written, for GET /fake/watch-events
        self.next_sent = 1
        self.snapshots = {}
        self.next_snap = 1
        self.open_watches = {}  # id -> threading.Event set when it ends
        self.watches_served = 0

    def log_request(self, method, path, query, is_watch, auth, info):
        with self.meta_lock:
            rec = {'seq': self.next_seq, 't': round(time.monotonic() - START, 6),
                   'method': method, 'path': path, 'query': query, 'watch': is_watch,
                   'status': None, 'auth': auth}
            rec.update(info)
            self.next_seq += 1
            self.requests.append(rec)
            if len(self.requests) > 100000:
                del self.requests[:10000]
            return rec

    def log_sent(self, watch_seq, sent):
        """`sent`: (type, Entry) of the events a watch has just handed to the kernel."""
        with self.meta_lock:
            t = round(time.monotonic() - START, 6)
            for type_, e in sent:
                obj = e.new if e.new is not None else e.old
                self.sent.append({'seq': self.next_sent, 't': t, 'watch': watch_seq,
                                  'type': type_, 'rv': e.rv, 'resource': e.kind.resource,
                                  'namespace': obj.ns, 'name': obj.name})
                self.next_sent += 1
            if len(self.sent) > 100000:
                del self.sent[:10000]

    def take_fault(self, rec, has_continue):
        with self.meta_lock:
            for f in self.faults:
                if f.applies(rec, has_continue):
                    if f.count > 0:
                        f.count -= 1
                    self.faults = [x for x in self.faults if x.count != 0]
                    return f
        return None

    def add_snapshot(self, rv, items, bound):
        with self.meta_lock:
            sid = self.next_snap
            self.next_snap += 1
            self.snapshots[sid] = Snapshot(rv, items, bound, time.monotonic())
            while len(self.snapshots) > 64:  # bounded: the oldest tokens expire first
                del self.snapshots[min(self.snapshots)]
            return sid

    def get_snapshot(self, sid):
        with self.meta_lock:
            snap = self.snapshots.get(sid)
            if snap is not None and time.monotonic() - snap.created > self.continue_ttl:
                del self.snapshots[sid]
                snap = None
            return snap


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'fake-apiserver'
    sys_version = ''

    # --- plumbing ----------------------------------------------------------------------------
    def setup(self):
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(10)
            try:
                self.request.do_handshake()
            except (ssl.SSLError, OSError):
                self.close_connection = True
            self.request.settimeout(None)
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().setup()

    def handle(self):
        try:
            super().handle()
        except (ConnectionCut, ConnectionError, ssl.SSLError, OSError):
            self.close_connection = True

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, fmt, *args):
        if self.server.state.args.verbose:
            sys.stderr.write('fake-apiserver: ' + (fmt % args) + '\n')

    @property
    def state(self):
        return self.server.state

    def send_body(self, code, body, content_type='application/json', headers=None):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(data)

    def send_error_status(self, err, rec=None):
        if rec is not None:
            rec['status'] = err.code
        self.send_body(err.code, err.body(), headers=err.headers)

    def read_body(self):
        """The request body, by Content-Length or chunked."""
        if 'chunked' in (self.headers.get('Transfer-Encoding') or '').lower():
            out = b''
            while True:
                size = int(self.rfile.readline(65537).split(b';')[0].strip() or b'0', 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b'\r\n', b'\n', b''):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline(65537)
        n = int(self.headers.get('Content-Length') or 0)
        return self.rfile.read(n) if n else b''

    def read_json(self):
        raw = self.read_body()
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except ValueError as e:
            raise ApiError(400, 'BadRequest', 'invalid JSON: %s' % e)

    def reset_connection(self):
        """An abrupt close: RST, no FIN, no TLS close_notify."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack('ii', 1, 0))
            self.connection.close()
        except OSError:
            pass
        raise ConnectionCut()

    def client_gone(self):
        if isinstance(self.connection, ssl.SSLSocket):
            return False  # no MSG_PEEK on TLS sockets: noticed on the next write instead
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if readable:
                return self.connection.recv(1, socket.MSG_PEEK) == b''
        except OSError:
            return True
        return False

    # --- dispatch -----------------------------------------------------------------------------
    def do_GET(self):
        self.dispatch('GET')

    def do_POST(self):
        self.dispatch('POST')

    def do_DELETE(self):
        self.dispatch('DELETE')

    def do_PUT(self):
        self.dispatch('PUT')

    def do_PATCH(self):
        self.dispatch('PATCH')

    def dispatch(self, method):
        url = urlsplit(self.path)
        path = unquote(url.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        try:
            if path.startswith('/fake/'):
                control(self, method, path, query)
            else:
                self.api(method, path, query)
        except ApiError as e:
            self.send_error_status(e)
        except (ConnectionCut, OSError):
            raise
        except Exception as e:  # a bad control request: say so rather than drop the connection
            self.send_error_status(ApiError(500, 'InternalError', '%s: %s' % (type(e).__name__, e)))

    # --- the API ------------------------------------------------------------------------------
    def api(self, method, path, query):
        st = self.state
        is_watch = query.get('watch') in ('1', 'true')
        raw = self.read_body() if method in ('POST', 'PUT', 'PATCH', 'DELETE') else b''
        r = route(path)
        info = {}
        if r is not None:
            kind = KINDS[r['resource']]
            info = {'verb': rbac_verb(method, r, is_watch), 'apiGroup': kind.group,
                    'apiVersion': kind.version, 'resource': r['resource'],
                    'subresource': r['subresource'], 'namespace': r['namespace'],
                    'name': r['name']}
        content_type = self.headers.get('Content-Type')
        if content_type:
            info['content_type'] = content_type
        if raw:
            info['body'] = raw[:65536].decode('utf-8', 'replace')
        auth_header = self.headers.get('Authorization', '')
        token = st.token
        bearer = auth_header[len('Bearer '):] if auth_header.startswith('Bearer ') else None
        user = st.rbac.user_of(bearer) if st.rbac is not None and bearer is not None else None
        if user is not None:
            auth = 'ok'
            info['user'] = user
        elif not token:
            auth = 'none'
        else:
            auth = 'ok' if auth_header == 'Bearer ' + token else 'bad'
        rec = st.log_request(method, path, query, is_watch, auth, info)
        if auth == 'bad':
            return self.send_error_status(unauthorized(), rec)
        # Authorization comes after authentication, before any fault or handler (the filter
        # chain: WithAuthentication, then WithAuthorization).
        if user is not None and r is not None and not st.rbac.allows(user, info):
            return self.send_error_status(forbidden(user, info), rec)
        fault = st.take_fault(rec, bool(query.get('continue')))
        spec = fault.spec if fault is not None else None
        after = fault is not None and fault.after_commit(rec)
        if spec is not None and not after and self.fault(spec, query, is_watch, rec):
            return None
        if r is None:
            return self.send_error_status(ApiError(404, 'NotFound', 'the server could not find '
                                                   'the requested resource'), rec)
        resource, ns, name, sub = r['resource'], r['namespace'], r['name'], r['subresource']
        try:
            if sub and (sub != 'status' or not KINDS[resource].status):
                raise ApiError(404, 'NotFound', 'the server could not find the requested '
                               'resource')
            if method == 'GET':
                flt = Filter(ns, parse_label_selector(query.get('labelSelector', '')),
                             parse_field_selector(query.get('fieldSelector', '')))
                if name is not None and not is_watch:
                    return self.get_one(resource, ns, name, rec)
                if name is not None:
                    flt.fields.append(('=', 'metadata.name', name))
                if is_watch:
                    return self.watch(resource, flt, query, rec, spec)
                return self.list(resource, flt, query, rec)
            code, body = self.write(method, r, query, raw, content_type)
        except ApiError as e:
            return self.send_error_status(e, rec)
        if after and self.fault(spec, query, is_watch, rec):
            return None
        rec['status'] = code
        self.send_body(code, compact(body))

    def fault(self, spec, query, is_watch, rec):
        """Do what an injected fault says; True when it replied (or reset) instead."""
        if spec.get('delay'):
            time.sleep(min(float(spec['delay']), 60.0))
        if spec.get('reset'):
            rec['status'] = 'reset'
            self.reset_connection()
        if 'status' in spec:
            self.send_error_status(fault_error(spec, query, is_watch, rec, self.state.store.rv),
                                   rec)
            return True
        return False

    def write(self, method, r, query, raw, content_type):
        """POST, PUT, PATCH and DELETE (fake_apiserver_registry.py) -> (code, reply)."""
        st = self.state
        reg = st.registry
        resource, ns, name, sub = r['resource'], r['namespace'], r['name'], r['subresource']
        kind = KINDS[resource]
        # handlers: fieldManager, else the User-Agent up to its first '/' (managerOrUserAgent)
        manager = query.get('fieldManager') or \
            (self.headers.get('User-Agent') or '').split('/')[0][:128]
        if query.get('dryRun'):
            raise ApiError(400, 'BadRequest', 'dryRun is not implemented by the fake apiserver')
        if method == 'POST' and name is None and (ns or not kind.namespaced):
            obj = reg.decode(kind, raw, content_type)
            with st.store.lock:
                return reg.create(resource, ns, obj, manager)
        if method == 'PUT' and name is not None:
            obj = reg.decode(kind, raw, content_type)
            with st.store.lock:
                return reg.put(resource, ns, name, sub, obj, manager)
        if method == 'PATCH' and name is not None:
            with st.store.lock:
                return reg.patch(resource, ns, name, sub, content_type, raw, query, manager)
        if method == 'DELETE' and name is not None and not sub:
            with st.store.lock:
                return reg.delete(resource, ns, name, raw)
        raise method_not_allowed()

    def get_one(self, resource, ns, name, rec):
        st = self.state
        with st.store.lock:
            obj = st.store.get(resource, ns, name)
        if obj is None:
            raise not_found(KINDS[resource], name)
        rec['status'] = 200
        self.send_body(200, with_kind(KINDS[resource], obj.json))

    def list(self, resource, flt, query, rec):
        st = self.state
        store = st.store
        kind = KINDS[resource]
        try:
            limit = int(query.get('limit') or 0)
        except ValueError:
            raise ApiError(400, 'BadRequest', 'invalid limit')
        cont = query.get('continue', '')
        rv_param = query.get('resourceVersion')
        match = query.get('resourceVersionMatch', '')
        bound = (flt.ns, query.get('labelSelector', ''), query.get('fieldSelector', ''))
        if cont:
            if rv_param not in (None, ''):
                raise ApiError(400, 'BadRequest',
                               'specifying resource version is not allowed when using continue')
            snap_id, _, offset = read_token(cont)
            snap = st.get_snapshot(snap_id)
            if snap is None:
                with store.lock:
                    fresh = make_token(0, store.rv, offset)
                raise ApiError(410, 'Expired', MSG_INCONSISTENT_CONTINUE,
                               metadata={'continue': fresh})
            if snap.bound != bound:
                raise ApiError(400, 'BadRequest', 'continue token was issued for namespace=%r '
                               'labelSelector=%r fieldSelector=%r' % snap.bound)
            list_rv, items = snap.rv, snap.items
        else:
            with store.lock:
                current = store.rv
                if rv_param not in (None, ''):
                    try:
                        n = int(rv_param)
                    except ValueError:
                        raise ApiError(400, 'BadRequest',
                                       'invalid resource version: %r' % rv_param)
                    if n > current:
                        raise too_large(rv_param, current)
                    if (limit or match == 'Exact') and n != 0 and n < store.compacted:
                        raise ApiError(410, 'Expired', MSG_LIST_EXPIRED)
                    if match == 'Exact' and n != current:
                        raise ApiError(410, 'Expired', MSG_LIST_EXPIRED)  # no MVCC in the fake
                    if rv_param == '0' and match != 'Exact':
                        limit = 0  # served whole from the "watch cache"
                objs = store.sorted_objects(resource)
            items = [o.json for o in objs if flt.match(o)]
            list_rv, offset = current, 0
            snap_id = None
        page = items[offset:offset + limit] if limit else items[offset:]
        end = offset + len(page)
        meta = '"resourceVersion":"%d"' % list_rv
        if limit and end < len(items):
            if snap_id is None:
                snap_id = st.add_snapshot(list_rv, items, bound)
            meta += ',"continue":"%s"' % make_token(snap_id, list_rv, end)
            if not bound[1] and not bound[2]:
                meta += ',"remainingItemCount":%d' % (len(items) - end)
        body = '{"kind":"%s","apiVersion":"%s","metadata":{%s},"items":[%s]}' % (
            kind.list_kind, kind.api_version, meta, ','.join(page))
        rec['status'] = 200
        self.send_body(200, body)

    # --- WATCH --------------------------------------------------------------------------------
    def write_chunks(self, data, rng, max_chunk):
        if not data:
            return
        if max_chunk <= 0:
            self.wfile.write(b'%x\r\n%s\r\n' % (len(data), data))
            return
        i, n = 0, len(data)
        while i < n:
            # Mostly chunks up to max_chunk, sometimes tiny ones, so boundaries fall anywhere.
            size = rng.randint(1, 16) if rng.random() < 0.25 else rng.randint(1, max_chunk)
            piece = data[i:i + size]
            self.wfile.write(b'%x\r\n%s\r\n' % (len(piece), piece))
            i += size

    def end_stream(self):
        self.wfile.write(b'0\r\n\r\n')

    def watch(self, resource, flt, query, rec, fault):
        st = self.state
        store = st.store
        kind = KINDS[resource]
        rv_param = query.get('resourceVersion')
        try:
            timeout = float(query['timeoutSeconds']) if query.get('timeoutSeconds') else None
        except ValueError:
            raise ApiError(400, 'BadRequest', 'invalid timeoutSeconds')
        bookmarks = query.get('allowWatchBookmarks') in ('1', 'true')
        with st.meta_lock:
            st.watches_served += 1
            watch_no = st.watches_served
        rng = random.Random(st.seed * 1000003 + watch_no)
        if timeout is None:
            timeout = rng.uniform(1800, 3600)
        initial = []
        too_old = None
        with store.lock:
            current = store.rv
            if rv_param in (None, '', '0'):
                initial = [o for o in store.sorted_objects(resource) if flt.match(o)]
                cursor = current + 1
            else:
                try:
                    n = int(rv_param)
                except ValueError:
                    raise ApiError(400, 'BadRequest', 'invalid resource version: %r' % rv_param)
                if n > current:
                    raise too_large(rv_param, current)
                if n < store.compacted:
                    too_old = 'too old resource version: %d (%d)' % (n, store.compacted + 1)
                cursor = n + 1
            generation = store.cut_generation

        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Transfer-Encoding', 'chunked')
        self.end_headers()
        rec['status'] = 200
        done = threading.Event()
        with st.meta_lock:
            st.open_watches[watch_no] = (self.route_path(), done)
        try:
            self.stream(kind, resource, flt, rec, fault, rng, timeout, bookmarks, initial, cursor,
                        too_old, generation)
        finally:
            with st.meta_lock:
                st.open_watches.pop(watch_no, None)
            done.set()

    def stream(self, kind, resource, flt, rec, fault, rng, timeout, bookmarks, initial, cursor,
               too_old, generation):
        st = self.state
        store = st.store
        rec['ended'] = 'gone'
        if fault is not None and 'raw_body' in fault:
            self.write_chunks(fault['raw_body'].encode(), rng, st.max_chunk)
            self.end_stream()
            rec['ended'] = 'clean'
            return
        if too_old is None and fault is not None and 'inband_status' in fault:
            code = int(fault['inband_status'])
            too_old = ('too old resource version: %d (%d)' % (cursor - 1, store.compacted + 1)
                       if code == 410 else 'injected %d' % code)
            err_code = code
        else:
            err_code = 410
        if too_old is not None:
            err = ApiError(err_code, STATUS_REASONS.get(err_code, 'Unknown'), too_old)
            self.write_chunks(('{"type":"ERROR","object":%s}\n' % err.body()).encode(), rng,
                              st.max_chunk)
            self.end_stream()
            rec['ended'] = 'error'
            return
        reset_after = int(fault['reset_after_events']) if fault and 'reset_after_events' in fault \
            else None
        sent = 0

        def send(lines):
            nonlocal sent
            if reset_after is not None and sent + len(lines) > reset_after:
                keep = lines[:reset_after - sent]
                half = lines[reset_after - sent]
                self.write_chunks(b''.join(keep) + half[:len(half) // 2], rng, st.max_chunk)
                rec['ended'] = 'reset'
                self.reset_connection()
            sent += len(lines)
            self.write_chunks(b''.join(lines), rng, st.max_chunk)

        my_path = self.route_path()
        start = time.monotonic()
        deadline = start + timeout
        if initial:
            send([event_line(kind, 'ADDED', o.json) for o in initial])
        interval = st.bookmark_interval
        next_bookmark = start + interval if bookmarks and interval > 0 else None
        while True:
            now = time.monotonic()
            with store.lock:
                while True:
                    now = time.monotonic()
                    if (cursor <= store.rv or store.cut_generation != generation or
                            now >= deadline or (next_bookmark is not None and now >= next_bookmark)):
                        break
                    wake = deadline if next_bookmark is None else min(deadline, next_bookmark)
                    store.cond.wait(min(0.25, wake - now))
                    if cursor > store.rv and store.cut_generation == generation:
                        break  # re-check the client between waits (outside the lock)
                entries = store.entries_from(cursor)
                top = store.rv
                seen_generation = store.cut_generation
                cut = seen_generation != generation and store.cut_path in (None, my_path)
                cut_mode = store.cut_mode
            if not cut:
                generation = seen_generation  # none, or a cut aimed at another path
            if entries is None:
                # Fell out of the history window: the server drops the watcher; the client's
                # re-watch gets the 410.
                self.end_stream()
                rec['ended'] = 'clean'
                return
            cursor = top + 1
            lines = []
            logged = []
            for e in entries:
                if e.kind is not kind:
                    continue
                rendered = self.render(e, flt)
                if rendered is not None:
                    lines.append(rendered[1])
                    logged.append((rendered[0], e))
            now = time.monotonic()
            if next_bookmark is not None and now >= next_bookmark:
                lines.append(('{"type":"BOOKMARK","object":%s}\n' % kind.bookmark_object(
                    top, st.args.pre_134)).encode())
                next_bookmark = now + st.bookmark_interval if st.bookmark_interval > 0 else None
            if lines:
                send(lines)
                if logged:
                    st.log_sent(rec['seq'], logged)
            elif cursor > store.rv and self.client_gone():
                rec['ended'] = 'gone'
                return
            if cut:
                if cut_mode == 'end':
                    self.end_stream()
                    rec['ended'] = 'clean'
                    return
                # Mid-event: half a line, then RST.
                partial = ('{"type":"BOOKMARK","object":%s}\n' % kind.bookmark_object(
                    top, False)).encode()
                self.write_chunks(partial[:len(partial) // 2], rng, st.max_chunk)
                rec['ended'] = 'reset'
                self.reset_connection()
            if now >= deadline:
                self.end_stream()
                rec['ended'] = 'clean'
                return

    def route_path(self):
        return unquote(urlsplit(self.path).path)

    def render(self, e, flt):
        """Entry `e` as this watch sends it: (type, line), or None when the filter hides it."""
        old_m = flt.match(e.old)
        new_m = flt.match(e.new)
        if e.type == 'ADDED':
            t = 'ADDED' if new_m else None
        elif e.type == 'DELETED':
            t = 'DELETED' if old_m else None
        elif old_m and new_m:
            t = 'MODIFIED'
        elif new_m:
            t = 'ADDED'
        elif old_m:
            t = 'GONE'  # stopped matching: DELETED with the previous content and this RV
        else:
            t = None
        if t is None:
            return None
        line = e.lines.get(t)
        if line is None:
            if t == 'GONE':
                line = event_line(e.kind, 'DELETED', e.old.with_rv(e.rv).json)
            else:
                line = event_line(e.kind, t, e.new.json)
            e.lines[t] = line
        return ('DELETED' if t == 'GONE' else t), line


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, addr, state, tls_context):
        self.state = state
        self.tls_context = tls_context
        super().__init__(addr, Handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        if self.tls_context is not None:
            # The handshake runs on the connection's thread (Handler.setup), not the accept loop.
            sock = self.tls_context.wrap_socket(sock, server_side=True,
                                                do_handshake_on_connect=False)
        return sock, addr


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--host', default='127.0.0.1')
    p.add_argument('--port', type=int, default=0)
    p.add_argument('--token', default='')
    p.add_argument('--tls-cert')
    p.add_argument('--tls-key')
    p.add_argument('--seed', type=int, default=1)
    p.add_argument('--history', type=int, default=100000)
    p.add_argument('--bookmark-interval', type=float, default=60.0)
    p.add_argument('--max-chunk', type=int, default=4096)
    p.add_argument('--continue-ttl', type=float, default=300.0)
    p.add_argument('--pre-134', action='store_true')
    p.add_argument('--service-cidr', default='10.96.0.0/12')
    p.add_argument('--node-port-range', default='30000-32767')
    p.add_argument('--rbac')
    p.add_argument('--verbose', action='store_true')
    args = p.parse_args()
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error('--tls-cert and --tls-key go together')
    tls = None
    if args.tls_cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
    family = socket.AF_INET6 if ':' in args.host else socket.AF_INET
    Server.address_family = family
    server = Server((args.host, args.port), State(args), tls)
    print('listening on %d' % server.server_address[1], flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == '__main__':
    main()
