"""RBAC for the fake apiserver: who a bearer token is, and whether the RBAC authorizer lets that
user make a request (the real one: plugin/pkg/auth/authorizer/rbac/rbac.go and
pkg/apis/rbac/v1/evaluation_helpers.go; the request's attributes are the request-info rules of
k8s-api.md §1, computed by fake_apiserver_model.route and rbac_verb). Standard library only.

The policy (fake_apiserver.py --rbac FILE, JSON):
  {"users": {"TOKEN": "system:serviceaccount:NS:NAME" | "USER", ...},
   "objects": [ClusterRole, ClusterRoleBinding, Role, RoleBinding objects as JSON]}
A request bearing one of these tokens is made as that user and is authorized: a
ClusterRoleBinding grants its ClusterRole's rules everywhere, a RoleBinding grants its Role's
(or a ClusterRole's) rules in the binding's namespace only. Anything not granted is answered as
the real server does: 403 Forbidden, with the message the apiserver writes
(endpoints/handlers/responsewriters/errors.go forbiddenMessage). The --token user stays
all-powerful (the test's own requests, as a cluster admin's).

Simplified: no aggregated ClusterRoles (aggregationRule), no nonResourceURLs, no
impersonation, no escalation checks on writes of RBAC objects (the fake serves none); the
request's name for list and watch is not taken from a metadata.name field selector.
"""

from fake_apiserver_model import ApiError

SA_PREFIX = 'system:serviceaccount:'


def groups_of(user):
    """The groups the authenticator gives a user (service accounts get their two groups)."""
    groups = ['system:authenticated']
    if user.startswith(SA_PREFIX):
        ns = user[len(SA_PREFIX):].split(':', 1)[0]
        groups += ['system:serviceaccounts', 'system:serviceaccounts:' + ns]
    return groups


def subject_matches(subject, user, binding_ns):
    kind = subject.get('kind')
    if kind == 'ServiceAccount':
        # a RoleBinding's subject may leave the namespace out: the binding's own
        ns = subject.get('namespace') or binding_ns
        return user == '%s%s:%s' % (SA_PREFIX, ns, subject.get('name'))
    if kind == 'User':
        return user == subject.get('name')
    if kind == 'Group':
        return subject.get('name') in groups_of(user)
    return False


def rule_allows(rule, a):
    """evaluation_helpers.go RuleAllows for a resource request."""
    verbs = rule.get('verbs') or []
    if '*' not in verbs and a['verb'] not in verbs:
        return False
    groups = rule.get('apiGroups') or []
    if '*' not in groups and a['apiGroup'] not in groups:
        return False
    combined = a['resource'] + ('/' + a['subresource'] if a['subresource'] else '')
    resources = rule.get('resources') or []
    if not any(r == '*' or r == combined or
               (a['subresource'] and r == '*/' + a['subresource']) for r in resources):
        return False
    names = rule.get('resourceNames') or []
    return not names or a['name'] in names


class Rbac:
    def __init__(self, policy):
        self.users = dict(policy.get('users', {}))
        self.cluster_roles = {}
        self.roles = {}
        self.cluster_bindings = []
        self.bindings = []
        for o in policy.get('objects', []):
            kind, meta = o.get('kind'), o.get('metadata', {})
            if kind == 'ClusterRole':
                self.cluster_roles[meta['name']] = o
            elif kind == 'Role':
                self.roles[(meta.get('namespace', 'default'), meta['name'])] = o
            elif kind == 'ClusterRoleBinding':
                self.cluster_bindings.append(o)
            elif kind == 'RoleBinding':
                self.bindings.append(o)
            else:
                raise ValueError('an RBAC policy holds RBAC objects only, not %r' % kind)

    def user_of(self, token):
        return self.users.get(token)

    def rules_for(self, user, namespace):
        """Every rule granted to `user` for a request in `namespace` ('' = cluster scope)."""
        for b in self.cluster_bindings:
            ref = b.get('roleRef', {})
            if ref.get('kind') == 'ClusterRole' and any(
                    subject_matches(s, user, '') for s in b.get('subjects') or []):
                yield from (self.cluster_roles.get(ref.get('name')) or {}).get('rules') or []
        if not namespace:
            return
        for b in self.bindings:
            ns = b.get('metadata', {}).get('namespace', 'default')
            if ns != namespace or not any(subject_matches(s, user, ns)
                                          for s in b.get('subjects') or []):
                continue
            ref = b.get('roleRef', {})
            role = (self.cluster_roles.get(ref.get('name')) if ref.get('kind') == 'ClusterRole'
                    else self.roles.get((ns, ref.get('name'))))
            yield from (role or {}).get('rules') or []

    def allows(self, user, a):
        return any(rule_allows(r, a) for r in self.rules_for(user, a['namespace']))


def forbidden(user, a):
    """The 403 the apiserver answers (errors.NewForbidden with forbiddenMessage)."""
    resource = a['resource'] + ('/' + a['subresource'] if a['subresource'] else '')
    where = ('in the namespace "%s"' % a['namespace'] if a['namespace']
             else 'at the cluster scope')
    why = 'User "%s" cannot %s resource "%s" in API group "%s" %s' % (
        user, a['verb'], resource, a['apiGroup'], where)
    qualified = a['resource'] + ('.' + a['apiGroup'] if a['apiGroup'] else '')
    details = {}  # metav1.StatusDetails' field order
    if a['name']:
        details['name'] = a['name']
    if a['apiGroup']:
        details['group'] = a['apiGroup']
    details['kind'] = a['resource']
    if a['name']:
        message = '%s "%s" is forbidden: %s' % (qualified, a['name'], why)
    else:
        message = '%s is forbidden: %s' % (qualified, why)
    return ApiError(403, 'Forbidden', message, details=details)
