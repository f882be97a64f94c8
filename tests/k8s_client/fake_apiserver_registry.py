"""The fake kube-apiserver's write paths (see fake_apiserver.py): POST, PUT, PATCH and DELETE
through the real API, as the apiserver's generic registry Store runs them
(apiserver/pkg/registry/generic/registry/store.go Create/Update/Delete, rest.BeforeCreate/
BeforeUpdate/BeforeDelete, endpoints/handlers/{create,update,patch,delete}.go). Each call takes
Store.lock for its whole read-modify-write, so concurrent writers are serialised and exactly one
of two writers holding the same resourceVersion wins (k8s-api.md §4, §12.1).

What the real Store does, and the fake with it:
* Create (POST; 201): the body's kind/apiVersion must match the URL (400); its namespace must be
  the URL's (400); an empty name with metadata.generateName gets 5 random characters; uid and
  creationTimestamp are always the server's; deletionTimestamp is dropped; then defaulting, the
  kind's PrepareForCreate, allocation (Services), validation (422 Invalid with details.causes),
  409 AlreadyExists (prefixed "object is being deleted: " when the existing object has a
  deletionTimestamp), and a body that carries metadata.resourceVersion fails in storage: 500
  "resourceVersion should not be set on objects to be created".
* Update (PUT; 200, or 201 when it created): the body's name must be the URL's (400). A body
  uid other than the stored one is a 409 "Precondition failed". metadata.resourceVersion must
  equal the stored one (409 Conflict otherwise); when it is absent the update is unconditional
  for kinds whose strategy allows it (Services, EndpointSlices, Nodes, Events) and a 422
  `metadata.resourceVersion: Invalid value: 0x0: must be specified for an update` for Leases
  (AllowUnconditionalUpdate false). A PUT to a missing object creates it where the strategy
  allows (Services, Leases, Events; never through a subresource) and is a 404 otherwise; the
  create ignores the body's resourceVersion. An update never changes uid, creationTimestamp,
  generation (but for the kind's own bump), a deletionTimestamp once set, or managedFields
  (tracked by the server). An update that changes nothing is not written: 200 with the stored
  object, same RV, no event (the etcd3 store's no-op short cut).
* Finalizers (store.go Delete/updateForGracefulDeletionAndFinalizers/markAsDeleting,
  ShouldDeleteDuringUpdate, deleteWithoutFinalizers): a DELETE of an object with finalizers sets
  deletionTimestamp (now) and deletionGracePeriodSeconds 0 and stores it (MODIFIED; 200 with
  the object); a second DELETE changes nothing. The update or patch that removes the last
  finalizer of such an object deletes it instead of storing it: DELETED to watchers (with the
  last stored state, finalizers included, at the deletion's RV) and 200 with the object as
  updated. Adding a finalizer to an object being deleted is a 422 (ValidateObjectMetaUpdate:
  `metadata.finalizers: Forbidden: no new finalizers can be added if the object is being
  deleted, found new finalizers []string{"x"}`); so is setting a deletionTimestamp by update.
* Delete: DeleteOptions preconditions (uid, resourceVersion) give 409 on mismatch; an object
  without finalizers goes at once (DELETED); the reply is the object for Services
  (ReturnDeletedObject) and a Status "Success" for the other kinds. propagationPolicy,
  gracePeriodSeconds and dryRun are accepted and ignored (no garbage collector runs here);
  DELETE on a collection is 405.
* Patch: see fake_apiserver_patch.py for the content types; 415 for any other, listing the
  accepted ones; the patch applies to the stored object's JSON and the result goes through the
  update path above (so a metadata.resourceVersion in the patch makes it conditional, and a
  patch never creates, except an apply to a missing object on the main endpoint: 201). An
  apply without ?fieldManager is a 422 on PatchOptions (`fieldManager: Required value: is
  required for apply patch`, as handlers/patch.go ValidatePatchOptions answers; k8s-api.md
  only says "required"), and force on a non-apply patch a 422 too.
* The stored JSON is kept as sent apart from the fields above: no schema pruning of unknown
  fields (the real server drops them, with a warning), no label/annotation syntax checks, no
  Namespace objects (any namespace exists)."""

