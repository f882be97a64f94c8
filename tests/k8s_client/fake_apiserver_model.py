"""The fake kube-apiserver's data model (see fake_apiserver.py): kinds, Status errors, label and
field selectors, the object store with its RV-indexed write history, and continue tokens. No HTTP
here; the server holds Store.lock around every call that reads or writes the store."""

import base64
import json
import threading
import time
import uuid


def compact(obj):
    return json.dumps(obj, separators=(',', ':'))


def now_rfc3339():
    """metav1.Time as the apiserver writes it: seconds, UTC."""
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())


class Kind:
    """One resource as the apiserver registers it: URL prefix, group/version, scope, and the few
    registry flags the write paths follow (k8s-api.md §12.1; generic registry Store fields and
    each kind's strategy in pkg/registry/...)."""

    def __init__(self, resource, kind, group, version, namespaced, status=False,
                 create_on_update=False, unconditional_update=True, return_deleted=False,
                 bookmark_body=''):
        self.resource = resource
        self.kind = kind
        self.group = group
        self.version = version
        self.api_version = group + '/' + version if group else version
        self.namespaced = namespaced
        self.status = status  # has a /status subresource
        self.create_on_update = create_on_update  # strategy.AllowCreateOnUpdate
        self.unconditional_update = unconditional_update  # strategy.AllowUnconditionalUpdate
        self.return_deleted = return_deleted  # Store.ReturnDeletedObject
        self.list_kind = kind + 'List'
        self.prefix = '/apis/%s/%s' % (group, version) if group else '/api/' + version
        # What errors.NewNotFound/NewConflict print (GroupResource.String()) and what
        # errors.NewInvalid prints (GroupKind.String()).
        self.qualified = resource + ('.' + group if group else '')
        self.qualified_kind = kind + ('.' + group if group else '')
        self.header = '"kind":%s,"apiVersion":%s' % (json.dumps(kind), json.dumps(self.api_version))
        self.bookmark_body = bookmark_body

    def bookmark_object(self, rv, pre_134):
        """The empty typed object a BOOKMARK carries: only metadata.resourceVersion, plus the
        fields Go serializes even when empty (k8s-api.md §3.2)."""
        meta = '{"resourceVersion":"%d"%s}' % (rv, ',"creationTimestamp":null' if pre_134 else '')
        return '{%s,"metadata":%s%s}' % (self.header, meta, self.bookmark_body)

    def details(self, name, **extra):
        """Status details as errors.NewNotFound and friends fill them in."""
        d = {'name': name}
        if self.group:
            d['group'] = self.group
        d['kind'] = self.resource
        d.update(extra)
        return d


_NODE_INFO = ('machineID', 'systemUUID', 'bootID', 'kernelVersion', 'osImage',
              'containerRuntimeVersion', 'kubeletVersion', 'kubeProxyVersion', 'operatingSystem',
              'architecture')

KINDS = {
    # Services: create-on-update and unconditional updates allowed, DELETE answers the deleted
    # object (pkg/registry/core/service/strategy.go, storage/storage.go ReturnDeletedObject).
    'services': Kind('services', 'Service', '', 'v1', True, status=True, create_on_update=True,
                     return_deleted=True, bookmark_body=',"spec":{},"status":{"loadBalancer":{}}'),
    'endpointslices': Kind('endpointslices', 'EndpointSlice', 'discovery.k8s.io', 'v1', True,
                           bookmark_body=',"addressType":"","endpoints":null,"ports":null'),
    # Nodes: cluster-scoped, /status subresource, no create-on-update (registry/core/node).
    'nodes': Kind('nodes', 'Node', '', 'v1', False, status=True,
                  bookmark_body=',"spec":{},"status":{"daemonEndpoints":{"kubeletEndpoint":'
                  '{"Port":0}},"nodeInfo":{%s}}' % ','.join('"%s":""' % f for f in _NODE_INFO)),
    # Leases: PUT may create, but an update MUST carry a resourceVersion
    # (registry/coordination/lease/strategy.go: AllowUnconditionalUpdate false).
    'leases': Kind('leases', 'Lease', 'coordination.k8s.io', 'v1', True, create_on_update=True,
                   unconditional_update=False, bookmark_body=',"spec":{}'),
    'events': Kind('events', 'Event', 'events.k8s.io', 'v1', True, create_on_update=True,
                   bookmark_body=',"eventTime":null,"regarding":{},"deprecatedSource":{},'
                   '"deprecatedFirstTimestamp":null,"deprecatedLastTimestamp":null'),
}
KIND_ALIASES = {}
for _r, _k in KINDS.items():
    KIND_ALIASES.update({_r: _r, _r[:-1]: _r, _k.kind: _r})


