"""The fake kube-apiserver's patch mechanics (see fake_apiserver.py): the four PATCH content
types a client can send (k8s-api.md §6.1, apimachinery/pkg/types/patch.go) and the field
ownership that server-side apply keeps in metadata.managedFields. Pure functions on decoded
JSON; the registry (fake_apiserver_registry.py) turns their errors into Status replies.

* application/merge-patch+json, RFC 7386: maps merge, null deletes, lists are replaced.
* application/json-patch+json, RFC 6902: add, remove, replace, move, copy, test.
* application/strategic-merge-patch+json: maps merge; a list merges by its patchMergeKey where
  the Go type declares one (LISTS below: ports by port, conditions by type, finalizers as a set,
  ownerReferences by uid), every other list is atomic (status.loadBalancer.ingress is
  +listType=atomic, so it is always replaced). Directives: $patch replace|delete on a map or a
  keyed list item, $deleteFromPrimitiveList/<list>, $setElementOrder/<list>, $retainKeys.
* application/apply-patch+yaml, server-side apply, simplified: the body must be JSON (JSON is
  YAML; the standard library has no YAML parser). The applied configuration is merged into the
  live object like a strategic merge (keyed lists by their keys, sets by value, other lists
  atomic); ownership is tracked per leaf field and per (manager, operation, subresource) in
  metadata.managedFields (fieldsType FieldsV1: f:<field>, k:{<keys>} for keyed list items with
  "." for the item itself, v:<value> for set items). Applying a field another manager owns with a
  different value is a 409 conflict unless force=true, which takes it over; a field the same
  manager applied before and leaves out now is removed unless another manager also owns it.
  Non-apply writes (POST, PUT, the other PATCHes) record the fields they changed under the
  manager's "Update" entry and take them from everyone else, as the real field manager does.
  Not modelled: the structured-merge-diff schema beyond LISTS, apply of managedFields itself,
  resetting managedFields through a PUT (the stored entries are kept)."""

import copy
import json

from fake_apiserver_model import now_rfc3339

# List merge strategies by (resource, path); every resource also gets the metadata ones.
# A tuple names the merge keys (SMP uses the first, as patchMergeKey; apply uses all, as
# listMapKeys); 'set' merges scalars by value.
_META_LISTS = {('metadata', 'finalizers'): 'set', ('metadata', 'ownerReferences'): ('uid',)}
LISTS = {
    'services': {('spec', 'ports'): ('port', 'protocol'), ('status', 'conditions'): ('type',)},
    'nodes': {('status', 'conditions'): ('type',), ('status', 'addresses'): ('type',),
              ('spec', 'podCIDRs'): 'set'},
    'endpointslices': {}, 'leases': {}, 'events': {},
}


def list_strategy(resource, path):
    return _META_LISTS.get(path) or LISTS.get(resource, {}).get(path)