import copy
import ipaddress
import json
import uuid

from fake_apiserver_model import (KINDS, ApiError, already_exists, bad_request, conflict,
                                  not_found, now_rfc3339)
from fake_apiserver_patch import (ApplyConflict, PatchError, apply, json_patch, merge_patch,
                                  strategic_merge, track_update)
from fake_apiserver_service import ServiceStrategy
from fake_apiserver_strategy import (DecodeError, EndpointSliceStrategy, EventStrategy,
                                     FieldError, LeaseStrategy, NodeStrategy, Raw, generate_name,
                                     invalid, qualified_name_errors)

PATCH_TYPES = ('application/json-patch+json', 'application/merge-patch+json',
               'application/apply-patch+yaml', 'application/strategic-merge-patch+json',
               'application/apply-patch+cbor')
BODY_TYPES = ('application/json', 'application/yaml', 'application/vnd.kubernetes.protobuf')


def unsupported_media_type(types):
    """negotiation.NewUnsupportedMediaTypeError."""
    return ApiError(415, 'UnsupportedMediaType', 'the body of the request was in an unknown '
                    'format - accepted media types include: ' + ', '.join(types))


def success_status(kind, name, uid):
    details = {'name': name}
    if kind.group:
        details['group'] = kind.group
    details['kind'] = kind.resource
    details['uid'] = uid
    return {'kind': 'Status', 'apiVersion': 'v1', 'metadata': {}, 'status': 'Success',
            'details': details}


def served(kind, data):
    """An object as a single GET or a write answers it: kind and apiVersion first."""
    out = {'kind': kind.kind, 'apiVersion': kind.api_version}
    out.update(data)
    return out


def base_type(content_type):
    return (content_type or '').split(';', 1)[0].strip().lower()


class _Taken:
    """One of service_usage()'s sets: `in` reads the store (once), add() does not."""

    def __init__(self, scan, which):
        self._scan = scan
        self._which = which
        self._added = set()

    def __contains__(self, x):
        return x in self._added or x in self._scan()[self._which]

    def add(self, x):
        self._added.add(x)