def route(path):
    """path -> {resource, namespace, name, subresource} or None (k8s-api.md §1, §12):
    PREFIX/RES (every namespace, or a cluster-scoped kind), PREFIX/namespaces/NS/RES,
    .../RES/NAME and .../RES/NAME/SUBRESOURCE."""
    for resource, kind in KINDS.items():
        if not path.startswith(kind.prefix + '/'):
            continue
        parts = path[len(kind.prefix) + 1:].split('/')
        ns = ''
        if kind.namespaced and len(parts) >= 3 and parts[0] == 'namespaces':
            ns, parts = parts[1], parts[2:]
        if (parts[0] != resource or len(parts) > 3 or '' in parts or
                (kind.namespaced and len(parts) > 1 and not ns)):
            continue
        return {'resource': resource, 'namespace': ns,
                'name': parts[1] if len(parts) > 1 else None,
                'subresource': parts[2] if len(parts) > 2 else ''}
    return None


def rbac_verb(method, r, is_watch):
    """The verb an RBAC rule must grant for this request."""
    if method in ('GET', 'HEAD'):
        return 'watch' if is_watch else ('get' if r['name'] else 'list')
    if method == 'DELETE':
        return 'delete' if r['name'] else 'deletecollection'
    return {'POST': 'create', 'PUT': 'update', 'PATCH': 'patch'}.get(method, method.lower())


