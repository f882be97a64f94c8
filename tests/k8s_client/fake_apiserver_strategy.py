"""The fake kube-apiserver's per-kind write strategies (see fake_apiserver.py): what the real
apiserver does to an object between decoding it and storing it. Defaulting (SetDefaults_*,
applied to the decoded body, or to a patch's result), PrepareForCreate/PrepareForUpdate (which
fields the main endpoint and the /status subresource may change), validation (422 Invalid with
field causes) and the REST layer's allocation hook, for EndpointSlices, Nodes, Leases and Events
(k8s-api.md §9, §12); the Service strategy is in fake_apiserver_service.py. Only what an LB
provider, a leader elector and an event recorder can observe is modelled; the classes say where
they simplify.

Sources: pkg/registry/{core/node,coordination/lease,discovery/endpointslice}/strategy.go,
pkg/apis/core/validation/events.go, pkg/apis/coordination/validation, pkg/apis/discovery/
validation, apimachinery util/validation (names) and util/validation/field (error texts)."""

import ipaddress
import json
import random
import re
from datetime import datetime, timezone

from fake_apiserver_model import KINDS, ApiError


# ---------------------------------------------------------------------------------------------
# Field errors (apimachinery/pkg/util/validation/field/errors.go)

class Raw(str):
    """A bad value printed as is (Go prints a uint64 0 as 0x0)."""


class FieldError:
    TYPES = {'invalid': ('FieldValueInvalid', 'Invalid value'),
             'required': ('FieldValueRequired', 'Required value'),
             'forbidden': ('FieldValueForbidden', 'Forbidden'),
             'not_supported': ('FieldValueNotSupported', 'Unsupported value'),
             'duplicate': ('FieldValueDuplicate', 'Duplicate value')}

    def __init__(self, type_, field, value=None, detail=''):
        self.type = type_
        self.field = field
        self.value = value
        self.detail = detail

    def body(self):
        """Error.ErrorBody: the type, the bad value for value-carrying types, the detail."""
        text = self.TYPES[self.type][1]
        if self.type in ('invalid', 'not_supported', 'duplicate'):
            text += ': ' + go_value(self.value)
        return text + (': ' + self.detail if self.detail else '')

    def __str__(self):
        return '%s: %s' % (self.field, self.body())

    def cause(self):
        return {'reason': self.TYPES[self.type][0], 'message': self.body(), 'field': self.field}


def go_value(v):
    if isinstance(v, Raw):
        return str(v)
    if v is None:
        return '"null"'
    if isinstance(v, bool):
        return 'true' if v else 'false'
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return '[]string{%s}' % ', '.join(json.dumps(x) for x in v)
    return json.dumps(v, separators=(',', ':'))


def invalid(group, kind_name, name, errors):
    """errors.NewInvalid: `Service "x" is invalid: <one error>` or `...: [<e1>, <e2>]`, with
    details.causes carrying the field paths (k8s-api.md §4)."""
    texts = []
    for e in errors:
        if str(e) not in texts:
            texts.append(str(e))
    qualified = kind_name + ('.' + group if group else '')
    agg = texts[0] if len(texts) == 1 else '[%s]' % ', '.join(texts)
    details = {'name': name} if name else {}  # StatusDetails fields are omitempty
    if group:
        details['group'] = group
    if kind_name:
        details['kind'] = kind_name
    details['causes'] = [e.cause() for e in errors]
    return ApiError(422, 'Invalid', '%s "%s" is invalid: %s' % (qualified, name, agg),
                    details=details)


def not_supported(field, value, supported):
    return FieldError('not_supported', field, value,
                      'supported values: ' + ', '.join('"%s"' % s for s in supported))


# ---------------------------------------------------------------------------------------------
# Names, IPs, times

_SUBDOMAIN = re.compile(r'^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')
_LABEL_1035 = re.compile(r'^[a-z]([-a-z0-9]*[a-z0-9])?$')
_QUALIFIED = re.compile(r'^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$')
REASON = re.compile(r'^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$')
MSG_SUBDOMAIN = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                 "characters, '-' or '.', and must start and end with an alphanumeric character "
                 "(e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?"
                 "(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
MSG_1035 = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start "
            "with an alphabetic character, and end with an alphanumeric character (e.g. "
            "'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
MSG_QUALIFIED = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must "
                 "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
                 "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?"
                 "[A-Za-z0-9]')")
MSG_IP = 'must be a valid IP address (e.g. 10.9.8.7 or 2001:db8::ffff)'


def subdomain_errors(v):
    if len(v) > 253:
        return ['must be no more than 253 characters']
    return [] if _SUBDOMAIN.match(v) else [MSG_SUBDOMAIN]