class Registry:
    def __init__(self, store, service_cidr='10.96.0.0/12', node_port_range='30000-32767'):
        self.store = store
        self.service_cidr = ipaddress.ip_network(service_cidr, strict=False)
        lo, _, hi = node_port_range.partition('-')
        self.node_port_range = (int(lo), int(hi or lo))
        self.strategies = STRATEGY_OF

    # --- helpers (Store.lock held) ------------------------------------------------------------
    def service_usage(self, ns, name):
        """ClusterIPs and node ports of every stored Service but ns/name, as two sets that read
        the store only when first asked (`in`); add() records the caller's own without reading.
        The real allocators are bitmaps: an update that allocates nothing (a finalizer, a label)
        must not cost a pass over every Service, or the fake, not the client, is what a
        benchmark at 10,000 Services measures (perf/provider_bench.py)."""
        found = []

        def scan():
            if not found:
                ips, ports = set(), set()
                for obj in self.store.objects['services'].values():
                    if obj.ns == ns and obj.name == name:
                        continue
                    spec = obj.data.get('spec') or {}
                    ips.update(spec.get('clusterIPs') or [spec.get('clusterIP')])
                    ports.update(p.get('nodePort') for p in spec.get('ports') or [])
                    ports.add(spec.get('healthCheckNodePort'))
                for taken in (ips, ports):
                    taken.discard(None)
                ports.discard(0)
                found.extend((ips, ports))
            return found

        return _Taken(scan, 0), _Taken(scan, 1)

    @staticmethod
    def decode(kind, raw, content_type):
        """A POST or PUT body: JSON (YAML only as far as it is JSON), of this kind."""
        ct = base_type(content_type)
        if ct and ct not in BODY_TYPES and ct != '*/*':
            raise unsupported_media_type(BODY_TYPES)
        try:
            obj = json.loads(raw or b'null')
        except ValueError as e:
            raise bad_request('the object provided is unrecognized (must be of type %s): %s'
                              % (kind.kind, e))
        if not isinstance(obj, dict) or not isinstance(obj.get('metadata', {}), dict):
            raise bad_request('the object provided is unrecognized (must be of type %s): '
                              'not a JSON object' % kind.kind)
        check_type(kind, obj)
        obj.setdefault('metadata', {})
        try:
            STRATEGY_OF[kind.resource].normalize(obj)
        except DecodeError as e:
            raise bad_request('%s in version "%s" cannot be handled as a %s: %s' % (
                kind.kind, kind.version, kind.kind, e))
        return obj

    def _stored(self, resource, ns, name):
        obj = self.store.get(resource, ns, name)
        return None if obj is None else copy.deepcopy(obj.data)

    def _commit(self, resource, data):
        obj = self.store.commit(resource, data)
        self.store.cond.notify_all()
        return obj.data

    # --- create -------------------------------------------------------------------------------
    def create(self, resource, ns, obj, manager, managed=None):
        """POST (and the create branch of PUT and apply). Returns (201, served object)."""
        kind = KINDS[resource]
        st = self.strategies[resource]
        meta = obj['metadata']
        if kind.namespaced:
            if meta.get('namespace') and meta['namespace'] != ns:
                raise bad_request('the namespace of the provided object does not match the '
                                  'namespace sent on the request')
            meta['namespace'] = ns
        else:
            meta.pop('namespace', None)
        if not meta.get('name') and meta.get('generateName'):
            meta['name'] = generate_name(meta['generateName'])
        name = meta.get('name') or ''
        meta['uid'] = str(uuid.uuid4())
        meta['creationTimestamp'] = now_rfc3339()
        for k in ('deletionTimestamp', 'deletionGracePeriodSeconds', 'managedFields',
                  'selfLink'):
            meta.pop(k, None)
        st.defaults(obj)
        st.prepare_create(obj)
        errs = self.meta_errors(st, obj)
        if not errs:
            st.allocate(self, obj, None, '')
            errs = st.validate(obj)
        if errs:
            raise invalid(kind.group, kind.kind, name, errs)
        existing = self.store.get(resource, ns, name)
        if existing is not None:
            raise already_exists(kind, name,
                                 bool(existing.data['metadata'].get('deletionTimestamp')))
        if meta.get('resourceVersion'):
            raise ApiError(500, '', 'resourceVersion should not be set on objects to be created')
        if managed is not None:
            meta['managedFields'] = managed
        else:
            track_update({}, obj, manager, '', resource, kind.api_version)
        return 201, served(kind, self._commit(resource, obj))

    @staticmethod
    def meta_errors(st, obj):
        meta = obj['metadata']
        name = meta.get('name') or ''
        if not name:
            return [FieldError('required', 'metadata.name',
                               detail='name or generateName is required')]
        errs = [FieldError('invalid', 'metadata.name', name, m) for m in st.name_errors(name)]
        for i, f in enumerate(meta.get('finalizers') or []):
            errs += [FieldError('invalid', 'metadata.finalizers[%d]' % i, f, m)
                     for m in qualified_name_errors(f)]
        return errs

    # --- update -------------------------------------------------------------------------------
    def put(self, resource, ns, name, sub, obj, manager):
        """PUT on an object or its /status."""
        kind = KINDS[resource]
        st = self.strategies[resource]
        meta = obj['metadata']
        if meta.get('name', '') != name:
            raise bad_request('the name of the object (%s) does not match the name on the URL '
                              '(%s)' % (meta.get('name', ''), name))
        if kind.namespaced and meta.get('namespace') and meta['namespace'] != ns:
            raise bad_request('the namespace of the object (%s) does not match the namespace on '
                              'the request (%s)' % (meta['namespace'], ns))
        old = self._stored(resource, ns, name)
        if old is None:
            if sub or not kind.create_on_update:
                raise not_found(kind, name)
            meta.pop('resourceVersion', None)
            return self.create(resource, ns, obj, manager)
        uid = meta.get('uid')
        if uid and uid != old['metadata'].get('uid'):
            raise conflict(kind, name, 'Precondition failed: UID in precondition: %s, UID in '
                           'object meta: %s' % (uid, old['metadata'].get('uid')))
        st.defaults(obj)
        return self.update(resource, ns, name, sub, obj, old, manager)

    def update(self, resource, ns, name, sub, new, old, manager, managed_done=False):
        """The generic Store.Update from the resourceVersion check on (k8s-api.md §4, §6.1)."""
        kind = KINDS[resource]
        st = self.strategies[resource]
        meta, ometa = new.setdefault('metadata', {}), old['metadata']
        rv = meta.get('resourceVersion') or ''
        if not rv:
            if not kind.unconditional_update:
                raise invalid(kind.group, kind.resource, name, [FieldError(
                    'invalid', 'metadata.resourceVersion', Raw('0x0'),
                    'must be specified for an update')])
        elif rv != ometa.get('resourceVersion'):
            raise conflict(kind, name)
        meta['resourceVersion'] = ometa['resourceVersion']
        if kind.namespaced:
            meta['namespace'] = ns
        # rest.BeforeUpdate
        if 'generation' in ometa:
            meta['generation'] = ometa['generation']
        else:
            meta.pop('generation', None)
        st.prepare_update(new, old, sub)
        meta.setdefault('uid', ometa.get('uid'))
        meta['creationTimestamp'] = ometa.get('creationTimestamp')
        if ometa.get('deletionTimestamp'):
            meta['deletionTimestamp'] = ometa['deletionTimestamp']
        if 'deletionGracePeriodSeconds' in ometa and meta.get('deletionGracePeriodSeconds') is None:
            meta['deletionGracePeriodSeconds'] = ometa['deletionGracePeriodSeconds']
        if not managed_done:
            if 'managedFields' in ometa:
                meta['managedFields'] = ometa['managedFields']
            else:
                meta.pop('managedFields', None)
        errs = self.meta_update_errors(st, new, old)
        if not errs:
            st.allocate(self, new, old, sub)
            errs = st.validate_update(new, old, sub)
        if errs:
            raise invalid(kind.group, kind.kind, name, errs)
        if (not meta.get('finalizers') and ometa.get('deletionTimestamp') and
                not ometa.get('deletionGracePeriodSeconds')):
            # ShouldDeleteDuringUpdate: the last finalizer is gone.
            self.store.delete(resource, ns, name)
            self.store.cond.notify_all()
            return 200, served(kind, new)
        if without_managed(new) == without_managed(old):
            if not managed_done or meta.get('managedFields') == ometa.get('managedFields'):
                return 200, served(kind, old)  # no-op: not written
        if not managed_done:
            track_update(old, new, manager, sub, resource, kind.api_version)
        return 200, served(kind, self._commit(resource, new))

    @staticmethod
    def meta_update_errors(st, new, old):
        """ValidateObjectMetaUpdate, the parts a client can trip."""
        meta, ometa = new['metadata'], old['metadata']
        errs = []
        for f in ('name', 'uid'):
            if meta.get(f) != ometa.get(f):
                errs.append(FieldError('invalid', 'metadata.' + f, meta.get(f),
                                       'field is immutable'))
        if meta.get('deletionTimestamp') != ometa.get('deletionTimestamp'):
            errs.append(FieldError('invalid', 'metadata.deletionTimestamp',
                                   meta.get('deletionTimestamp'), 'field is immutable'))
        if ometa.get('deletionTimestamp'):
            extra = sorted(set(meta.get('finalizers') or []) - set(ometa.get('finalizers') or []))
            if extra:
                errs.append(FieldError('forbidden', 'metadata.finalizers', detail=(
                    'no new finalizers can be added if the object is being deleted, found new '
                    'finalizers []string{%s}' % ', '.join(json.dumps(f) for f in extra))))
        for i, f in enumerate(meta.get('finalizers') or []):
            errs += [FieldError('invalid', 'metadata.finalizers[%d]' % i, f, m)
                     for m in qualified_name_errors(f)]
        return errs

    # --- patch --------------------------------------------------------------------------------
    def patch(self, resource, ns, name, sub, content_type, raw, query, manager):
        kind = KINDS[resource]
        st = self.strategies[resource]
        ct = base_type(content_type)
        if ct not in PATCH_TYPES or ct == 'application/apply-patch+cbor':
            raise unsupported_media_type(PATCH_TYPES)
        is_apply = ct == 'application/apply-patch+yaml'
        errs = []
        if is_apply and not query.get('fieldManager'):
            errs.append(FieldError('required', 'fieldManager',
                                   detail='is required for apply patch'))
        if not is_apply and 'force' in query:
            errs.append(FieldError('forbidden', 'force',
                                   detail='may not be specified for non-apply patch'))
        if errs:
            raise invalid('meta.k8s.io', 'PatchOptions', '', errs)
        try:
            body = json.loads(raw or b'null')
        except ValueError as e:
            raise bad_request(('error decoding patch: %s' if is_apply else '%s') % e)
        old = self._stored(resource, ns, name)
        if is_apply:
            return self.apply(kind, st, ns, name, sub, body, old, query)
        if old is None:
            raise not_found(kind, name)
        doc = served(kind, old)
        try:
            if ct == 'application/merge-patch+json':
                if not isinstance(body, dict):
                    raise PatchError(400, 'json: cannot unmarshal %s into Go value of type '
                                     'map[string]interface {}' % type(body).__name__)
                new = merge_patch(doc, body)
            elif ct == 'application/json-patch+json':
                new = json_patch(doc, body)
            else:
                new = strategic_merge(doc, body, resource)
        except PatchError as e:
            if e.code == 400:
                raise bad_request(e.message)
            raise ApiError(422, 'Invalid', 'the server rejected our request due to an error in '
                           'our request', details={'causes': [{'message': e.message}]})
        if not isinstance(new, dict) or not isinstance(new.get('metadata'), dict):
            raise bad_request('the patched object is not a %s' % kind.kind)
        check_type(kind, new)
        self.normalize_patched(st, new)
        st.defaults(new)
        return self.update(resource, ns, name, sub, new, old, manager)

    def apply(self, kind, st, ns, name, sub, config, old, query):
        """Server-side apply, simplified (fake_apiserver_patch.py)."""
        if not isinstance(config, dict):
            raise bad_request('error decoding patch: the applied configuration is not an object')
        if config.get('apiVersion') != kind.api_version:
            raise bad_request('Incorrect version specified in apply patch. Specified patch '
                              'version: %s, expected: %s' % (config.get('apiVersion', ''),
                                                             kind.api_version))
        if config.get('kind') != kind.kind:
            raise bad_request('Incorrect kind specified in apply patch. Specified patch kind: '
                              '%s, expected: %s' % (config.get('kind', ''), kind.kind))
        meta = config.get('metadata')
        if not isinstance(meta, dict) or meta.get('name') != name:
            raise bad_request('the name of the object (%s) does not match the name on the URL '
                              '(%s)' % ((meta or {}).get('name', ''), name))
        if kind.namespaced and meta.get('namespace') not in (None, ns):
            raise bad_request('the namespace of the object (%s) does not match the namespace on '
                              'the request (%s)' % (meta['namespace'], ns))
        config = {k: v for k, v in config.items() if k not in ('apiVersion', 'kind')}
        if kind.status:  # GetResetFields: /status owns status, the main endpoint the rest
            config.pop('spec' if sub == 'status' else 'status', None)
        manager = query['fieldManager']
        force = query.get('force') in ('true', '1')
        if old is None and sub:
            raise not_found(kind, name)
        try:
            merged = apply(old or {}, config, manager, force, sub, kind.resource,
                           kind.api_version)
        except ApplyConflict as c:
            raise apply_conflict(c.conflicts, kind.version)
        self.normalize_patched(st, merged)
        st.defaults(merged)
        if old is None:
            managed = merged['metadata'].get('managedFields')
            merged['metadata'].pop('resourceVersion', None)
            return self.create(kind.resource, ns, merged, manager, managed=managed)
        return self.update(kind.resource, ns, name, sub, merged, old, manager, managed_done=True)

    @staticmethod
    def normalize_patched(st, obj):
        """A patch result the decoder refuses: handlers/patch.go answers 422 on field "patch"."""
        try:
            st.normalize(obj)
        except DecodeError as e:
            raise invalid('', '', '', [FieldError('invalid', 'patch', json.dumps(
                obj, separators=(',', ':')), str(e))])

    # --- delete -------------------------------------------------------------------------------
    def delete(self, resource, ns, name, raw):
        kind = KINDS[resource]
        try:
            opts = json.loads(raw) if raw else {}
        except ValueError as e:
            raise bad_request('invalid DeleteOptions: %s' % e)
        old = self._stored(resource, ns, name)
        if old is None:
            raise not_found(kind, name)
        meta = old['metadata']
        pre = (opts or {}).get('preconditions') or {}
        for field, label, tail in (('uid', 'UID', 'deleted and then recreated'),
                                   ('resourceVersion', 'ResourceVersion', 'modified')):
            if pre.get(field) is not None and pre[field] != meta.get(field):
                err = conflict(kind, name, 'the %s in the precondition (%s) does not match the %s '
                               'in record (%s). The object might have been %s' % (
                                   label, pre[field], label, meta.get(field), tail),
                               qualified=kind.qualified_kind)
                err.details['kind'] = kind.kind
                raise err
        if meta.get('finalizers'):
            if meta.get('deletionTimestamp') and meta.get('deletionGracePeriodSeconds') == 0:
                return 200, served(kind, old)  # already being deleted: nothing to write
            meta.setdefault('deletionTimestamp', now_rfc3339())
            meta['deletionGracePeriodSeconds'] = 0
            return 200, served(kind, self._commit(resource, old))
        self.store.delete(resource, ns, name)
        self.store.cond.notify_all()
        if kind.return_deleted:
            return 200, served(kind, old)
        return 200, success_status(kind, name, meta.get('uid'))


