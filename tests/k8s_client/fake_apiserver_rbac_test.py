#!/usr/bin/env python3
"""The fake apiserver's RBAC mode (fake_apiserver.py --rbac, fake_apiserver_rbac.py): a token's
user may do what its ClusterRoleBindings and RoleBindings grant and nothing else, with the real
server's 403 Forbidden Status; the --token user is unrestricted; the request log names the
user and the attributes RBAC decided on. Standard library only; run it with
    python3 tests/k8s_client/fake_apiserver_rbac_test.py -v"""

import http.client
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_apiserver_test import Server  # noqa: E402

ADMIN = 'admin-token'
SA_TOKEN = 'sa-token'
OTHER_TOKEN = 'other-token'
SA = 'system:serviceaccount:magline-system:magline'

POLICY = {
    'users': {SA_TOKEN: SA, OTHER_TOKEN: 'jane'},
    'objects': [
        {'kind': 'ClusterRole', 'apiVersion': 'rbac.authorization.k8s.io/v1',
         'metadata': {'name': 'magline'},
         'rules': [{'apiGroups': [''], 'resources': ['services'], 'verbs': ['list', 'watch']},
                   {'apiGroups': [''], 'resources': ['services/status'], 'verbs': ['patch']},
                   {'apiGroups': ['discovery.k8s.io'], 'resources': ['endpointslices'],
                    'verbs': ['list']}]},
        {'kind': 'ClusterRoleBinding', 'apiVersion': 'rbac.authorization.k8s.io/v1',
         'metadata': {'name': 'magline'},
         'roleRef': {'apiGroup': 'rbac.authorization.k8s.io', 'kind': 'ClusterRole',
                     'name': 'magline'},
         'subjects': [{'kind': 'ServiceAccount', 'name': 'magline',
                       'namespace': 'magline-system'}]},
        {'kind': 'Role', 'apiVersion': 'rbac.authorization.k8s.io/v1',
         'metadata': {'name': 'leases', 'namespace': 'magline-system'},
         'rules': [{'apiGroups': ['coordination.k8s.io'], 'resources': ['leases'],
                    'verbs': ['get', 'update'], 'resourceNames': ['magline']},
                   {'apiGroups': ['coordination.k8s.io'], 'resources': ['leases'],
                    'verbs': ['create']}]},
        {'kind': 'RoleBinding', 'apiVersion': 'rbac.authorization.k8s.io/v1',
         'metadata': {'name': 'leases', 'namespace': 'magline-system'},
         'roleRef': {'apiGroup': 'rbac.authorization.k8s.io', 'kind': 'Role', 'name': 'leases'},
         'subjects': [{'kind': 'ServiceAccount', 'name': 'magline'}]},  # the binding's namespace
    ]}

LEASES = '/apis/coordination.k8s.io/v1/namespaces/%s/leases'


def lease(ns, name):
    return {'apiVersion': 'coordination.k8s.io/v1', 'kind': 'Lease',
            'metadata': {'namespace': ns, 'name': name},
            'spec': {'holderIdentity': 'a', 'leaseDurationSeconds': 15}}


class RbacTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        path = os.path.join(cls.dir.name, 'policy.json')
        with open(path, 'w') as f:
            json.dump(POLICY, f)
        cls.server = Server('--token', ADMIN, '--rbac', path)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.dir.cleanup()

    def call(self, token, method, path, body=None, content_type='application/json'):
        c = http.client.HTTPConnection('127.0.0.1', self.server.port, timeout=10)
        headers = {'Authorization': 'Bearer ' + token}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers['Content-Type'] = content_type
        c.request(method, path, body=data, headers=headers)
        r = c.getresponse()
        text = r.read()
        c.close()
        return r.status, json.loads(text) if text else {}

    def admin_writes(self, *objects):
        for o in objects:
            ns = o['metadata']['namespace']
            path = ('/api/v1/namespaces/%s/services' % ns if o['kind'] == 'Service'
                    else LEASES % ns)
            code, body = self.call(ADMIN, 'POST', path, o)
            self.assertIn(code, (201, 409), body)

    def assertForbidden(self, reply, message, details):
        code, body = reply
        self.assertEqual(code, 403, body)
        self.assertEqual(body, {'kind': 'Status', 'apiVersion': 'v1', 'metadata': {},
                                'status': 'Failure', 'message': message,
                                'reason': 'Forbidden', 'details': details, 'code': 403})

    def test_granted_verbs_pass_and_others_are_forbidden_as_the_real_server_says(self):
        self.assertEqual(self.call(SA_TOKEN, 'GET', '/api/v1/services')[0], 200)
        self.assertEqual(self.call(SA_TOKEN, 'GET', '/api/v1/services?watch=1&timeoutSeconds=1')[0],
                         200)
        self.assertEqual(
            self.call(SA_TOKEN, 'GET', '/apis/discovery.k8s.io/v1/endpointslices')[0], 200)
        self.assertForbidden(
            self.call(SA_TOKEN, 'GET', '/apis/discovery.k8s.io/v1/endpointslices?watch=true'),
            'endpointslices.discovery.k8s.io is forbidden: User "%s" cannot watch resource '
            '"endpointslices" in API group "discovery.k8s.io" at the cluster scope' % SA,
            {'group': 'discovery.k8s.io', 'kind': 'endpointslices'})
        self.assertForbidden(
            self.call(SA_TOKEN, 'GET', '/api/v1/namespaces/default/services/web'),
            'services "web" is forbidden: User "%s" cannot get resource "services" in API '
            'group "" in the namespace "default"' % SA,
            {'name': 'web', 'kind': 'services'})

    def test_a_subresource_is_granted_apart_from_its_resource(self):
        self.admin_writes({'apiVersion': 'v1', 'kind': 'Service',
                           'metadata': {'namespace': 'sub', 'name': 'lb'},
                           'spec': {'type': 'LoadBalancer',
                                    'ports': [{'port': 80, 'protocol': 'TCP'}]}})
        patch = {'status': {'loadBalancer': {'ingress': [{'ip': '198.18.100.1'}]}}}
        merge = 'application/merge-patch+json'
        code, body = self.call(SA_TOKEN, 'PATCH', '/api/v1/namespaces/sub/services/lb/status',
                               patch, merge)
        self.assertEqual(code, 200, body)
        self.assertForbidden(
            self.call(SA_TOKEN, 'PATCH', '/api/v1/namespaces/sub/services/lb',
                      {'metadata': {'finalizers': ['magline.io/load-balancer']}}, merge),
            'services "lb" is forbidden: User "%s" cannot patch resource "services" in API '
            'group "" in the namespace "sub"' % SA, {'name': 'lb', 'kind': 'services'})

    def test_a_role_binding_grants_in_its_namespace_only_and_resource_names_bind(self):
        self.admin_writes(lease('magline-system', 'magline'), lease('magline-system', 'other'),
                          lease('elsewhere', 'magline'))
        ours = LEASES % 'magline-system'
        self.assertEqual(self.call(SA_TOKEN, 'GET', ours + '/magline')[0], 200)
        self.assertForbidden(
            self.call(SA_TOKEN, 'GET', ours + '/other'),
            'leases.coordination.k8s.io "other" is forbidden: User "%s" cannot get resource '
            '"leases" in API group "coordination.k8s.io" in the namespace "magline-system"' % SA,
            {'name': 'other', 'group': 'coordination.k8s.io', 'kind': 'leases'})
        self.assertEqual(self.call(SA_TOKEN, 'GET', LEASES % 'elsewhere' + '/magline')[0], 403)
        # create has no name to match: a rule with resourceNames cannot grant it (the second
        # rule does)
        code, body = self.call(SA_TOKEN, 'POST', ours, lease('magline-system', 'fresh'))
        self.assertEqual(code, 201, body)
        self.assertEqual(self.call(SA_TOKEN, 'POST', LEASES % 'elsewhere',
                                   lease('elsewhere', 'fresh'))[0], 403)

    def test_the_admin_token_is_unrestricted_and_an_unbound_user_may_do_nothing(self):
        self.assertEqual(self.call(ADMIN, 'GET', '/api/v1/namespaces/default/services/none')[0],
                         404)
        self.assertEqual(self.call(OTHER_TOKEN, 'GET', '/api/v1/services')[0], 403)
        self.assertEqual(self.call('nobody', 'GET', '/api/v1/services')[0], 401)

    def test_the_request_log_names_the_user_and_the_attributes(self):
        self.call(SA_TOKEN, 'GET', '/api/v1/namespaces/logged/services?limit=5')
        self.call(SA_TOKEN, 'DELETE', '/api/v1/namespaces/logged/services/x')
        c = http.client.HTTPConnection('127.0.0.1', self.server.port, timeout=10)
        c.request('GET', '/fake/requests')
        log = json.loads(c.getresponse().read())['requests']
        c.close()
        mine = [(r['method'], r['verb'], r['resource'], r['namespace'], r['status'], r['user'])
                for r in log if r.get('namespace') == 'logged']
        self.assertEqual(mine, [('GET', 'list', 'services', 'logged', 200, SA),
                                ('DELETE', 'delete', 'services', 'logged', 403, SA)])


if __name__ == '__main__':
    unittest.main()