def label1035_errors(v):
    out = [] if _LABEL_1035.match(v) else [MSG_1035]
    return (['must be no more than 63 characters'] if len(v) > 63 else []) + out


def qualified_name_errors(v):
    """validation.IsQualifiedName: [DNS-subdomain prefix '/'] name part of at most 63 chars."""
    prefix, _, name = v.rpartition('/')
    out = []
    if '/' in v and (not prefix or subdomain_errors(prefix)):
        out.append('prefix part ' + MSG_SUBDOMAIN)
    if not name:
        out.append('name part must be non-empty')
    elif len(name) > 63:
        out.append('name part must be no more than 63 characters')
    elif not _QUALIFIED.match(name):
        out.append(MSG_QUALIFIED)
    return out


def parse_ip(v):
    try:
        return ipaddress.ip_address(v)
    except ValueError:
        return None


class DecodeError(Exception):
    """A field the Go decoder refuses (the registry answers 400 for a body, 422 for a patch)."""


_MICRO = re.compile(r'^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{6})(Z|[+-]\d\d:\d\d)$')


def micro_time(obj, keys):
    """metav1.MicroTime: decoded with time.Parse(RFC3339Micro), whose layout ".000000" takes
    exactly six fractional digits (so "2026-12-02T17:00:00Z" is refused, as by the real
    server), and re-encoded in UTC."""
    for k in keys:
        v = obj.get(k)
        if v is None:
            continue
        m = _MICRO.match(v) if isinstance(v, str) else None
        if m is None:
            rest = v[19:] if isinstance(v, str) and re.match(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:'
                                                             r'\d\d', v) else v
            raise DecodeError('parsing time %s as "2006-01-02T15:04:05.000000Z07:00": cannot '
                              'parse %s as ".000000"' % (json.dumps(v), json.dumps(rest)))
        zone = '+00:00' if m.group(3) == 'Z' else m.group(3)
        t = datetime.fromisoformat('%s.%s%s' % (m.group(1), m.group(2), zone))
        obj[k] = t.astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')


def generate_name(prefix):
    """names.SimpleNameGenerator: the prefix and 5 random characters."""
    return prefix + ''.join(random.choice('bcdfghjklmnpqrstvwxz2456789') for _ in range(5))


# ---------------------------------------------------------------------------------------------
# The generic strategy

class Strategy:
    """What every kind does; subclasses add their own. `sub` is '' or 'status'."""

    def __init__(self, resource):
        self.kind = KINDS[resource]

    def name_errors(self, name):
        return subdomain_errors(name)

    def defaults(self, obj):
        """SetDefaults_<Kind>, run on every decoded object (body or patch result)."""

    def normalize(self, obj):
        """Decode-time normalisation (MicroTime); may raise DecodeError."""

    def prepare_create(self, obj):
        """PrepareForCreate."""

    def prepare_update(self, new, old, sub):
        """PrepareForUpdate: the main endpoint keeps the stored status, /status the stored
        spec (every kind here with a status subresource does this)."""
        if self.kind.status:
            keep = 'spec' if sub == 'status' else 'status'
            if keep in old:
                new[keep] = old[keep]
            else:
                new.pop(keep, None)

    def validate(self, obj):
        return []

    def validate_update(self, new, old, sub):
        return self.validate(new)

    def allocate(self, registry, new, old, sub):
        """The REST layer's BeginCreate/BeginUpdate (Services: IPs and ports)."""


class EndpointSliceStrategy(Strategy):
    """registry/discovery/endpointslice/strategy.go: generation 1 on create, +1 when anything
    but metadata changes; addressType required, one of IPv4/IPv6/FQDN, immutable."""

    def prepare_create(self, obj):
        obj['metadata']['generation'] = 1

    def prepare_update(self, new, old, sub):
        strip = {k: v for k, v in new.items() if k != 'metadata'}
        if strip != {k: v for k, v in old.items() if k != 'metadata'}:
            new['metadata']['generation'] = old['metadata'].get('generation', 0) + 1

    def validate(self, obj):
        errs = []
        at = obj.get('addressType')
        if not at:
            errs.append(FieldError('required', 'addressType'))
        elif at not in ('IPv4', 'IPv6', 'FQDN'):
            errs.append(not_supported('addressType', at, ['FQDN', 'IPv4', 'IPv6']))
        for i, ep in enumerate(obj.get('endpoints') or []):
            addrs = ep.get('addresses') or []
            path = 'endpoints[%d].addresses' % i
            if not 1 <= len(addrs) <= 100:
                errs.append(FieldError('required', path, detail='must contain at least 1 address')
                            if not addrs else FieldError('invalid', path, len(addrs),
                                                         'must have at most 100 items'))
            for j, a in enumerate(addrs):
                ip = parse_ip(a) if at in ('IPv4', 'IPv6') else True
                if ip is None or (at == 'IPv4' and ip.version != 4) or (
                        at == 'IPv6' and ip is not True and ip.version != 6):
                    errs.append(FieldError('invalid', '%s[%d]' % (path, j), a,
                                           'must be a valid %s address' % at))
        return errs

    def validate_update(self, new, old, sub):
        errs = self.validate(new)
        if new.get('addressType') != old.get('addressType'):
            errs.append(FieldError('invalid', 'addressType', new.get('addressType'),
                                   'field is immutable'))
        return errs


