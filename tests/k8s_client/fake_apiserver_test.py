#!/usr/bin/env python3
"""Tests of the fake kube-apiserver itself (fake_apiserver.py): the write paths (POST, PUT, PATCH,
DELETE) for Services, EndpointSlices, Nodes, Leases and Events, finalizers, the Service /status
subresource and its validation, Service defaulting and allocation, the fault injection and the
request log; and that the list/watch behaviour the watcher tests rely on still holds. One server
for the whole file, started on a free port as watcher_test.cpp starts it; every test works in a
namespace of its own. Standard library only; run it with
    python3 tests/k8s_client/fake_apiserver_test.py -v"""

import http.client
import json
import os
import re
import select
import socket
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, 'fake_apiserver.py')
SVC = '/api/v1/namespaces/%s/services'
LEASES = '/apis/coordination.k8s.io/v1/namespaces/%s/leases'
EVENTS = '/apis/events.k8s.io/v1/namespaces/%s/events'
SLICES = '/apis/discovery.k8s.io/v1/namespaces/%s/endpointslices'
NODES = '/api/v1/nodes'
MERGE = 'application/merge-patch+json'
SMP = 'application/strategic-merge-patch+json'
JSONPATCH = 'application/json-patch+json'
APPLY = 'application/apply-patch+yaml'


