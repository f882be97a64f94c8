#!/usr/bin/env python3
"""Tests of the fake kube-apiserver itself (fake_apiserver.py): the write paths (POST, PUT,
DELETE) for Services, EndpointSlices, Nodes, Leases and Events, LIST and WATCH of every kind,
optimistic concurrency, finalizers; and that the control API the watcher tests rely on still
holds. One server for the whole file, started on a free port as watcher_test.cpp starts it; every
test works in a namespace of its own. Standard library only; run it with
    python3 tests/k8s_client/fake_apiserver_test.py -v"""

import http.client
import json
import os
import re
import select
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
            'Service "Web" is invalid: metadata.name: Invalid value: "Web": '))
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
        more = json.loads(json.dumps(deleting))
        more['metadata']['finalizers'].append('other.io/x')
        r = self.call('PUT', SVC % self.ns + '/web', more)
        self.assertEqual(r.status, 422)
        self.assertEqual(r.body['message'], 'Service "web" is invalid: metadata.finalizers: '
                         'Forbidden: no new finalizers can be added if the object is being '
                         'deleted, found new finalizers []string{"other.io/x"}')
        # Removing the last finalizer deletes it: 200 with the object as updated, then DELETED.
        del deleting['metadata']['finalizers']
        out = self.ok('PUT', SVC % self.ns + '/web', deleting)
        self.assertNotIn('finalizers', out['metadata'])
        ev = w.next()
        self.assertEqual(ev['type'], 'DELETED')
        self.assertEqual(ev['object']['metadata']['finalizers'], [self.FIN])  # the last state
        self.assertEqual(ev['object']['metadata']['resourceVersion'], self.rv())
        self.assertEqual(self.call('GET', SVC % self.ns + '/web').status, 404)
        w.close()

    def test_a_lease_without_finalizers_goes_at_once(self):
        made = self.ok('POST', LEASES % self.ns, self.lease('l', 'a'), code=201)
        w = self.watch(LEASES % self.ns, made['metadata']['resourceVersion'])
        self.ok('DELETE', LEASES % self.ns + '/l')
        self.assertEqual(w.next()['type'], 'DELETED')
        w.close()


# ---------------------------------------------------------------------------------------------
# What the watcher tests (watcher_test.cpp) and the e2e suite rely on, unchanged

class TestControlApiAsBefore(Base):

    def test_control_objects(self):
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
        self.ok('DELETE', '/fake/objects/nodes/ctl-node')
        self.ok('DELETE', '/fake/objects/services/%s/c' % self.ns)
        self.assertEqual(self.call('GET', NODES + '/ctl-node').status, 404)


def tearDownModule():
    if Base.server is not None:
        Base.server.stop()


if __name__ == '__main__':
    unittest.main()