class NodeStrategy(Strategy):
    """registry/core/node/strategy.go: a create may set everything, status included; the main
    endpoint then keeps status and /status keeps spec. Node validation is not modelled beyond
    the name."""


class LeaseStrategy(Strategy):
    """registry/coordination/lease/strategy.go and apis/coordination/validation: the MicroTime
    fields re-encoded; leaseDurationSeconds > 0, leaseTransitions >= 0 (k8s-api.md §12.1)."""

    def normalize(self, obj):
        micro_time(obj.get('spec') or {}, ('acquireTime', 'renewTime'))

    def validate(self, obj):
        spec = obj.get('spec') or {}
        errs = []
        d = spec.get('leaseDurationSeconds')
        if d is not None and (not isinstance(d, int) or d <= 0):
            errs.append(FieldError('invalid', 'spec.leaseDurationSeconds', d,
                                   'must be greater than 0'))
        t = spec.get('leaseTransitions')
        if t is not None and (not isinstance(t, int) or t < 0):
            errs.append(FieldError('invalid', 'spec.leaseTransitions', t,
                                   'must be greater than or equal to 0'))
        return errs


class EventStrategy(Strategy):
    """events.k8s.io/v1 Events (apis/core/validation/events.go ValidateEventCreate/Update, strict
    for this group version). Field paths in errors are the internal ones, as the real server
    prints them: note is `message`, regarding is `involvedObject`. Events are not expired (the
    real server keeps them --event-ttl, 1 h)."""

    IMMUTABLE = (('regarding', 'involvedObject'), ('reason', 'reason'), ('note', 'message'),
                 ('type', 'type'), ('eventTime', 'eventTime'), ('action', 'action'),
                 ('related', 'related'), ('reportingController', 'reportingController'),
                 ('reportingInstance', 'reportingInstance'))

    def normalize(self, obj):
        micro_time(obj, ('eventTime',))
        if isinstance(obj.get('series'), dict):
            micro_time(obj['series'], ('lastObservedTime',))

    def validate(self, obj):
        errs = []
        if not obj.get('eventTime'):
            errs.append(FieldError('required', 'eventTime'))
        if obj.get('type') not in ('Normal', 'Warning'):
            errs.append(FieldError('invalid', 'type', '',
                                   'has invalid value: %s' % (obj.get('type') or '')))
        rc = obj.get('reportingController') or ''
        if not rc:
            errs.append(FieldError('required', 'reportingController'))
        else:
            errs += [FieldError('invalid', 'reportingController', rc, m)
                     for m in qualified_name_errors(rc)]
        for key, limit in (('reportingInstance', 128), ('action', 128), ('reason', 128)):
            v = obj.get(key) or ''
            if not v:
                errs.append(FieldError('required', key))
            elif len(v) > limit:
                errs.append(FieldError('invalid', key, '',
                                       'can have at most %d characters' % limit))
        if len(obj.get('note') or '') > 1024:
            errs.append(FieldError('invalid', 'message', '', 'can have at most 1024 characters'))
        reg_ns = (obj.get('regarding') or {}).get('namespace')
        if reg_ns and reg_ns != obj['metadata'].get('namespace'):
            errs.append(FieldError('invalid', 'involvedObject.namespace', reg_ns,
                                   'does not match event.namespace'))
        return errs + self.series_errors(obj)

    @staticmethod
    def series_errors(obj):
        s = obj.get('series')
        if s is None:
            return []
        errs = []
        if not isinstance(s.get('count'), int) or s['count'] < 2:
            errs.append(FieldError('invalid', 'series.count', '', 'should be at least 2'))
        if not s.get('lastObservedTime'):
            errs.append(FieldError('invalid', 'series.lastObservedTime', '',
                                   'needs to be set'))
        return errs

    def validate_update(self, new, old, sub):
        errs = []
        for key, internal in self.IMMUTABLE:
            if new.get(key) != old.get(key):
                errs.append(FieldError('invalid', internal, new.get(key), 'field is immutable'))
        if new.get('series') != old.get('series'):
            errs += self.series_errors(new)
        return errs