class ApiError(Exception):
    """An error answered with a Status body."""

    def __init__(self, code, reason, message, details=None, metadata=None, headers=None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.metadata = metadata or {}
        self.headers = headers or {}

    def body(self):
        s = {'kind': 'Status', 'apiVersion': 'v1', 'metadata': self.metadata, 'status': 'Failure',
             'message': self.message}
        if self.reason:  # StatusReasonUnknown is "" and omitted
            s['reason'] = self.reason
        if self.details is not None:
            s['details'] = self.details
        s['code'] = self.code
        return compact(s)


def not_found(kind, name):
    """errors.NewNotFound: `services "x" not found` (apimachinery/pkg/api/errors/errors.go)."""
    return ApiError(404, 'NotFound', '%s "%s" not found' % (kind.qualified, name),
                    details=kind.details(name))


def already_exists(kind, name, deleting=False):
    """errors.NewAlreadyExists; prefixed "object is being deleted: " when the existing object has
    a deletionTimestamp (generic registry Store.create)."""
    msg = '%s "%s" already exists' % (kind.qualified, name)
    return ApiError(409, 'AlreadyExists', ('object is being deleted: ' if deleting else '') + msg,
                    details=kind.details(name))


OPTIMISTIC_LOCK = ('the object has been modified; please apply your changes to the latest '
                   'version and try again')


def conflict(kind, name, why=OPTIMISTIC_LOCK, qualified=None):
    """errors.NewConflict: `Operation cannot be fulfilled on services "x": <why>`
    (k8s-api.md §4)."""
    return ApiError(409, 'Conflict', 'Operation cannot be fulfilled on %s "%s": %s' % (
        qualified or kind.qualified, name, why), details=kind.details(name))


def bad_request(message):
    return ApiError(400, 'BadRequest', message)


def method_not_allowed():
    return ApiError(405, 'MethodNotAllowed',
                    'the server does not allow this method on the requested resource',
                    details={})


# ---------------------------------------------------------------------------------------------
# Selectors

KEY_CHARS = set('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/')
VALUE_CHARS = set('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-')


def bad_selector(s, why):
    return ApiError(400, 'BadRequest', 'unable to parse requirement: %s: %r' % (why, s))


def parse_label_selector(s):
    """k8s label selector syntax -> list of (op, key, values). Raises ApiError(400)."""
    reqs = []
    i, n = 0, len(s)

    def ws(i):
        while i < n and s[i] in ' \t':
            i += 1
        return i

    def word(i, chars):
        j = i
        while j < n and s[j] in chars:
            j += 1
        return s[i:j], j

    i = ws(i)
    if i >= n:
        return reqs
    while True:
        i = ws(i)
        neg = i < n and s[i] == '!'
        if neg:
            i = ws(i + 1)
        key, i = word(i, KEY_CHARS)
        if not key:
            raise bad_selector(s, 'missing key')
        i = ws(i)
        if neg:
            reqs.append(('!', key, None))
        elif i >= n or s[i] == ',':
            reqs.append(('exists', key, None))
        elif s.startswith('!=', i) or s.startswith('==', i) or s[i] == '=':
            op = '!=' if s[i] == '!' else '='
            i = ws(i + (1 if s[i] == '=' and not s.startswith('==', i) else 2))
            val, i = word(i, VALUE_CHARS)
            reqs.append((op, key, val))
        else:
            op, j = word(i, set('innot'))
            if op not in ('in', 'notin'):
                raise bad_selector(s, 'unknown operator')
            i = ws(j)
            if i >= n or s[i] != '(':
                raise bad_selector(s, 'expected (')
            i += 1
            vals = set()
            while True:
                i = ws(i)
                val, i = word(i, VALUE_CHARS)
                vals.add(val)
                i = ws(i)
                if i < n and s[i] == ',':
                    i += 1
                    continue
                if i < n and s[i] == ')':
                    i += 1
                    break
                raise bad_selector(s, 'expected , or )')
            reqs.append((op, key, vals))
        i = ws(i)
        if i >= n:
            return reqs
        if s[i] != ',':
            raise bad_selector(s, 'unexpected %r' % s[i])
        i += 1


def labels_match(reqs, labels):
    for op, key, val in reqs:
        have = labels.get(key)
        if op == '=':
            if have != val:
                return False
        elif op == '!=':
            if have == val:
                return False
        elif op == 'in':
            if have is None or have not in val:
                return False
        elif op == 'notin':
            if have is not None and have in val:
                return False
        elif op == 'exists':
            if have is None:
                return False
        elif op == '!':
            if have is not None:
                return False
    return True


def parse_field_selector(s):
    reqs = []
    for term in filter(None, (t.strip() for t in s.split(','))):
        if '!=' in term:
            field, val, op = *term.split('!=', 1), '!='
        elif '==' in term:
            field, val, op = *term.split('==', 1), '='
        elif '=' in term:
            field, val, op = *term.split('=', 1), '='
        else:
            raise ApiError(400, 'BadRequest', 'invalid field selector: %r' % s)
        field = field.strip()
        if field not in ('metadata.name', 'metadata.namespace'):
            raise ApiError(400, 'BadRequest',
                           'field label not supported: %s' % field)
        reqs.append((op, field, val.strip()))
    return reqs


def fields_match(reqs, obj):
    for op, field, val in reqs:
        have = obj.name if field == 'metadata.name' else obj.ns
        if (have == val) != (op == '='):
            return False
    return True


class Filter:
    def __init__(self, ns, labels, fields):
        self.ns = ns
        self.labels = labels
        self.fields = fields

    def match(self, obj):
        if obj is None:
            return False
        if self.ns and obj.ns != self.ns:
            return False
        return labels_match(self.labels, obj.labels) and fields_match(self.fields, obj)


# ---------------------------------------------------------------------------------------------
# The store

class Obj:
    __slots__ = ('ns', 'name', 'labels', 'data', 'json', 'rv')

    def __init__(self, data, rv):
        meta = data['metadata']
        self.ns = meta.get('namespace', '')
        self.name = meta['name']
        self.labels = meta.get('labels') or {}
        self.data = data
        self.rv = rv
        self.json = compact(data)

    def with_rv(self, rv):
        data = dict(self.data)
        data['metadata'] = dict(data['metadata'], resourceVersion=str(rv))
        return Obj(data, rv)


class Entry:
    """One write: the state before (old) and after (new; for DELETED the last state stamped with
    the deletion's RV)."""
    __slots__ = ('rv', 'kind', 'type', 'old', 'new', 'lines')

    def __init__(self, rv, kind, type_, old, new):
        self.rv = rv
        self.kind = kind
        self.type = type_
        self.old = old
        self.new = new
        self.lines = {}


def with_kind(kind, obj_json):
    """A stored object (list-item form) with kind and apiVersion first, as single GETs and watch
    events carry them."""
    body = obj_json[1:-1]
    return '{%s%s%s}' % (kind.header, ',' if body else '', body)


def event_line(kind, type_, obj_json):
    return ('{"type":"%s","object":%s}\n' % (type_, with_kind(kind, obj_json))).encode()


class Store:
    def __init__(self, history_limit):
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.rv = 1  # like a fresh cluster, RVs start above 0
        self.objects = {k: {} for k in KINDS}
        self.sorted_keys = {k: None for k in KINDS}
        self.history = []       # Entry for RVs compacted+1 .. rv
        self.compacted = self.rv  # every event with RV <= compacted is gone
        self.history_limit = history_limit
        self.cut_generation = 0
        self.cut_mode = 'reset'
        self.cut_path = None

    # --- writes (lock held) -------------------------------------------------------------------
    def _append(self, entry):
        self.history.append(entry)
        excess = len(self.history) - self.history_limit
        if excess > max(16, self.history_limit // 4):  # trim in batches: amortised O(1)
            del self.history[:excess]
            self.compacted = self.history[0].rv - 1

    def put(self, resource, data):
        """The control API's write: create or replace by name, server fields filled in."""
        kind = KINDS[resource]
        data = dict(data)
        data.pop('kind', None)
        data.pop('apiVersion', None)
        meta = dict(data.get('metadata') or {})
        if not meta.get('name'):
            raise ApiError(422, 'Invalid', 'metadata.name: Required value')
        if kind.namespaced:
            meta.setdefault('namespace', 'default')
        else:
            meta.pop('namespace', None)
        old = self.objects[resource].get(self.key(kind, meta.get('namespace', ''), meta['name']))
        if old is not None:
            meta['uid'] = old.data['metadata'].get('uid')
            meta['creationTimestamp'] = old.data['metadata'].get('creationTimestamp')
        else:
            meta.setdefault('uid', str(uuid.uuid4()))
            meta.setdefault('creationTimestamp', now_rfc3339())
        data['metadata'] = meta
        self.commit(resource, data)

    @staticmethod
    def key(kind, ns, name):
        return (ns if kind.namespaced else '') + '/' + name

    def get(self, resource, ns, name):
        return self.objects[resource].get(self.key(KINDS[resource], ns, name))

    def commit(self, resource, data):
        """Store `data` (list-item form, metadata complete but for the RV) under the next RV:
        ADDED or MODIFIED. Returns the stored Obj."""
        kind = KINDS[resource]
        meta = data['metadata']
        key = self.key(kind, meta.get('namespace', ''), meta['name'])
        old = self.objects[resource].get(key)
        self.rv += 1
        data['metadata'] = dict(meta, resourceVersion=str(self.rv))
        obj = Obj(data, self.rv)
        self.objects[resource][key] = obj
        if old is None:
            self.sorted_keys[resource] = None
        self._append(Entry(self.rv, kind, 'MODIFIED' if old else 'ADDED', old, obj))
        return obj

    def delete(self, resource, ns, name):
        """Remove at once (no finalizers): DELETED with the last state at the deletion's RV."""
        key = self.key(KINDS[resource], ns, name)
        old = self.objects[resource].pop(key, None)
        if old is None:
            return False
        self.sorted_keys[resource] = None
        self.rv += 1
        self._append(Entry(self.rv, KINDS[resource], 'DELETED', old, old.with_rv(self.rv)))
        return True

    def compact_to(self, rv):
        rv = min(rv, self.rv)
        if rv > self.compacted:
            self.history = [e for e in self.history if e.rv > rv]
            self.compacted = rv
        return self.compacted

    # --- reads (lock held) --------------------------------------------------------------------
    def sorted_objects(self, resource):
        keys = self.sorted_keys[resource]
        if keys is None:
            keys = self.sorted_keys[resource] = sorted(self.objects[resource])
        objs = self.objects[resource]
        return [objs[k] for k in keys]

    def entries_from(self, rv):
        """History entries with RV >= rv, or None when some of them are gone."""
        if rv <= self.compacted:
            return None
        first = self.compacted + 1  # RV of history[0]: one entry per RV
        return self.history[rv - first:]


# ---------------------------------------------------------------------------------------------
# Continue tokens: an opaque base64 JSON, as real ones are; the fake keeps the page snapshot.

class Snapshot:
    def __init__(self, rv, items, bound, created):
        self.rv = rv
        self.items = items
        self.bound = bound  # (namespace, labelSelector, fieldSelector) the token is valid for
        self.created = created


def make_token(snap_id, rv, offset):
    raw = compact({'v': 'meta.k8s.io/v1', 'rv': rv, 'start': offset, 'snap': snap_id})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip('=')


def read_token(token):
    try:
        raw = base64.urlsafe_b64decode(token + '=' * (-len(token) % 4))
        t = json.loads(raw)
        return int(t['snap']), int(t['rv']), int(t['start'])
    except Exception:
        raise ApiError(400, 'BadRequest', 'continue key is not valid: %r' % token)


STATUS_REASONS = {400: 'BadRequest', 401: 'Unauthorized', 403: 'Forbidden', 404: 'NotFound',
                  405: 'MethodNotAllowed', 409: 'Conflict', 410: 'Expired',
                  415: 'UnsupportedMediaType', 422: 'Invalid', 429: 'TooManyRequests',
                  500: 'InternalError', 503: 'ServiceUnavailable', 504: 'Timeout'}

MSG_LIST_EXPIRED = 'The resourceVersion for the provided list is too old.'
MSG_WATCH_EXPIRED = 'The resourceVersion for the provided watch is too old.'
MSG_INCONSISTENT_CONTINUE = (
    'The provided continue parameter is too old to display a consistent list result. You can '
    'start a new list without the continue parameter, or use the continue token in this response '
    'to retrieve the remainder of the results. Continuing with the provided token results in an '
    'inconsistent list - objects that were created, modified, or deleted between the time the '
    'first chunk was returned and now may show up in the list.')


def too_large(requested, current):
    return ApiError(504, 'Timeout',
                    'Timeout: Too large resource version: %s, current: %d' % (requested, current),
                    details={'causes': [{'reason': 'ResourceVersionTooLarge',
                                         'message': 'Too large resource version'}],
                             'retryAfterSeconds': 1})


def unauthorized():
    return ApiError(401, 'Unauthorized', 'Unauthorized')