STRATEGY_OF = {'services': ServiceStrategy('services'),
               'endpointslices': EndpointSliceStrategy('endpointslices'),
               'nodes': NodeStrategy('nodes'), 'leases': LeaseStrategy('leases'),
               'events': EventStrategy('events')}


def check_type(kind, obj):
    """The decoded kind/apiVersion, when given, must be this endpoint's."""
    if obj.get('kind') not in (None, '', kind.kind):
        raise bad_request('the object provided is unrecognized (must be of type %s): kind %s'
                          % (kind.kind, obj['kind']))
    if obj.get('apiVersion') not in (None, '', kind.api_version):
        raise bad_request('the API version in the data (%s) does not match the expected API '
                          'version (%s)' % (obj['apiVersion'], kind.api_version))
    obj.pop('kind', None)
    obj.pop('apiVersion', None)


def without_managed(obj):
    meta = {k: v for k, v in obj.get('metadata', {}).items() if k != 'managedFields'}
    return dict(obj, metadata=meta)


def apply_conflict(conflicts, version):
    """409 as the field manager reports apply conflicts."""
    by_manager = {}
    for manager, path in conflicts:
        by_manager.setdefault(manager, []).append(path)
    n = len(conflicts)
    if n == 1:
        (manager, path), = conflicts
        text = 'conflict with "%s" using %s: %s' % (manager, version, path)
    else:
        text = '\n'.join('conflicts with "%s" using %s:\n%s' % (
            m, version, '\n'.join('- ' + p for p in paths)) for m, paths in by_manager.items())
    causes = [{'reason': 'FieldManagerConflict',
               'message': 'conflict with "%s" using %s' % (m, version), 'field': p}
              for m, p in conflicts]
    return ApiError(409, 'Conflict', 'Apply failed with %d conflict%s: %s' % (
        n, '' if n == 1 else 's', text), details={'causes': causes})