class Server:
    """fake_apiserver.py in a process group of its own (killed as a group), on 127.0.0.1."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([sys.executable, FAKE, '--port', '0', *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        line = b''
        end = time.monotonic() + 10
        while not line.endswith(b'\n') and time.monotonic() < end:
            if not select.select([self.proc.stdout], [], [], 0.2)[0]:
                continue
            c = os.read(self.proc.stdout.fileno(), 1)
            if not c:
                break
            line += c
        words = line.split()
        if len(words) != 3 or words[:2] != [b'listening', b'on']:
            self.stop()
            raise RuntimeError('the fake API server did not start: %r' % line)
        self.port = int(words[2])

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 9)
        self.proc.wait(5)
        self.proc.stdout.close()


class Reply:
    def __init__(self, status, body, headers):
        self.status = status
        self.body = body
        self.headers = headers

    def __repr__(self):
        return 'Reply(%d, %s)' % (self.status, json.dumps(self.body)[:400])


def status_body(code, reason, message, details=None):
    out = {'kind': 'Status', 'apiVersion': 'v1', 'metadata': {}, 'status': 'Failure',
           'message': message, 'reason': reason}
    if details is not None:
        out['details'] = details
    out['code'] = code
    return out


class Base(unittest.TestCase):
    server = None

    @classmethod
    def setUpClass(cls):
        if Base.server is None:
            Base.server = Server()

    def setUp(self):
        self.ns = re.sub('[^a-z0-9]+', '-', self.id().split('.')[-1].lower()).strip('-')[:60]
        self.call('DELETE', '/fake/inject')

    # --- HTTP ---------------------------------------------------------------------------------
    def call(self, method, path, body=None, ctype='application/json', headers=None, timeout=10):
        conn = http.client.HTTPConnection('127.0.0.1', Base.server.port, timeout=timeout)
        try:
            data = body
            if body is not None and not isinstance(body, (bytes, str)):
                data = json.dumps(body)
            h = dict(headers or {})
            if data is not None:
                h['Content-Type'] = ctype
            conn.request(method, path, body=data, headers=h)
            resp = conn.getresponse()
            raw = resp.read()
            return Reply(resp.status, json.loads(raw) if raw else None, dict(resp.getheaders()))
        finally:
            conn.close()

    def ok(self, method, path, body=None, ctype='application/json', code=200, **kw):
        r = self.call(method, path, body, ctype, **kw)
        self.assertEqual(r.status, code, r)
        return r.body

    @staticmethod
    def eventually(f, want=200, seconds=5):
        """f() until it returns `want` (the server may still be busy on a loaded machine)."""
        end = time.monotonic() + seconds
        got = f()
        while got != want and time.monotonic() < end:
            time.sleep(0.05)
            got = f()
        return got

    def rv(self):
        return self.call('GET', '/fake/state').body['resourceVersion']

    def requests(self, since=0):
        return self.call('GET', '/fake/requests?since=%d' % since).body

    # --- objects ------------------------------------------------------------------------------
    def svc(self, name, type_='LoadBalancer', **spec):
        s = {'type': type_, 'ports': [{'name': 'http', 'port': 80}]}
        s.update(spec)
        return {'apiVersion': 'v1', 'kind': 'Service',
                'metadata': {'name': name, 'namespace': self.ns}, 'spec': s}

    def create_svc(self, name, type_='LoadBalancer', **spec):
        return self.ok('POST', SVC % self.ns, self.svc(name, type_, **spec), code=201)

    def lease(self, name, holder, rv=None):
        meta = {'name': name}
        if rv:
            meta['resourceVersion'] = rv
        return {'apiVersion': 'coordination.k8s.io/v1', 'kind': 'Lease', 'metadata': meta,
                'spec': {'holderIdentity': holder, 'leaseDurationSeconds': 15,
                         'acquireTime': '2026-12-02T19:00:00.000000+02:00',
                         'renewTime': '2026-12-02T17:00:00.123456Z', 'leaseTransitions': 0}}

    def watch(self, path, rv, timeout=5):
        return Watch(Base.server.port, '%s?watch=1&resourceVersion=%s&timeoutSeconds=%d' % (
            path, rv, timeout))


class Watch:
    """A watch stream read event by event (http.client takes the chunked coding off)."""

    def __init__(self, port, path):
        self.conn = http.client.HTTPConnection('127.0.0.1', port, timeout=5)
        self.conn.request('GET', path)
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200, self.resp.status

    def next(self):
        line = self.resp.readline()
        return json.loads(line) if line else None

    def take(self, n):
        return [self.next() for _ in range(n)]

    def close(self):
        self.conn.close()


# ---------------------------------------------------------------------------------------------
# 1. Writes through the API, for every kind

class TestWrites(Base):

    def test_service_create_get_list_delete(self):
        before = int(self.rv())
        created = self.create_svc('web')
        meta = created['metadata']
        self.assertEqual((created['kind'], created['apiVersion']), ('Service', 'v1'))
        self.assertEqual(meta['namespace'], self.ns)
        self.assertEqual(int(meta['resourceVersion']), before + 1)
        self.assertRegex(meta['uid'], '^[0-9a-f-]{36}$')
        self.assertRegex(meta['creationTimestamp'], r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$')
        got = self.ok('GET', SVC % self.ns + '/web')
        self.assertEqual(got, created)
        items = self.ok('GET', SVC % self.ns)['items']
        self.assertEqual([i['metadata']['name'] for i in items], ['web'])
        self.assertNotIn('kind', items[0])  # list items carry no kind (k8s-api.md §2)
        gone = self.ok('DELETE', SVC % self.ns + '/web')
        self.assertEqual(gone, created)  # Services answer a DELETE with the object
        r = self.call('GET', SVC % self.ns + '/web')
        self.assertEqual(r.status, 404)
        self.assertEqual(r.body, status_body(404, 'NotFound', 'services "web" not found',
                                             {'name': 'web', 'kind': 'services'}))

    def test_create_existing_is_already_exists(self):
        self.create_svc('web')
        r = self.call('POST', SVC % self.ns, self.svc('web'))
        self.assertEqual(r.status, 409)
        self.assertEqual(r.body, status_body(409, 'AlreadyExists', 'services "web" already exists',
                                             {'name': 'web', 'kind': 'services'}))
        lease = self.lease('l', 'a')
        self.ok('POST', LEASES % self.ns, lease, code=201)
        r = self.call('POST', LEASES % self.ns, lease)
        self.assertEqual(r.body, status_body(
            409, 'AlreadyExists', 'leases.coordination.k8s.io "l" already exists',
            {'name': 'l', 'group': 'coordination.k8s.io', 'kind': 'leases'}))

    def test_create_rules(self):
        wrong_ns = self.svc('web')
        wrong_ns['metadata']['namespace'] = 'elsewhere'
        r = self.call('POST', SVC % self.ns, wrong_ns)
        self.assertEqual((r.status, r.body['message']), (400, 'the namespace of the provided '
                                                         'object does not match the namespace '
                                                         'sent on the request'))
        with_rv = self.svc('web')
        with_rv['metadata']['resourceVersion'] = '5'
        r = self.call('POST', SVC % self.ns, with_rv)
        self.assertEqual(r.status, 500)
        self.assertEqual(r.body['message'], 'resourceVersion should not be set on objects to be '
                                            'created')
        gen = self.svc('')
        gen['metadata'] = {'generateName': 'web-'}
        made = self.ok('POST', SVC % self.ns, gen, code=201)
        self.assertRegex(made['metadata']['name'], '^web-[bcdfghjklmnpqrstvwxz2456789]{5}$')
        r = self.call('POST', SVC % self.ns, self.svc('Web'))
        self.assertEqual(r.status, 422)
        self.assertTrue(r.body['message'].startswith(
            'Service "Web" is invalid: metadata.name: Invalid value: "Web": a DNS-1035 label'))
        r = self.call('POST', SVC % self.ns, {'kind': 'Lease', 'metadata': {'name': 'x'}})
        self.assertEqual(r.status, 400)
        r = self.call('POST', SVC % self.ns, b'name: x', ctype='text/plain')
        self.assertEqual(r.status, 415)
        self.assertEqual(r.body['message'], 'the body of the request was in an unknown format - '
                         'accepted media types include: application/json, application/yaml, '
                         'application/vnd.kubernetes.protobuf')

    def test_put_needs_the_stored_resource_version(self):
        created = self.create_svc('web')
        stale = created['metadata']['resourceVersion']
        created['metadata']['labels'] = {'a': 'b'}
        updated = self.ok('PUT', SVC % self.ns + '/web', created)
        self.assertEqual(updated['metadata']['labels'], {'a': 'b'})
        self.assertEqual(int(updated['metadata']['resourceVersion']), int(stale) + 1)
        created['metadata']['labels'] = {'a': 'c'}  # still the old RV
        r = self.call('PUT', SVC % self.ns + '/web', created)
        self.assertEqual(r.status, 409)
        self.assertEqual(r.body, status_body(
            409, 'Conflict', 'Operation cannot be fulfilled on services "web": the object has '
            'been modified; please apply your changes to the latest version and try again',
            {'name': 'web', 'kind': 'services'}))

    def test_put_without_resource_version(self):
        created = self.create_svc('web')
        del created['metadata']['resourceVersion']
        created['metadata']['labels'] = {'x': 'y'}
        # Services allow an unconditional update (svcStrategy.AllowUnconditionalUpdate).
        self.assertEqual(self.ok('PUT', SVC % self.ns + '/web', created)['metadata']['labels'],
                         {'x': 'y'})
        # Leases do not (leaseStrategy.AllowUnconditionalUpdate is false).
        self.ok('POST', LEASES % self.ns, self.lease('l', 'a'), code=201)
        r = self.call('PUT', LEASES % self.ns + '/l', self.lease('l', 'b'))
        self.assertEqual(r.status, 422)
        self.assertEqual(r.body, status_body(
            422, 'Invalid', 'leases.coordination.k8s.io "l" is invalid: metadata.resourceVersion:'
            ' Invalid value: 0x0: must be specified for an update',
            {'name': 'l', 'group': 'coordination.k8s.io', 'kind': 'leases', 'causes': [
                {'reason': 'FieldValueInvalid', 'message': 'Invalid value: 0x0: must be '
                 'specified for an update', 'field': 'metadata.resourceVersion'}]}))

    def test_put_to_a_missing_object(self):
        # Services and Leases may be created by PUT, EndpointSlices and Nodes not, and never
        # through a subresource.
        self.assertEqual(self.call('PUT', SVC % self.ns + '/new', self.svc('new')).status, 201)
        self.assertEqual(self.call('PUT', LEASES % self.ns + '/new',
                                   self.lease('new', 'a')).status, 201)
        sl = {'metadata': {'name': 'new'}, 'addressType': 'IPv4', 'endpoints': []}
        r = self.call('PUT', SLICES % self.ns + '/new', sl)
        self.assertEqual((r.status, r.body['message']),
                         (404, 'endpointslices.discovery.k8s.io "new" not found'))
        self.assertEqual(self.call('PUT', NODES + '/no-such-node',
                                   {'metadata': {'name': 'no-such-node'}}).status, 404)
        self.assertEqual(self.call('PUT', SVC % self.ns + '/other/status',
                                   self.svc('other')).status, 404)

    def test_put_checks_name_and_uid(self):
        created = self.create_svc('web')
        r = self.call('PUT', SVC % self.ns + '/other', created)
        self.assertEqual((r.status, r.body['message']), (400, 'the name of the object (web) does '
                                                         'not match the name on the URL (other)'))
        created['metadata']['uid'] = '00000000-0000-0000-0000-000000000000'
        r = self.call('PUT', SVC % self.ns + '/web', created)
        self.assertEqual(r.status, 409)
        self.assertIn('Precondition failed: UID in precondition: 00000000-0000-0000-0000-'
                      '000000000000, UID in object meta: ', r.body['message'])

    def test_a_no_op_update_is_not_written(self):
        created = self.create_svc('web')
        rv = self.rv()
        again = self.ok('PUT', SVC % self.ns + '/web', created)
        self.assertEqual(again['metadata']['resourceVersion'],
                         created['metadata']['resourceVersion'])
        self.assertEqual(self.rv(), rv)

    def test_nodes_are_cluster_scoped(self):
        node = {'apiVersion': 'v1', 'kind': 'Node',
                'metadata': {'name': 'node-a', 'namespace': 'ignored',
                             'labels': {'topology.kubernetes.io/zone': 'z1'}},
                'spec': {'podCIDR': '10.244.1.0/24'},
                'status': {'addresses': [{'type': 'InternalIP', 'address': '192.0.2.1'}]}}
        made = self.ok('POST', NODES, node, code=201)
        self.assertNotIn('namespace', made['metadata'])
        self.assertEqual(made['status']['addresses'][0]['address'], '192.0.2.1')  # create sets all
        self.assertIn('node-a', [n['metadata']['name'] for n in self.ok('GET', NODES)['items']])
        # The main endpoint keeps the stored status.
        made['spec']['unschedulable'] = True
        made['status']['addresses'][0]['address'] = '192.0.2.99'
        upd = self.ok('PUT', NODES + '/node-a', made)
        self.assertEqual((upd['spec'].get('unschedulable'),
                          upd['status']['addresses'][0]['address']), (True, '192.0.2.1'))
        gone = self.ok('DELETE', NODES + '/node-a')
        self.assertEqual(gone, {'kind': 'Status', 'apiVersion': 'v1', 'metadata': {},
                                'status': 'Success', 'details': {
                                    'name': 'node-a', 'kind': 'nodes',
                                    'uid': made['metadata']['uid']}})

    def test_leases(self):
        made = self.ok('POST', LEASES % self.ns, self.lease('leader', 'a'), code=201)
        # MicroTime comes back as the apiserver encodes it: UTC, microseconds.
        self.assertEqual(made['spec']['acquireTime'], '2026-12-02T17:00:00.000000Z')
        self.assertEqual(made['spec']['renewTime'], '2026-12-02T17:00:00.123456Z')
        # MicroTime takes exactly six fractional digits (time.Parse with RFC3339Micro).
        short = self.lease('short', 'a')
        short['spec']['renewTime'] = '2026-12-02T17:00:00Z'
        r = self.call('POST', LEASES % self.ns, short)
        self.assertEqual(r.body, status_body(
            400, 'BadRequest', 'Lease in version "v1" cannot be handled as a Lease: parsing time '
            '"2026-12-02T17:00:00Z" as "2006-01-02T15:04:05.000000Z07:00": cannot parse "Z" as '
            '".000000"'))
        bad = self.lease('bad', 'a')
        bad['spec']['leaseDurationSeconds'] = 0
        r = self.call('POST', LEASES % self.ns, bad)
        self.assertEqual(r.body['message'], 'Lease.coordination.k8s.io "bad" is invalid: '
                         'spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0')
        self.assertEqual(r.body['details']['kind'], 'Lease')
        r = self.call('DELETE', LEASES % self.ns + '/leader',
                      {'preconditions': {'resourceVersion': '1'}})
        self.assertEqual(r.status, 409)
        self.assertEqual(r.body['message'], 'Operation cannot be fulfilled on '
                         'Lease.coordination.k8s.io "leader": the ResourceVersion in the '
                         'precondition (1) does not match the ResourceVersion in record (%s). '
                         'The object might have been modified' %
                         made['metadata']['resourceVersion'])
        gone = self.ok('DELETE', LEASES % self.ns + '/leader')
        self.assertEqual(gone['details'], {'name': 'leader', 'group': 'coordination.k8s.io',
                                           'kind': 'leases', 'uid': made['metadata']['uid']})

    def test_events(self):
        ev = {'apiVersion': 'events.k8s.io/v1', 'kind': 'Event',
              'metadata': {'name': 'web.1', 'namespace': self.ns},
              'eventTime': '2026-12-02T17:00:00.500000Z',
              'reportingController': 'example.com/lb',
              'reportingInstance': 'example.com/lb-node-a', 'action': 'Assign',
              'reason': 'IPAllocated', 'type': 'Normal', 'note': 'Assigned IP 192.0.2.10',
              'regarding': {'kind': 'Service', 'namespace': self.ns, 'name': 'web',
                            'apiVersion': 'v1'}}
        made = self.ok('POST', EVENTS % self.ns, ev, code=201)
        self.assertEqual(made['eventTime'], '2026-12-02T17:00:00.500000Z')
        made['note'] = 'changed'
        r = self.call('PUT', EVENTS % self.ns + '/web.1', made)
        self.assertEqual(r.body['details']['causes'], [{
            'reason': 'FieldValueInvalid', 'message': 'Invalid value: "changed": field is '
            'immutable', 'field': 'message'}])
        bad = dict(ev, metadata={'name': 'web.2'}, type='Info')
        del bad['action']
        r = self.call('POST', EVENTS % self.ns, bad)
        self.assertEqual(r.status, 422)
        self.assertEqual(r.body['message'], 'Event.events.k8s.io "web.2" is invalid: [type: '
                         'Invalid value: "": has invalid value: Info, action: Required value]')
        listed = self.ok('GET', EVENTS % self.ns + '?fieldSelector=metadata.name%3Dweb.1')
        self.assertEqual(len(listed['items']), 1)

    def test_endpointslices(self):
        sl = {'apiVersion': 'discovery.k8s.io/v1', 'kind': 'EndpointSlice',
              'metadata': {'name': 'web-1', 'labels': {'kubernetes.io/service-name': 'web'}},
              'addressType': 'IPv4', 'ports': [{'name': 'http', 'port': 8080}],
              'endpoints': [{'addresses': ['10.0.0.1']}]}
        made = self.ok('POST', SLICES % self.ns, sl, code=201)
        self.assertEqual(made['metadata']['generation'], 1)
        made['endpoints'].append({'addresses': ['10.0.0.2']})
        upd = self.ok('PUT', SLICES % self.ns + '/web-1', made)
        self.assertEqual(upd['metadata']['generation'], 2)
        upd['metadata']['labels']['extra'] = 'x'  # metadata only: no generation bump
        upd = self.ok('PUT', SLICES % self.ns + '/web-1', upd)
        self.assertEqual(upd['metadata']['generation'], 2)
        upd['addressType'] = 'IPv6'
        r = self.call('PUT', SLICES % self.ns + '/web-1', upd)
        self.assertEqual(r.status, 422)
        self.assertIn('addressType: Invalid value: "IPv6": field is immutable', r.body['message'])

    def test_list_and_watch_every_kind(self):
        rv = self.rv()
        watches = {p: self.watch(p % self.ns, rv) for p in (LEASES, EVENTS, SLICES)}
        nodes = self.watch(NODES, rv)
        self.ok('POST', LEASES % self.ns, dict(self.lease('w', 'a'), metadata={
            'name': 'w', 'labels': {'set': 'peers'}}), code=201)
        self.ok('POST', SLICES % self.ns, {'metadata': {'name': 's'}, 'addressType': 'IPv4'},
                code=201)
        self.ok('POST', NODES, {'metadata': {'name': 'watched-node'}}, code=201)
        lease = watches[LEASES].next()
        self.assertEqual((lease['type'], lease['object']['kind'], lease['object']['apiVersion']),
                         ('ADDED', 'Lease', 'coordination.k8s.io/v1'))
        self.assertEqual(watches[SLICES].next()['object']['metadata']['name'], 's')
        self.assertEqual(nodes.next()['object']['metadata']['name'], 'watched-node')
        l2 = self.ok('GET', LEASES % self.ns + '/w')
        l2['spec']['holderIdentity'] = 'b'
        self.ok('PUT', LEASES % self.ns + '/w', l2)
        ev = watches[LEASES].next()
        self.assertEqual((ev['type'], ev['object']['spec']['holderIdentity']), ('MODIFIED', 'b'))
        self.ok('DELETE', NODES + '/watched-node')
        ev = nodes.next()
        self.assertEqual(ev['type'], 'DELETED')
        self.assertEqual(int(ev['object']['metadata']['resourceVersion']), int(self.rv()))
        for w in list(watches.values()) + [nodes]:
            w.close()
        sel = self.ok('GET', '/apis/coordination.k8s.io/v1/leases?labelSelector=set%3Dpeers')
        self.assertEqual([i['metadata']['name'] for i in sel['items']], ['w'])
        one = self.watch(LEASES % self.ns + '/w', 0)  # a watch on one named object
        self.assertEqual(one.next()['object']['metadata']['name'], 'w')
        one.close()

    def test_bookmarks_of_the_new_kinds(self):
        self.ok('POST', '/fake/config', {'bookmark_interval': 0.1})
        try:
            for path, tail in ((NODES, 'Node'), (LEASES % self.ns, 'Lease'),
                               (EVENTS % self.ns, 'Event')):
                w = Watch(Base.server.port, path + '?watch=1&allowWatchBookmarks=true&'
                          'resourceVersion=%s&timeoutSeconds=2' % self.rv())
                ev = w.next()
                w.close()
                self.assertEqual((ev['type'], ev['object']['kind']), ('BOOKMARK', tail))
                self.assertEqual(ev['object']['metadata'], {'resourceVersion': self.rv()})
        finally:
            self.ok('POST', '/fake/config', {'bookmark_interval': 60})

    def test_methods_and_paths_not_served(self):
        r = self.call('POST', '/api/v1/services', self.svc('x'))
        self.assertEqual(r.body, {'kind': 'Status', 'apiVersion': 'v1', 'metadata': {},
                                  'status': 'Failure', 'message': 'the server does not allow '
                                  'this method on the requested resource',
                                  'reason': 'MethodNotAllowed', 'details': {}, 'code': 405})
        self.assertEqual(self.call('DELETE', SVC % self.ns).status, 405)
        self.create_svc('web')
        self.assertEqual(self.call('GET', SVC % self.ns + '/web/proxy').status, 404)
        self.assertEqual(self.call('GET', LEASES % self.ns + '/x/status').status, 404)
        self.assertEqual(self.call('GET', '/api/v1/services/web').status, 404)


# ---------------------------------------------------------------------------------------------
# Optimistic concurrency: the races a leader elector and an LB provider run into

class TestConcurrency(Base):

    def test_two_writers_race_and_exactly_one_wins(self):
        for round_ in range(5):
            name = 'race-%d' % round_
            created = self.create_svc(name)
            start = threading.Barrier(2)
            results = []

            def writer(label):
                obj = json.loads(json.dumps(created))  # both read RV N
                obj['metadata']['labels'] = {'writer': label}
                start.wait()
                results.append((label, self.call('PUT', SVC % self.ns + '/' + name, obj)))

            ts = [threading.Thread(target=writer, args=(w,)) for w in ('a', 'b')]
            for t in ts:
                t.start()
            for t in ts:
                t.join(10)
            codes = sorted(r.status for _, r in results)
            self.assertEqual(codes, [200, 409], results)
            winner = next(label for label, r in results if r.status == 200)
            self.assertEqual(self.ok('GET', SVC % self.ns + '/' + name)['metadata']['labels'],
                             {'writer': winner})

    def test_lease_takeover_by_conditional_update(self):
        held = self.ok('POST', LEASES % self.ns, self.lease('leader', 'node-a'), code=201)
        # node-b saw the lease expire (on its own clock) and takes it over with the RV it read.
        seen = self.ok('GET', LEASES % self.ns + '/leader')
        seen['spec'].update(holderIdentity='node-b', leaseTransitions=1,
                            acquireTime='2026-12-02T17:00:20.000000Z',
                            renewTime='2026-12-02T17:00:20.000000Z')
        taken = self.ok('PUT', LEASES % self.ns + '/leader', seen)
        self.assertEqual(taken['spec']['holderIdentity'], 'node-b')
        # node-a's renewal still carries the RV it last wrote: 409, re-read, it is no leader.
        held['spec']['renewTime'] = '2026-12-02T17:00:21.000000Z'
        r = self.call('PUT', LEASES % self.ns + '/leader', held)
        self.assertEqual(r.status, 409)
        self.assertEqual(r.body['message'], 'Operation cannot be fulfilled on '
                         'leases.coordination.k8s.io "leader": the object has been modified; '
                         'please apply your changes to the latest version and try again')
        self.assertEqual(r.body['details'], {'name': 'leader', 'group': 'coordination.k8s.io',
                                             'kind': 'leases'})
        now = self.ok('GET', LEASES % self.ns + '/leader')
        self.assertEqual((now['spec']['holderIdentity'], now['spec']['leaseTransitions']),
                         ('node-b', 1))
        # Release on clean shutdown: empty holder, as ReleaseOnCancel writes it.
        now['spec'].update(holderIdentity='', leaseDurationSeconds=1)
        self.assertEqual(self.ok('PUT', LEASES % self.ns + '/leader', now)['spec']
                         ['holderIdentity'], '')


# ---------------------------------------------------------------------------------------------
# 2. Finalizers

class TestFinalizers(Base):
    FIN = 'example.com/lb-cleanup'

    def test_watch_sees_the_finalizer_delete_sequence(self):
        spec = self.svc('web')
        spec['metadata']['finalizers'] = [self.FIN]
        made = self.ok('POST', SVC % self.ns, spec, code=201)
        w = self.watch(SVC % self.ns, made['metadata']['resourceVersion'])
        deleting = self.ok('DELETE', SVC % self.ns + '/web')
        meta = deleting['metadata']
        self.assertRegex(meta['deletionTimestamp'], r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$')
        self.assertEqual(meta['deletionGracePeriodSeconds'], 0)
        self.assertEqual(int(meta['resourceVersion']), int(made['metadata']['resourceVersion']) + 1)
        rv = self.rv()
        self.assertEqual(self.ok('DELETE', SVC % self.ns + '/web'), deleting)  # nothing new
        self.assertEqual(self.rv(), rv)
        ev = w.next()
        self.assertEqual((ev['type'], ev['object']['metadata']['deletionTimestamp']),
                         ('MODIFIED', meta['deletionTimestamp']))
        # Still readable while being deleted; a create of the same name is refused.
        self.ok('GET', SVC % self.ns + '/web')
        r = self.call('POST', SVC % self.ns, self.svc('web'))
        self.assertEqual((r.status, r.body['message']), (409, 'object is being deleted: '
                                                         'services "web" already exists'))
        # No new finalizers on an object being deleted.
        r = self.call('PATCH', SVC % self.ns + '/web',
                      {'metadata': {'finalizers': [self.FIN, 'other.io/x']}}, MERGE)
        self.assertEqual(r.status, 422)
        self.assertEqual(r.body['message'], 'Service "web" is invalid: metadata.finalizers: '
                         'Forbidden: no new finalizers can be added if the object is being '
                         'deleted, found new finalizers []string{"other.io/x"}')
        # Removing the last finalizer deletes it: 200 with the object as updated, then DELETED.
        out = self.ok('PATCH', SVC % self.ns + '/web', {'metadata': {'finalizers': None}}, MERGE)
        self.assertNotIn('finalizers', out['metadata'])
        ev = w.next()
        self.assertEqual(ev['type'], 'DELETED')
        self.assertEqual(ev['object']['metadata']['finalizers'], [self.FIN])  # the last state
        self.assertEqual(ev['object']['metadata']['resourceVersion'], self.rv())
        self.assertEqual(self.call('GET', SVC % self.ns + '/web').status, 404)
        w.close()

    def test_finalizers_by_strategic_merge_and_put(self):
        made = self.create_svc('web')
        added = self.ok('PATCH', SVC % self.ns + '/web',
                        {'metadata': {'finalizers': [self.FIN]}}, SMP)
        added = self.ok('PATCH', SVC % self.ns + '/web',
                        {'metadata': {'finalizers': ['other.io/x']}}, SMP)
        self.assertEqual(added['metadata']['finalizers'], [self.FIN, 'other.io/x'])  # a set
        self.ok('DELETE', SVC % self.ns + '/web')
        out = self.ok('PATCH', SVC % self.ns + '/web', {'metadata': {
            '$deleteFromPrimitiveList/finalizers': ['other.io/x']}}, SMP)
        self.assertEqual(out['metadata']['finalizers'], [self.FIN])
        last = self.ok('GET', SVC % self.ns + '/web')
        last['metadata']['finalizers'] = []
        self.ok('PUT', SVC % self.ns + '/web', last)
        self.assertEqual(self.call('GET', SVC % self.ns + '/web').status, 404)
        del made

    def test_a_lease_without_finalizers_goes_at_once(self):
        made = self.ok('POST', LEASES % self.ns, self.lease('l', 'a'), code=201)
        w = self.watch(LEASES % self.ns, made['metadata']['resourceVersion'])
        self.ok('DELETE', LEASES % self.ns + '/l')
        self.assertEqual(w.next()['type'], 'DELETED')
        w.close()


# ---------------------------------------------------------------------------------------------
# 3. The Service /status subresource, the PATCH types, validation of status writes

class TestStatus(Base):
    ING = {'ip': '192.0.2.10', 'ipMode': 'VIP'}

    def test_put_status_takes_only_status_and_needs_the_rv(self):
        made = self.create_svc('web')
        body = json.loads(json.dumps(made))
        body['spec']['ports'][0]['port'] = 81  # ignored on /status
        body['status'] = {'loadBalancer': {'ingress': [{'ip': '192.0.2.10'}]}}
        body['metadata']['labels'] = {'seen-by': 'lb'}  # the Service status strategy keeps these
        out = self.ok('PUT', SVC % self.ns + '/web/status', body)
        self.assertEqual(out['spec'], made['spec'])
        self.assertEqual(out['status']['loadBalancer']['ingress'], [self.ING])  # ipMode defaulted
        self.assertEqual(out['metadata']['labels'], {'seen-by': 'lb'})
        r = self.call('PUT', SVC % self.ns + '/web/status', body)  # the old RV again
        self.assertEqual(r.status, 409)
        self.assertEqual(r.body['reason'], 'Conflict')
        # And the main endpoint ignores status.
        out['status'] = {'loadBalancer': {}}
        out['spec']['ports'][0]['port'] = 82
        upd = self.ok('PUT', SVC % self.ns + '/web', out)
        self.assertEqual((upd['spec']['ports'][0]['port'],
                          upd['status']['loadBalancer']['ingress']), (82, [self.ING]))

    def test_merge_patch_status_conditional(self):
        made = self.create_svc('web')
        rv = made['metadata']['resourceVersion']
        patch = {'metadata': {'resourceVersion': rv},
                 'status': {'loadBalancer': {'ingress': [{'ip': '192.0.2.10'}]}}}
        out = self.ok('PATCH', SVC % self.ns + '/web/status', patch, MERGE)
        self.assertEqual(out['status']['loadBalancer']['ingress'], [self.ING])
        r = self.call('PATCH', SVC % self.ns + '/web/status', patch, MERGE)  # rv is stale now
        self.assertEqual(r.status, 409)
        # Without a resourceVersion a merge patch is unconditional; null clears (k8s-api.md §6.1).
        out = self.ok('PATCH', SVC % self.ns + '/web/status',
                      {'status': {'loadBalancer': {'ingress': None}}}, MERGE)
        self.assertEqual(out['status'], {'loadBalancer': {}})
        # A spec change through /status is ignored (and so writes nothing).
        rv = self.rv()
        out = self.ok('PATCH', SVC % self.ns + '/web/status', {'spec': {'type': 'NodePort'}},
                      MERGE)
        self.assertEqual((out['spec']['type'], self.rv()), ('LoadBalancer', rv))
        # A status change through the main endpoint too.
        out = self.ok('PATCH', SVC % self.ns + '/web',
                      {'status': {'loadBalancer': {'ingress': [self.ING]}}}, MERGE)
        self.assertEqual(out['status'], {'loadBalancer': {}})

    def test_status_validation(self):
        self.create_svc('cip', 'ClusterIP')
        self.create_svc('lb')

        def patch(name, ingress):
            return self.call('PATCH', SVC % self.ns + '/%s/status' % name,
                             {'status': {'loadBalancer': {'ingress': ingress}}}, MERGE)

        r = patch('cip', [{'ip': '192.0.2.10'}])
        self.assertEqual(r.status, 422)
        self.assertEqual(r.body, status_body(
            422, 'Invalid', 'Service "cip" is invalid: status.loadBalancer.ingress: Forbidden: '
            "may only be used when `spec.type` is 'LoadBalancer'",
            {'name': 'cip', 'kind': 'Service', 'causes': [{
                'reason': 'FieldValueForbidden', 'message': "Forbidden: may only be used when "
                "`spec.type` is 'LoadBalancer'", 'field': 'status.loadBalancer.ingress'}]}))
        r = patch('lb', [{'ip': '192.0.2.300'}])
        self.assertEqual(r.body['details']['causes'], [{
            'reason': 'FieldValueInvalid', 'message': 'Invalid value: "192.0.2.300": must be a '
            'valid IP address (e.g. 10.9.8.7 or 2001:db8::ffff)',
            'field': 'status.loadBalancer.ingress[0].ip'}])
        r = patch('lb', [{'ip': '192.0.2.10', 'ipMode': 'Tunnel'}])
        self.assertEqual(r.body['message'], 'Service "lb" is invalid: status.loadBalancer.ingress'
                         '[0].ipMode: Unsupported value: "Tunnel": supported values: "Proxy", '
                         '"VIP"')
        self.assertEqual(r.body['details']['causes'][0]['reason'], 'FieldValueNotSupported')
        r = patch('lb', [{'hostname': '192.0.2.10'}])
        self.assertIn('status.loadBalancer.ingress[0].hostname: Invalid value: "192.0.2.10": '
                      'must be a DNS name, not an IP address', r.body['message'])
        r = patch('lb', [{'hostname': 'lb.example.com', 'ipMode': 'VIP'}])
        self.assertEqual(r.body['message'], 'Service "lb" is invalid: status.loadBalancer.'
                         'ingress[0].ipMode: Forbidden: may not be specified when `ip` is not set')
        out = self.ok('PATCH', SVC % self.ns + '/lb/status', {'status': {'loadBalancer': {
            'ingress': [{'ip': '2001:db8::10'}, {'ip': '192.0.2.11', 'ipMode': 'Proxy'},
                        {'hostname': 'lb.example.com'}]}}}, MERGE)
        self.assertEqual(out['status']['loadBalancer']['ingress'], [
            {'ip': '2001:db8::10', 'ipMode': 'VIP'}, {'ip': '192.0.2.11', 'ipMode': 'Proxy'},
            {'hostname': 'lb.example.com'}])

    def test_strategic_merge_status(self):
        self.create_svc('web')
        cond = {'type': 'example.com/Assigned', 'status': 'True', 'reason': 'IPAllocated',
                'message': 'ok', 'lastTransitionTime': '2026-12-02T17:00:00Z'}
        other = dict(cond, type='LoadBalancerPortsError', status='False', reason='Ok')
        self.ok('PATCH', SVC % self.ns + '/web/status', {'status': {
            'loadBalancer': {'ingress': [{'ip': '192.0.2.10'}, {'ip': '192.0.2.11'}]},
            'conditions': [cond]}}, SMP)
        out = self.ok('PATCH', SVC % self.ns + '/web/status', {'status': {
            'loadBalancer': {'ingress': [{'ip': '192.0.2.12'}]},
            'conditions': [other, dict(cond, message='still ok')]}}, SMP)
        st = out['status']
        self.assertEqual(st['loadBalancer']['ingress'], [{'ip': '192.0.2.12', 'ipMode': 'VIP'}])
        self.assertEqual([(c['type'], c['message']) for c in st['conditions']],
                         [('example.com/Assigned', 'still ok'), ('LoadBalancerPortsError', 'ok')])
        out = self.ok('PATCH', SVC % self.ns + '/web/status', {'status': {'conditions': [
            {'type': 'LoadBalancerPortsError', '$patch': 'delete'}]}}, SMP)
        self.assertEqual([c['type'] for c in out['status']['conditions']],
                         ['example.com/Assigned'])
        r = self.call('PATCH', SVC % self.ns + '/web/status', {'status': {'conditions': [
            dict(cond, type='Bad', reason='not a reason!')]}}, SMP)
        self.assertEqual(r.status, 422)
        self.assertIn('status.conditions[1].reason: Invalid value: "not a reason!": a condition '
                      'reason must start with alphabetic character', r.body['message'])

    def test_json_patch(self):
        made = self.create_svc('web')
        ops = [{'op': 'test', 'path': '/metadata/resourceVersion',
                'value': made['metadata']['resourceVersion']},
               {'op': 'add', 'path': '/status/loadBalancer/ingress',
                'value': [{'ip': '192.0.2.1'}]},
               {'op': 'add', 'path': '/metadata/labels', 'value': {'a~b/c': 'x'}},
               {'op': 'replace', 'path': '/metadata/labels/a~0b~1c', 'value': 'y'}]
        out = self.ok('PATCH', SVC % self.ns + '/web/status', ops, JSONPATCH)
        self.assertEqual(out['metadata']['labels'], {'a~b/c': 'y'})
        self.assertEqual(out['status']['loadBalancer']['ingress'], [{'ip': '192.0.2.1',
                                                                     'ipMode': 'VIP'}])
        r = self.call('PATCH', SVC % self.ns + '/web/status', ops[:1], JSONPATCH)
        self.assertEqual(r.body, status_body(
            422, 'Invalid', 'the server rejected our request due to an error in our request',
            {'causes': [{'message': 'testing value /metadata/resourceVersion failed: test '
                         'failed'}]}))
        r = self.call('PATCH', SVC % self.ns + '/web/status',
                      [{'op': 'remove', 'path': '/status/nothing'}], JSONPATCH)
        self.assertEqual(r.status, 422)
        r = self.call('PATCH', SVC % self.ns + '/web/status', {'op': 'add'}, JSONPATCH)
        self.assertEqual(r.status, 400)
        out = self.ok('PATCH', SVC % self.ns + '/web/status',
                      [{'op': 'remove', 'path': '/status/loadBalancer/ingress'}], JSONPATCH)
        self.assertEqual(out['status'], {'loadBalancer': {}})

    def test_unsupported_patch_type(self):
        self.create_svc('web')
        r = self.call('PATCH', SVC % self.ns + '/web/status', {}, 'application/json')
        self.assertEqual(r.body, status_body(
            415, 'UnsupportedMediaType', 'the body of the request was in an unknown format - '
            'accepted media types include: application/json-patch+json, application/merge-patch'
            '+json, application/apply-patch+yaml, application/strategic-merge-patch+json, '
            'application/apply-patch+cbor'))
        self.assertEqual(self.call('PATCH', SVC % self.ns + '/nope', {}, MERGE).status, 404)
        r = self.call('PATCH', SVC % self.ns + '/web?force=true', {}, MERGE)
        self.assertEqual(r.body['message'], 'PatchOptions.meta.k8s.io "" is invalid: force: '
                         'Forbidden: may not be specified for non-apply patch')

    def test_server_side_apply(self):
        cfg = {'apiVersion': 'v1', 'kind': 'Service',
               'metadata': {'name': 'web', 'labels': {'app': 'web'}},
               'spec': {'type': 'LoadBalancer', 'ports': [{'name': 'http', 'port': 80}]}}
        r = self.call('PATCH', SVC % self.ns + '/web', cfg, APPLY)
        self.assertEqual(r.body, status_body(
            422, 'Invalid', 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required '
            'value: is required for apply patch',
            {'group': 'meta.k8s.io', 'kind': 'PatchOptions', 'causes': [{
                'reason': 'FieldValueRequired', 'message': 'Required value: is required for '
                'apply patch', 'field': 'fieldManager'}]}))
        made = self.ok('PATCH', SVC % self.ns + '/web?fieldManager=owner', cfg, APPLY, code=201)
        mf = made['metadata']['managedFields']
        self.assertEqual([(m['manager'], m['operation']) for m in mf], [('owner', 'Apply')])
        self.assertEqual(mf[0]['fieldsV1']['f:metadata']['f:labels'], {'f:app': {}})
        again = self.ok('PATCH', SVC % self.ns + '/web?fieldManager=owner', cfg, APPLY)
        self.assertEqual(again['metadata']['resourceVersion'], made['metadata']['resourceVersion'])
        other = {'apiVersion': 'v1', 'kind': 'Service',
                 'metadata': {'name': 'web', 'labels': {'app': 'other'}}}
        r = self.call('PATCH', SVC % self.ns + '/web?fieldManager=intruder', other, APPLY)
        self.assertEqual(r.body, status_body(
            409, 'Conflict', 'Apply failed with 1 conflict: conflict with "owner" using v1: '
            '.metadata.labels.app',
            {'causes': [{'reason': 'FieldManagerConflict', 'message': 'conflict with "owner" '
                         'using v1', 'field': '.metadata.labels.app'}]}))
        forced = self.ok('PATCH', SVC % self.ns + '/web?fieldManager=intruder&force=true',
                         other, APPLY)
        self.assertEqual(forced['metadata']['labels'], {'app': 'other'})
        owners = {m['manager']: m['fieldsV1'] for m in forced['metadata']['managedFields']}
        self.assertNotIn('f:labels', owners['owner'].get('f:metadata', {}))
        # A field its manager no longer applies is removed (unless someone else owns it).
        shrunk = dict(cfg, metadata={'name': 'web', 'annotations': {'note': 'x'}})
        out = self.ok('PATCH', SVC % self.ns + '/web?fieldManager=owner', shrunk, APPLY)
        self.assertEqual(out['metadata']['labels'], {'app': 'other'})  # intruder's now
        self.assertEqual(out['metadata']['annotations'], {'note': 'x'})
        shrunk['metadata'] = {'name': 'web'}
        out = self.ok('PATCH', SVC % self.ns + '/web?fieldManager=owner', shrunk, APPLY)
        self.assertNotIn('annotations', out['metadata'])
        # Apply on /status: only status (and metadata) taken, recorded with subresource status.
        st = {'apiVersion': 'v1', 'kind': 'Service', 'metadata': {'name': 'web'},
              'spec': {'type': 'ClusterIP'},
              'status': {'loadBalancer': {'ingress': [{'ip': '192.0.2.10'}]}}}
        out = self.ok('PATCH', SVC % self.ns + '/web/status?fieldManager=lb', st, APPLY)
        self.assertEqual((out['spec']['type'], out['status']['loadBalancer']['ingress']),
                         ('LoadBalancer', [self.ING]))
        lb = [m for m in out['metadata']['managedFields'] if m['manager'] == 'lb']
        self.assertEqual((lb[0]['operation'], lb[0]['subresource']), ('Apply', 'status'))
        r = self.call('PATCH', SVC % self.ns + '/web/status?fieldManager=lb',
                      dict(st, apiVersion='v2'), APPLY)
        self.assertEqual((r.status, r.body['message']), (400, 'Incorrect version specified in '
                                                         'apply patch. Specified patch version: '
                                                         'v2, expected: v1'))

    def test_every_write_bumps_the_rv_and_is_seen(self):
        made = self.create_svc('web')
        w = self.watch(SVC % self.ns, made['metadata']['resourceVersion'])
        rvs = []
        for ip in ('192.0.2.1', '192.0.2.2', '192.0.2.3'):
            out = self.ok('PATCH', SVC % self.ns + '/web/status',
                          {'status': {'loadBalancer': {'ingress': [{'ip': ip}]}}}, MERGE)
            rvs.append(out['metadata']['resourceVersion'])
        events = w.take(3)
        self.assertEqual([e['type'] for e in events], ['MODIFIED'] * 3)
        self.assertEqual([e['object']['metadata']['resourceVersion'] for e in events], rvs)
        self.assertEqual(events[-1]['object']['status']['loadBalancer']['ingress'][0]['ip'],
                         '192.0.2.3')
        w.close()


class TestPatchEveryKind(Base):
    """PATCH and /status on the kinds other than Service."""

    def test_event_series_by_merge_patch(self):
        ev = {'apiVersion': 'events.k8s.io/v1', 'kind': 'Event', 'metadata': {'name': 'web.1'},
              'eventTime': '2026-12-02T17:00:00.000000Z', 'reportingController': 'example.com/lb',
              'reportingInstance': 'example.com/lb-node-a', 'action': 'Assign',
              'reason': 'IPAllocated', 'type': 'Normal', 'note': 'Assigned IP 192.0.2.10',
              'regarding': {'kind': 'Service', 'namespace': self.ns, 'name': 'web'}}
        self.ok('POST', EVENTS % self.ns, ev, code=201)
        # client-go's recorder (tools/events) updates the series with a merge patch.
        series = {'series': {'count': 2, 'lastObservedTime': '2026-12-02T17:00:05.000000Z'}}
        upd = self.ok('PATCH', EVENTS % self.ns + '/web.1', series, MERGE)
        self.assertEqual(upd['series'], series['series'])
        r = self.call('PATCH', EVENTS % self.ns + '/web.1', {'series': {'count': 1,
                      'lastObservedTime': '2026-12-02T17:00:06.000000Z'}}, MERGE)
        self.assertEqual((r.status, r.body['message']),
                         (422, 'Event.events.k8s.io "web.1" is invalid: series.count: Invalid '
                          'value: "": should be at least 2'))
        r = self.call('PATCH', EVENTS % self.ns + '/web.1', {'note': 'changed'}, MERGE)
        self.assertEqual(r.body['details']['causes'][0]['field'], 'message')

    def test_endpointslice_patch(self):
        self.ok('POST', SLICES % self.ns, {'metadata': {'name': 'web-1'}, 'addressType': 'IPv4',
                                           'endpoints': [{'addresses': ['10.0.0.1']}]}, code=201)
        r = self.call('PATCH', SLICES % self.ns + '/web-1', {'addressType': 'IPv6'}, MERGE)
        self.assertIn('addressType: Invalid value: "IPv6": field is immutable', r.body['message'])
        r = self.call('PATCH', SLICES % self.ns + '/web-1',
                      {'endpoints': [{'addresses': ['fd00::1']}]}, MERGE)
        self.assertIn('endpoints[0].addresses[0]: Invalid value: "fd00::1": must be a valid IPv4 '
                      'address', r.body['message'])
        out = self.ok('PATCH', SLICES % self.ns + '/web-1', [
            {'op': 'add', 'path': '/endpoints/-', 'value': {'addresses': ['10.0.0.2']}}],
            JSONPATCH)
        self.assertEqual((len(out['endpoints']), out['metadata']['generation']), (2, 2))

    def test_lease_renewal_by_patch(self):
        self.ok('POST', LEASES % self.ns, self.lease('l', 'a'), code=201)
        out = self.ok('PATCH', LEASES % self.ns + '/l',
                      {'spec': {'renewTime': '2026-12-02T17:00:02.000000Z'}}, MERGE)
        self.assertEqual(out['spec']['renewTime'], '2026-12-02T17:00:02.000000Z')
        # A patch whose result the decoder refuses: 422 on the field "patch".
        r = self.call('PATCH', LEASES % self.ns + '/l',
                      {'spec': {'renewTime': '2026-12-02T17:00:01.5Z'}}, MERGE)
        self.assertEqual((r.status, r.body['details']['causes'][0]['field']), (422, 'patch'))
        self.assertIn('cannot parse ".5Z" as ".000000"', r.body['message'])

    def test_node_status_subresource(self):
        made = self.ok('POST', NODES, {'metadata': {'name': 'node-s'}, 'spec': {},
                                       'status': {'addresses': [{'type': 'InternalIP',
                                                                 'address': '192.0.2.1'}]}},
                       code=201)
        made['spec']['unschedulable'] = True
        made['status']['addresses'][0]['address'] = '192.0.2.2'
        st = self.ok('PUT', NODES + '/node-s/status', made)  # takes status, keeps spec
        self.assertEqual((st['spec'], st['status']['addresses'][0]['address']),
                         ({}, '192.0.2.2'))
        # Node conditions merge by type under a strategic merge patch.
        ready = {'type': 'Ready', 'status': 'True'}
        self.ok('PATCH', NODES + '/node-s/status', {'status': {'conditions': [ready]}}, SMP)
        out = self.ok('PATCH', NODES + '/node-s/status', {'status': {'conditions': [
            {'type': 'DiskPressure', 'status': 'False'}]}}, SMP)
        self.assertEqual([c['type'] for c in out['status']['conditions']],
                         ['Ready', 'DiskPressure'])
        self.ok('DELETE', NODES + '/node-s')


# ---------------------------------------------------------------------------------------------
# 4. Service defaulting and allocation

class TestServiceDefaults(Base):

    def test_defaults(self):
        out = self.ok('POST', SVC % self.ns, {'metadata': {'name': 'plain'},
                                               'spec': {'ports': [{'port': 80}]},
                                               'status': {'loadBalancer': {'ingress': [
                                                   {'ip': '192.0.2.1'}]}}}, code=201)
        spec = out['spec']
        self.assertEqual(spec['type'], 'ClusterIP')
        self.assertEqual(spec['ports'], [{'port': 80, 'protocol': 'TCP', 'targetPort': 80}])
        self.assertEqual((spec['sessionAffinity'], spec['internalTrafficPolicy']),
                         ('None', 'Cluster'))
        self.assertEqual((spec['ipFamilies'], spec['ipFamilyPolicy']), (['IPv4'], 'SingleStack'))
        self.assertEqual(spec['clusterIPs'], [spec['clusterIP']])
        self.assertTrue(spec['clusterIP'].startswith('10.'))
        self.assertNotIn('externalTrafficPolicy', spec)
        self.assertEqual(out['status'], {'loadBalancer': {}})  # a create never sets status
        lb = self.create_svc('lb', sessionAffinity='ClientIP')['spec']
        self.assertEqual((lb['externalTrafficPolicy'], lb['allocateLoadBalancerNodePorts']),
                         ('Cluster', True))
        self.assertEqual(lb['sessionAffinityConfig'], {'clientIP': {'timeoutSeconds': 10800}})
        self.assertTrue(30000 <= lb['ports'][0]['nodePort'] <= 32767)
        self.assertNotIn('healthCheckNodePort', lb)

    def test_node_ports_are_unique(self):
        a = self.create_svc('a', ports=[{'name': 'dns', 'port': 53, 'protocol': 'UDP'},
                                        {'name': 'dns-tcp', 'port': 53, 'protocol': 'TCP'},
                                        {'name': 'http', 'port': 80}])['spec']
        b = self.create_svc('b', 'NodePort')['spec']
        ports = [p['nodePort'] for p in a['ports']] + [b['ports'][0]['nodePort']]
        self.assertEqual(ports[0], ports[1])  # one nodePort for 53/UDP and 53/TCP
        self.assertEqual(len(set(ports)), 3)
        r = self.call('POST', SVC % self.ns, self.svc('c', ports=[
            {'name': 'x', 'port': 81, 'nodePort': ports[2]}]))
        self.assertEqual(r.body['message'], 'Service "c" is invalid: spec.ports[0].nodePort: '
                         'Invalid value: %d: provided port is already allocated' % ports[2])
        r = self.call('POST', SVC % self.ns, self.svc('c', ports=[
            {'name': 'x', 'port': 81, 'nodePort': 29999}]))
        self.assertEqual(r.body['message'], 'Service "c" is invalid: spec.ports[0].nodePort: '
                         'Invalid value: 29999: provided port is not in the valid range. The '
                         'range of valid ports is 30000-32767')
        none = self.create_svc('d', allocateLoadBalancerNodePorts=False)['spec']
        self.assertNotIn('nodePort', none['ports'][0])
        r = self.call('POST', SVC % self.ns, self.svc('e', 'ClusterIP', ports=[
            {'port': 80, 'nodePort': 31999}]))
        self.assertEqual(r.body['message'], 'Service "e" is invalid: spec.ports[0].nodePort: '
                         "Forbidden: may not be used when `type` is 'ClusterIP'")

    def test_health_check_node_port(self):
        local = self.create_svc('local', externalTrafficPolicy='Local')['spec']
        self.assertTrue(30000 <= local['healthCheckNodePort'] <= 32767)
        self.assertNotEqual(local['healthCheckNodePort'], local['ports'][0]['nodePort'])
        r = self.call('POST', SVC % self.ns, self.svc('c', healthCheckNodePort=31000))
        self.assertEqual(r.body['message'], 'Service "c" is invalid: spec.healthCheckNodePort: '
                         "Invalid value: 31000: may only be set when `type` is 'LoadBalancer' "
                         "and `externalTrafficPolicy` is 'Local'")
        r = self.call('POST', SVC % self.ns, self.svc('d', externalTrafficPolicy='Local',
                                                      healthCheckNodePort=local[
                                                          'healthCheckNodePort']))
        self.assertEqual(r.status, 500)
        self.assertEqual(r.body['message'], 'Internal error occurred: failed to allocate '
                         'requested HealthCheck NodePort %d: provided port is already allocated'
                         % local['healthCheckNodePort'])

    def test_load_balancer_class(self):
        r = self.call('POST', SVC % self.ns, self.svc('c', 'ClusterIP',
                                                      loadBalancerClass='example.com/lb'))
        self.assertEqual(r.body['details']['causes'], [{
            'reason': 'FieldValueForbidden', 'message': "Forbidden: may only be used when `type` "
            "is 'LoadBalancer'", 'field': 'spec.loadBalancerClass'}])
        made = self.create_svc('web', loadBalancerClass='example.com/lb')
        made['spec']['loadBalancerClass'] = 'example.com/other'
        r = self.call('PUT', SVC % self.ns + '/web', made)
        self.assertEqual(r.body['message'], 'Service "web" is invalid: spec.loadBalancerClass: '
                         'Invalid value: "example.com/other": may not change once set')
        unset = self.create_svc('unset')
        r = self.call('PATCH', SVC % self.ns + '/unset',
                      {'spec': {'loadBalancerClass': 'example.com/lb'}}, MERGE)
        self.assertEqual(r.status, 422)  # not even nil -> set while LoadBalancer
        del unset
        r = self.call('POST', SVC % self.ns, self.svc('bad', loadBalancerClass='-x-'))
        self.assertIn('spec.loadBalancerClass: Invalid value: "-x-": name part must consist of',
                      r.body['message'])

    def test_type_change_wipes_dependent_fields_and_lb_status(self):
        made = self.create_svc('web', externalTrafficPolicy='Local',
                               loadBalancerClass='example.com/lb')
        self.ok('PATCH', SVC % self.ns + '/web/status',
                {'status': {'loadBalancer': {'ingress': [{'ip': '192.0.2.10'}]}}}, MERGE)
        out = self.ok('PATCH', SVC % self.ns + '/web', {'spec': {'type': 'ClusterIP'}}, MERGE)
        spec = out['spec']
        for gone in ('loadBalancerClass', 'healthCheckNodePort', 'allocateLoadBalancerNodePorts',
                     'externalTrafficPolicy'):
            self.assertNotIn(gone, spec)
        self.assertNotIn('nodePort', spec['ports'][0])
        self.assertEqual(spec['clusterIP'], made['spec']['clusterIP'])
        # dropTypeDependentFields clears status.loadBalancer with the type change: the real
        # apiserver does, so a controller never sees a stale ingress on a non-LB Service.
        self.assertEqual(out['status'], {'loadBalancer': {}})
        # The released node ports can be taken by another Service.
        again = self.create_svc('next', ports=[{'name': 'x', 'port': 80, 'nodePort':
                                                made['spec']['ports'][0]['nodePort']}])
        self.assertEqual(again['spec']['ports'][0]['nodePort'],
                         made['spec']['ports'][0]['nodePort'])

    def test_update_keeps_allocated_values_and_cluster_ip_is_immutable(self):
        made = self.create_svc('web', externalTrafficPolicy='Local')
        bare = self.svc('web', externalTrafficPolicy='Local')
        bare['metadata']['resourceVersion'] = made['metadata']['resourceVersion']
        out = self.ok('PUT', SVC % self.ns + '/web', bare)
        for k in ('clusterIP', 'clusterIPs', 'healthCheckNodePort'):
            self.assertEqual(out['spec'][k], made['spec'][k])
        self.assertEqual(out['spec']['ports'][0]['nodePort'], made['spec']['ports'][0]['nodePort'])
        out['spec']['clusterIP'] = '10.96.200.200'
        out['spec']['clusterIPs'] = ['10.96.200.200']
        r = self.call('PUT', SVC % self.ns + '/web', out)
        self.assertEqual(r.body['message'], 'Service "web" is invalid: spec.clusterIPs[0]: '
                         'Invalid value: "10.96.200.200": may not change once set')

    def test_requested_cluster_ip(self):
        made = self.create_svc('a', 'ClusterIP', clusterIP='10.96.100.100')
        self.assertEqual(made['spec']['clusterIPs'], ['10.96.100.100'])
        r = self.call('POST', SVC % self.ns, self.svc('b', 'ClusterIP', clusterIP='10.96.100.100'))
        self.assertEqual(r.body['message'], 'Service "b" is invalid: spec.clusterIPs: Invalid '
                         'value: []string{"10.96.100.100"}: failed to allocate IP 10.96.100.100: '
                         'provided IP is already allocated')
        r = self.call('POST', SVC % self.ns, self.svc('c', 'ClusterIP', clusterIP='192.0.2.1'))
        self.assertEqual(r.body['message'], 'Service "c" is invalid: spec.clusterIPs: Invalid '
                         'value: []string{"192.0.2.1"}: failed to allocate IP 192.0.2.1: the '
                         'provided IP (192.0.2.1) is not in the valid range. The range of valid '
                         'IPs is 10.96.0.0/12')
        headless = self.create_svc('h', 'ClusterIP', clusterIP='None')
        self.assertEqual(headless['spec']['clusterIPs'], ['None'])


# ---------------------------------------------------------------------------------------------
# 5. Faults per verb and resource, the request log

class TestFaults(Base):

    def test_fault_on_patches_to_status(self):
        self.create_svc('web')
        self.ok('POST', '/fake/inject', {'verb': 'patch', 'resource': 'services/status',
                                         'status': 409, 'count': 2})
        body = {'status': {'loadBalancer': {'ingress': [{'ip': '192.0.2.10'}]}}}
        self.assertEqual(self.call('GET', SVC % self.ns + '/web').status, 200)  # not a patch
        self.assertEqual(self.call('PATCH', SVC % self.ns + '/web', {}, MERGE).status, 200)
        for _ in range(2):
            r = self.call('PATCH', SVC % self.ns + '/web/status', body, MERGE)
            self.assertEqual(r.body, status_body(
                409, 'Conflict', 'Operation cannot be fulfilled on services "web": the object '
                'has been modified; please apply your changes to the latest version and try '
                'again', {'name': 'web', 'kind': 'services'}))
        self.assertEqual(self.call('PATCH', SVC % self.ns + '/web/status', body, MERGE).status,
                         200)
        self.ok('POST', '/fake/inject', {'path': SVC % '*' + '/*/status', 'method': 'PATCH',
                                         'status': 503})
        r = self.call('PATCH', SVC % self.ns + '/web/status', body, MERGE)
        self.assertEqual((r.status, r.body['reason']), (503, 'ServiceUnavailable'))

    def test_writes_hang(self):
        made = self.ok('POST', LEASES % self.ns, self.lease('l', 'a'), code=201)
        self.ok('POST', '/fake/inject', {'verb': 'update', 'resource': 'leases', 'delay': 0.4})
        t0 = time.monotonic()
        self.ok('PUT', LEASES % self.ns + '/l', made)
        self.assertGreaterEqual(time.monotonic() - t0, 0.4)
        # A client that gives up first still had its write committed when it is after_commit.
        self.ok('POST', '/fake/inject', {'verb': 'create', 'resource': 'leases', 'delay': 1.5,
                                         'after_commit': True})
        with self.assertRaises(socket.timeout):
            self.call('POST', LEASES % self.ns, self.lease('slow', 'a'), timeout=0.3)
        self.assertEqual(self.eventually(lambda: self.call('GET', LEASES % self.ns + '/slow')
                                         .status), 200)

    def test_connection_reset_and_failure_after_commit(self):
        self.ok('POST', '/fake/inject', {'verb': 'create', 'reset': True})
        with self.assertRaises((ConnectionResetError, http.client.RemoteDisconnected)):
            self.call('POST', SVC % self.ns, self.svc('web'))
        self.assertEqual(self.call('GET', SVC % self.ns + '/web').status, 404)
        self.ok('POST', '/fake/inject', {'verb': 'create', 'status': 500, 'after_commit': True})
        r = self.call('POST', SVC % self.ns, self.svc('web'))
        self.assertEqual((r.status, r.body['reason']), (500, 'InternalError'))
        self.assertEqual(self.call('GET', SVC % self.ns + '/web').status, 200)  # yet it is there

    def test_request_log(self):
        since = self.requests()['next']
        self.create_svc('web')
        self.call('PATCH', SVC % self.ns + '/web/status?fieldManager=lb',
                  {'status': {}}, MERGE)
        self.call('GET', LEASES % self.ns + '?watch=1&timeoutSeconds=0')
        self.call('GET', NODES + '/nope')
        self.call('DELETE', SVC % self.ns + '/web')
        log = self.requests(since)['requests']
        keys = ('method', 'verb', 'apiGroup', 'resource', 'subresource', 'namespace', 'name',
                'status')
        self.assertEqual([tuple(r.get(k) for k in keys) for r in log], [
            ('POST', 'create', '', 'services', '', self.ns, None, 201),
            ('PATCH', 'patch', '', 'services', 'status', self.ns, 'web', 200),
            ('GET', 'watch', 'coordination.k8s.io', 'leases', '', self.ns, None, 200),
            ('GET', 'get', '', 'nodes', '', '', 'nope', 404),
            ('DELETE', 'delete', '', 'services', '', self.ns, 'web', 200)])
        self.assertEqual(log[1]['content_type'], MERGE)
        self.assertEqual(log[1]['query'], {'fieldManager': 'lb'})
        self.assertEqual(json.loads(log[1]['body']), {'status': {}})
        self.assertEqual(log[2]['apiVersion'], 'v1')

    def test_watch_event_log(self):
        # What perf/provider_bench.py times from: when each watch wrote each event, on the
        # request log's clock; filtered events are not logged, a selector's GONE is a DELETED.
        self.create_svc('old')
        since_req = self.requests()['next']
        since = self.call('GET', '/fake/watch-events').body['next']
        w = self.watch(SVC % self.ns, self.rv())
        sel = Watch(Base.server.port, SVC % self.ns + '?watch=1&labelSelector=tier%%3Dweb&'
                    'resourceVersion=%s&timeoutSeconds=5' % self.rv())
        try:
            self.create_svc('web')
            self.assertEqual(w.next()['type'], 'ADDED')
            self.ok('PATCH', SVC % self.ns + '/old', {'metadata': {'labels': {'tier': 'web'}}},
                    MERGE)
            self.ok('PATCH', SVC % self.ns + '/old', {'metadata': {'labels': {'tier': 'db'}}},
                    MERGE)
            self.assertEqual([e['type'] for e in w.take(2)], ['MODIFIED', 'MODIFIED'])
            self.assertEqual([e['type'] for e in sel.take(2)], ['ADDED', 'DELETED'])
        finally:
            w.close()
            sel.close()
        # An event is logged once its write returned: the client may have read it a moment
        # before; wait (bounded) for the five.
        deadline = time.monotonic() + 5
        log = self.call('GET', '/fake/watch-events?since=%d' % since).body
        while len(log['events']) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
            log = self.call('GET', '/fake/watch-events?since=%d' % since).body
        reqs = self.requests(since_req)['requests']
        watches = [r['seq'] for r in reqs if r['watch']]
        create = [r for r in reqs if r.get('verb') == 'create'][0]
        got = sorted((e['watch'], e['type'], e['name']) for e in log['events'])
        self.assertEqual(got, sorted([
            (watches[0], 'ADDED', 'web'), (watches[0], 'MODIFIED', 'old'),
            (watches[0], 'MODIFIED', 'old'), (watches[1], 'ADDED', 'old'),
            (watches[1], 'DELETED', 'old')]))
        added = [e for e in log['events'] if e['name'] == 'web'][0]
        self.assertEqual((added['resource'], added['namespace']), ('services', self.ns))
        self.assertGreaterEqual(added['t'], create['t'])
        self.assertEqual(log['next'], log['events'][-1]['seq'] + 1)
        self.ok('DELETE', '/fake/watch-events')
        self.assertEqual(self.call('GET', '/fake/watch-events').body['events'], [])


# ---------------------------------------------------------------------------------------------
# What the watcher tests (watcher_test.cpp) and the e2e suite rely on, unchanged

class TestControlApiAsBefore(Base):

    def test_control_objects_list_watch_and_list_faults(self):
        svc = {'kind': 'Service', 'metadata': {'namespace': self.ns, 'name': 'c'},
               'spec': {'type': 'LoadBalancer', 'clusterIP': '10.96.0.250'},
               'status': {'loadBalancer': {'ingress': [{'ip': '192.0.2.5', 'ipMode': 'VIP'}]}}}
        sl = {'kind': 'EndpointSlice', 'metadata': {'namespace': self.ns, 'name': 'c-1'},
              'addressType': 'IPv4', 'endpoints': [], 'ports': []}
        node = {'kind': 'Node', 'metadata': {'name': 'ctl-node'}}
        out = self.ok('POST', '/fake/objects', {'items': [svc, sl, node]})
        self.assertEqual(out['written'], 3)
        got = self.ok('GET', SVC % self.ns + '/c')
        self.assertEqual(got['status'], svc['status'])  # stored as given: no strategy here
        self.assertEqual(self.ok('GET', NODES + '/ctl-node')['metadata']['name'], 'ctl-node')
        # The control API's Services count for allocation: 10.96.0.250 is taken.
        r = self.call('POST', SVC % self.ns, self.svc('x', 'ClusterIP', clusterIP='10.96.0.250'))
        self.assertEqual(r.status, 422)
        self.ok('POST', '/fake/inject', {'path': SVC % self.ns, 'match': 'list', 'status': 500})
        self.assertEqual(self.call('POST', SVC % self.ns, self.svc('y')).status, 201)  # no GET
        self.assertEqual(self.call('GET', SVC % self.ns).status, 500)
        self.assertEqual(self.call('GET', SVC % self.ns).status, 200)
        self.ok('DELETE', '/fake/objects/nodes/ctl-node')
        self.ok('DELETE', '/fake/objects/services/%s/c' % self.ns)
        self.assertEqual(self.call('GET', NODES + '/ctl-node').status, 404)


def tearDownModule():
    if Base.server is not None:
        Base.server.stop()


if __name__ == '__main__':
    unittest.main()