class PatchError(Exception):
    """A patch that cannot be applied. `code` 400: malformed; 422: a JSON patch operation
    failed (handlers/patch.go answers those with NewGenericServerResponse(422))."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


# ---------------------------------------------------------------------------------------------
# RFC 7386

def merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


# ---------------------------------------------------------------------------------------------
# RFC 6902 (messages in the style of github.com/evanphx/json-patch, which the apiserver uses)

def _pointer(path):
    if path == '':
        return []
    if not path.startswith('/'):
        raise PatchError(422, 'JSON pointer must be empty or start with a "/": %s' % path)
    return [p.replace('~1', '/').replace('~0', '~') for p in path[1:].split('/')]


def _parent(doc, parts, op, path):
    cur = doc
    for p in parts[:-1]:
        if isinstance(cur, dict) and p in cur:
            cur = cur[p]
        elif isinstance(cur, list) and p.isdigit() and int(p) < len(cur):
            cur = cur[int(p)]
        else:
            raise PatchError(422, '%s operation does not apply: doc is missing path: "%s": '
                             'missing value' % (op, path))
    return cur


def _get(doc, path, op):
    parts = _pointer(path)
    if not parts:
        return doc
    parent = _parent(doc, parts, op, path)
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent[int(last)]
    raise PatchError(422, '%s operation does not apply: doc is missing key: %s: missing value'
                     % (op, path))


def _remove(doc, path, op):
    value = _get(doc, path, op)
    parts = _pointer(path)
    parent = _parent(doc, parts, op, path)
    if isinstance(parent, dict):
        del parent[parts[-1]]
    else:
        del parent[int(parts[-1])]
    return value


def _add(doc, path, value, op):
    parts = _pointer(path)
    if not parts:
        return value
    parent = _parent(doc, parts, op, path)
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == '-':
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), value)
        else:
            raise PatchError(422, '%s operation does not apply: doc is missing path: "%s": '
                             'missing value' % (op, path))
    else:
        raise PatchError(422, '%s operation does not apply: doc is missing path: "%s": '
                         'missing value' % (op, path))
    return doc


def json_patch(doc, ops):
    if not isinstance(ops, list) or not all(isinstance(o, dict) for o in ops):
        raise PatchError(400, 'json: cannot unmarshal %s into Go value of type jsonpatch.Patch'
                         % ('object' if isinstance(ops, dict) else 'value'))
    doc = copy.deepcopy(doc)
    for o in ops:
        op, path = o.get('op'), o.get('path')
        if not isinstance(path, str):
            raise PatchError(422, 'operation missing path: %s' % json.dumps(o))
        if op == 'add':
            doc = _add(doc, path, copy.deepcopy(o.get('value')), op)
        elif op == 'remove':
            _remove(doc, path, op)
        elif op == 'replace':
            _get(doc, path, op)
            _remove(doc, path, op)
            doc = _add(doc, path, copy.deepcopy(o.get('value')), op)
        elif op in ('move', 'copy'):
            value = _get(doc, o.get('from', ''), op)
            if op == 'move':
                _remove(doc, o['from'], op)
            doc = _add(doc, path, copy.deepcopy(value), op)
        elif op == 'test':
            try:
                have = _get(doc, path, op)
            except PatchError:
                have = None
            if have != o.get('value'):
                raise PatchError(422, 'testing value %s failed: test failed' % path)
        else:
            raise PatchError(422, 'Unexpected kind: %s' % op)
    return doc


# ---------------------------------------------------------------------------------------------
# Strategic merge patch (apimachinery/pkg/util/strategicpatch, the directives it understands)

DELETE = object()


def _clean(v):
    """A patch value stored as is: directives removed."""
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()
                if not k.startswith('$') and x is not None}
    if isinstance(v, list):
        return [_clean(x) for x in v if not (isinstance(x, dict) and x.get('$patch'))]
    return v


def strategic_merge(orig, patch, resource, path=()):
    if not isinstance(patch, dict):
        raise PatchError(400, 'strategic merge patch: the patch must be a JSON object')
    directive = patch.get('$patch')
    if directive == 'delete':
        return DELETE
    if directive == 'replace':
        return _clean(patch)
    if directive is not None:
        raise PatchError(400, 'Unknown patch type: %s' % directive)
    out = dict(orig) if isinstance(orig, dict) else {}
    if isinstance(patch.get('$retainKeys'), list):
        keep = set(patch['$retainKeys'])
        out = {k: v for k, v in out.items() if k in keep}
    for k, v in patch.items():
        if k.startswith('$'):
            continue
        sub = path + (k,)
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict):
            r = strategic_merge(out.get(k), v, resource, sub)
            if r is DELETE:
                out.pop(k, None)
            else:
                out[k] = r
        elif isinstance(v, list):
            out[k] = _merge_list(out.get(k), v, list_strategy(resource, sub), resource, sub)
        else:
            out[k] = v
    for k, v in patch.items():
        if k.startswith('$deleteFromPrimitiveList/'):
            name = k.split('/', 1)[1]
            if isinstance(out.get(name), list):
                out[name] = [x for x in out[name] if x not in v]
    for k, v in patch.items():
        if k.startswith('$setElementOrder/'):
            name = k.split('/', 1)[1]
            if isinstance(out.get(name), list) and isinstance(v, list):
                out[name] = _reorder(out[name], v, list_strategy(resource, path + (name,)))
    return out


# A list-map key the item leaves out takes the schema's default (ports' protocol is TCP), as the
# structured-merge-diff schema declares it; without this an applied port without a protocol
# would be a second item.
KEY_DEFAULTS = {'protocol': 'TCP'}


def _key_values(item, keys):
    return {k: item.get(k, KEY_DEFAULTS.get(k)) for k in keys
            if k in item or k in KEY_DEFAULTS}


def _item_key(item, keys):
    if not isinstance(item, dict):
        return None
    values = _key_values(item, keys)
    return tuple(values.get(k) for k in keys)


def _reorder(items, order, strategy):
    if isinstance(strategy, tuple):
        rank = {_item_key(o, strategy[:1]): i for i, o in enumerate(order)}
        key = (lambda x: rank.get(_item_key(x, strategy[:1]), len(rank)))
    else:
        rank = {json.dumps(o): i for i, o in enumerate(order)}
        key = (lambda x: rank.get(json.dumps(x), len(rank)))
    return sorted(items, key=key)  # stable: items not named keep their order, at the end


def _merge_list(orig, patch, strategy, resource, path, keys_for=None):
    orig = orig if isinstance(orig, list) else []
    if strategy is None:
        return _clean(patch)
    if any(isinstance(x, dict) and x.get('$patch') == 'replace' for x in patch):
        return _clean([x for x in patch if not (isinstance(x, dict) and x.get('$patch'))])
    if strategy == 'set':
        return orig + [x for x in patch if x not in orig]
    keys = strategy if keys_for == 'apply' else strategy[:1]
    out = list(orig)
    for item in patch:
        if not isinstance(item, dict):
            raise PatchError(400, 'strategic merge patch: %s items must be objects' %
                             '.'.join(path))
        k = _item_key(item, keys)
        at = next((i for i, o in enumerate(out) if _item_key(o, keys) == k), None)
        if item.get('$patch') == 'delete':
            if at is not None:
                del out[at]
        elif at is None:
            out.append(_clean(item))
        else:
            merged = strategic_merge(out[at], item, resource, path)
            out[at] = merged
    return out


# ---------------------------------------------------------------------------------------------
# Field ownership (managedFields) and server-side apply

_UNOWNED = {('f:apiVersion',), ('f:kind',)} | {
    ('f:metadata', 'f:' + f) for f in ('name', 'namespace', 'uid', 'resourceVersion',
                                       'generation', 'creationTimestamp', 'deletionTimestamp',
                                       'deletionGracePeriodSeconds', 'managedFields',
                                       'selfLink', 'generateName')}
_MISSING = object()
_OMITTED_WHEN_EMPTY = {'labels', 'annotations', 'selector', 'nodeSelector'}


def flatten(obj, resource):
    """Leaf path -> value, paths in FieldsV1 element notation."""
    out = {}

    def walk(v, path, names):
        if path in _UNOWNED:
            return
        if isinstance(v, dict) and v:
            for k, x in v.items():
                walk(x, path + ('f:' + k,), names + (k,))
        elif isinstance(v, list) and names and list_strategy(resource, names):
            strategy = list_strategy(resource, names)
            for item in v:
                if strategy == 'set' or not isinstance(item, dict):
                    out[path + ('v:' + json.dumps(item, separators=(',', ':')),)] = item
                else:
                    key = json.dumps(_key_values(item, strategy), separators=(',', ':'))
                    item_path = path + ('k:' + key,)
                    out[item_path + ('.',)] = True
                    walk(item, item_path, names)
        elif path:
            out[path] = v

    walk(obj, (), ())
    return out


def _entries(meta):
    """managedFields -> {(manager, operation, subresource): set of paths}, in order."""
    out = {}
    for e in meta.get('managedFields') or []:
        key = (e.get('manager', ''), e.get('operation', 'Update'), e.get('subresource', ''))
        paths = out.setdefault(key, set())

        def walk(node, path):
            for k, v in (node or {}).items():
                if v:
                    walk(v, path + (k,))
                else:
                    paths.add(path + (k,))

        walk(e.get('fieldsV1'), ())
    return out


def _render(entries, api_version, old_meta):
    """{key: paths} -> managedFields; an entry whose paths did not change keeps its time."""
    old = {(e.get('manager', ''), e.get('operation', 'Update'), e.get('subresource', '')): e
           for e in old_meta.get('managedFields') or []}
    old_sets = _entries(old_meta)
    out = []
    for (manager, op, sub), paths in entries.items():
        if not paths:
            continue
        if old_sets.get((manager, op, sub)) == paths:
            out.append(old[(manager, op, sub)])
            continue
        tree = {}
        for p in sorted(paths):
            node = tree
            for el in p:
                node = node.setdefault(el, {})
        e = {'manager': manager, 'operation': op, 'apiVersion': api_version,
             'time': now_rfc3339(), 'fieldsType': 'FieldsV1', 'fieldsV1': tree}
        if sub:
            e['subresource'] = sub
        out.append(e)
    return out


def track_update(old, new, manager, sub, resource, api_version):
    """A non-apply write by `manager`: it owns what it changed, nobody keeps what was removed.
    Sets new.metadata.managedFields (old may be {} for a create)."""
    before, after = flatten(old, resource), flatten(new, resource)
    changed = {p for p, v in after.items() if before.get(p, _MISSING) != v}
    gone = set(before) - set(after)
    old_meta = old.get('metadata') or {}
    entries = _entries(old_meta)
    for paths in entries.values():
        paths -= changed | gone
    if changed:
        entries.setdefault((manager, 'Update', sub), set()).update(changed)
    fields = _render(entries, api_version, old_meta)
    if fields:
        new['metadata']['managedFields'] = fields
    else:
        new['metadata'].pop('managedFields', None)


class ApplyConflict(Exception):
    def __init__(self, conflicts):
        super().__init__('conflict')
        self.conflicts = conflicts  # [(manager, path string)]


def path_string(path):
    """A FieldsV1 path as SSA prints it in conflicts: .spec.type, .status.conditions[type="X"]."""
    out = ''
    for el in path:
        if el.startswith('f:'):
            out += '.' + el[2:]
        elif el.startswith('k:'):
            keys = json.loads(el[2:])
            out += '[%s]' % ','.join('%s=%s' % (k, json.dumps(v)) for k, v in keys.items())
        elif el.startswith('v:'):
            out += '[=%s]' % el[2:]
    return out


def apply(live, config, manager, force, sub, resource, api_version):
    """Server-side apply of `config` (the decoded body, reset fields already removed) onto
    `live` ({} when creating). Returns the merged object with its managedFields; raises
    ApplyConflict."""
    me = (manager, 'Apply', sub)
    live_meta = live.get('metadata') or {}
    entries = _entries(live_meta)
    applied = flatten(config, resource)
    current = flatten(live, resource)
    conflicts = []
    taken = set()
    for p, v in applied.items():
        if p in current and current[p] != v:
            for key, paths in entries.items():
                if key != me and p in paths:
                    conflicts.append((key[0], p))
                    taken.add(p)
    if conflicts and not force:
        raise ApplyConflict([(m, path_string(p)) for m, p in conflicts])
    merged = _apply_merge(live, config, resource, ())
    previous = entries.get(me, set())
    others = set().union(*[paths for key, paths in entries.items() if key != me])
    dropped = [p for p in previous - set(applied) if p not in others]
    # Whole keyed items first (their key fields must still be there to find them).
    for p in sorted(dropped, key=lambda p: (p[-1] != '.', -len(p))):
        _remove_path(merged, p, others)
    for key, paths in entries.items():
        if key != me:
            paths -= taken
    entries[me] = set(applied)
    merged.setdefault('metadata', {})
    fields = _render(entries, api_version, live_meta)
    if fields:
        merged['metadata']['managedFields'] = fields
    return merged


def _apply_merge(live, config, resource, path):
    out = dict(live) if isinstance(live, dict) else {}
    for k, v in config.items():
        sub = path + (k,)
        if isinstance(v, dict):
            out[k] = _apply_merge(out.get(k), v, resource, sub)
        elif isinstance(v, list):
            out[k] = _merge_list(out.get(k), v, list_strategy(resource, sub), resource, sub,
                                 keys_for='apply')
        else:
            out[k] = v
    return out


def _remove_path(obj, path, others):
    """Remove one leaf (or, for a k:...'.' marker, a whole keyed item nobody else owns a field
    of) from the merged object."""
    node = obj
    for i, el in enumerate(path[:-1]):
        if el.startswith('f:') and isinstance(node, dict):
            node = node.get(el[2:])
        elif el.startswith('k:') and isinstance(node, list):
            keys = json.loads(el[2:])
            match = [x for x in node if isinstance(x, dict) and
                     all(x.get(k) == v for k, v in keys.items())]
            if not match:
                return
            if path[-1] == '.' and i == len(path) - 2:
                if not any(o[:i + 1] == path[:i + 1] for o in others):
                    node.remove(match[0])
                return
            node = match[0]
        else:
            return
        if node is None:
            return
    last = path[-1]
    if len(path) > 1 and path[-2].startswith('k:') and last[2:] in json.loads(path[-2][2:]):
        return  # a key field stays while its item does
    if last.startswith('f:') and isinstance(node, dict):
        node.pop(last[2:], None)
        if not node and len(path) > 1 and path[-2][2:] in _OMITTED_WHEN_EMPTY:
            _remove_path(obj, path[:-1], others)  # an empty Go map with omitempty is not sent
    elif last.startswith('v:') and isinstance(node, list):
        value = json.loads(last[2:])
        if value in node:
            node.remove(value)
