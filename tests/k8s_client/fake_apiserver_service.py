"""The fake kube-apiserver's Service strategy (see fake_apiserver.py and
fake_apiserver_strategy.py): defaulting, the main-endpoint/status split, type-dependent field
wiping, ClusterIP/NodePort/healthCheckNodePort allocation, and the validation an LB provider
meets (k8s-api.md §6.2, §7, §9.5, §10).

Read from pkg/registry/core/service/strategy.go (PrepareForCreate/Update, dropTypeDependentFields),
pkg/registry/core/service/storage/alloc.go and storage.go (beginCreate/beginUpdate,
patchAllocatedValues), pkg/apis/core/v1/defaults.go SetDefaults_Service, and
pkg/apis/core/validation/validation.go (ValidateService, ValidateServiceUpdate,
ValidateServiceStatusUpdate, ValidateLoadBalancerStatus, validateLoadBalancerClassField).

Simplifications: single-stack only (the family of --service-cidr; RequireDualStack is refused
as on a single-stack cluster); addresses and ports are handed out lowest-free-first, not at
random; what is "in use" is read from the stored Services at each write (no allocator bitmap
and no repair loop), so objects written through the control API count too."""

import ipaddress

from fake_apiserver_model import ApiError
from fake_apiserver_strategy import (MSG_IP, REASON, FieldError, Strategy, invalid,
                                     label1035_errors, not_supported, parse_ip,
                                     qualified_name_errors, subdomain_errors)

TYPES = ('ClusterIP', 'ExternalName', 'LoadBalancer', 'NodePort')


def needs_cluster_ip(spec):
    return spec.get('type') != 'ExternalName'


def needs_node_port(spec):
    return spec.get('type') in ('NodePort', 'LoadBalancer')


def needs_hc_node_port(spec):
    return spec.get('type') == 'LoadBalancer' and spec.get('externalTrafficPolicy') == 'Local'


def externally_accessible(spec):
    """pkg/api/service ExternallyAccessible."""
    return needs_node_port(spec) or (spec.get('type') == 'ClusterIP' and
                                     bool(spec.get('externalIPs')))


def node_ports(spec):
    return {p.get('nodePort') for p in spec.get('ports') or [] if p.get('nodePort')}


class ServiceStrategy(Strategy):

    def name_errors(self, name):
        return label1035_errors(name)  # Service names are DNS-1035 labels

    # --- decode-time defaulting ---------------------------------------------------------------
    def defaults(self, svc):
        """SetDefaults_Service (k8s-api.md §6.2). Runs on the object as decoded: for a PUT on
        /status the body's own spec.type decides whether ipMode is defaulted."""
        spec = svc.setdefault('spec', {})
        spec['type'] = spec.get('type') or 'ClusterIP'
        spec['sessionAffinity'] = spec.get('sessionAffinity') or 'None'
        if spec['sessionAffinity'] == 'None':
            spec.pop('sessionAffinityConfig', None)
        elif spec['sessionAffinity'] == 'ClientIP':
            cfg = spec.get('sessionAffinityConfig') or {}
            cip = cfg.get('clientIP') or {}
            cip.setdefault('timeoutSeconds', 10800)
            cfg['clientIP'] = cip
            spec['sessionAffinityConfig'] = cfg
        for p in spec.get('ports') or []:
            if not p.get('protocol'):
                p['protocol'] = 'TCP'
            if p.get('targetPort') in (None, 0, ''):
                p['targetPort'] = p.get('port')
        if externally_accessible(spec) and not spec.get('externalTrafficPolicy'):
            spec['externalTrafficPolicy'] = 'Cluster'
        if spec.get('internalTrafficPolicy') is None and spec['type'] != 'ExternalName':
            spec['internalTrafficPolicy'] = 'Cluster'
        status = svc.get('status')
        if not isinstance(status, dict):
            status = svc['status'] = {}
        lb = status.get('loadBalancer')
        if not isinstance(lb, dict):
            lb = status['loadBalancer'] = {}
        if spec['type'] == 'LoadBalancer':
            if spec.get('allocateLoadBalancerNodePorts') is None:
                spec['allocateLoadBalancerNodePorts'] = True
            for ing in lb.get('ingress') or []:
                if isinstance(ing, dict) and ing.get('ip') and ing.get('ipMode') is None:
                    ing['ipMode'] = 'VIP'

    # --- prepare ------------------------------------------------------------------------------
    def prepare_create(self, svc):
        svc['status'] = {'loadBalancer': {}}  # a create never sets status

    def prepare_update(self, new, old, sub):
        if sub == 'status':
            new['spec'] = old.get('spec', {})  # "status changes are not allowed to update spec"
            return
        new['status'] = old.get('status', {'loadBalancer': {}})
        self.drop_type_dependent(new['spec'], old.get('spec', {}), new)

    @staticmethod
    def drop_type_dependent(spec, old, svc):
        """dropTypeDependentFields: on a type change, wipe what the old type needed and the user
        did not also change; and clear status.loadBalancer whenever the type is not
        LoadBalancer ("Although LB de-provisioning is actually asynchronous, we don't need to
        expose the user to that complexity")."""
        if needs_cluster_ip(old) and not needs_cluster_ip(spec):
            if (spec.get('clusterIP') == old.get('clusterIP') and
                    spec.get('clusterIPs') == old.get('clusterIPs')):
                spec.pop('clusterIP', None)
                spec.pop('clusterIPs', None)
            if spec.get('ipFamilies') == old.get('ipFamilies'):
                spec.pop('ipFamilies', None)
            if spec.get('ipFamilyPolicy') == old.get('ipFamilyPolicy'):
                spec.pop('ipFamilyPolicy', None)
        if (needs_node_port(old) and not needs_node_port(spec) and
                node_ports(spec) <= node_ports(old)):
            for p in spec.get('ports') or []:
                p.pop('nodePort', None)
        if (needs_hc_node_port(old) and not needs_hc_node_port(spec) and
                spec.get('healthCheckNodePort') == old.get('healthCheckNodePort')):
            spec.pop('healthCheckNodePort', None)
        if old.get('type') == 'LoadBalancer' and spec.get('type') != 'LoadBalancer':
            a = spec.get('allocateLoadBalancerNodePorts')
            b = old.get('allocateLoadBalancerNodePorts')
            if a is not None and b is not None and a == b:
                spec.pop('allocateLoadBalancerNodePorts', None)
            if spec.get('loadBalancerClass') == old.get('loadBalancerClass'):
                spec.pop('loadBalancerClass', None)
        if (externally_accessible(old) and not externally_accessible(spec) and
                spec.get('externalTrafficPolicy') == old.get('externalTrafficPolicy')):
            spec.pop('externalTrafficPolicy', None)
        if spec.get('type') != 'LoadBalancer':
            svc['status']['loadBalancer'] = {}

    # --- allocation (the REST layer, storage/alloc.go) ----------------------------------------
    def allocate(self, registry, svc, old, sub):
        if sub == 'status':
            return
        spec = svc['spec']
        ospec = old.get('spec', {}) if old else None
        if ospec is not None:
            self.patch_allocated_values(spec, ospec)
        if spec.get('clusterIP') and not spec.get('clusterIPs'):
            spec['clusterIPs'] = [spec['clusterIP']]
        elif spec.get('clusterIPs') and not spec.get('clusterIP'):
            spec['clusterIP'] = spec['clusterIPs'][0]
        meta = svc['metadata']
        used_ips, used_ports = registry.service_usage(meta.get('namespace', ''), meta['name'])
        name = meta['name']
        if needs_cluster_ip(spec):
            self.allocate_cluster_ip(registry, spec, ospec, used_ips, name)
        errs = []
        if needs_node_port(spec):
            lo, hi = registry.node_port_range
            auto = spec.get('type') == 'NodePort' or spec.get('allocateLoadBalancerNodePorts', True)
            mine = node_ports(ospec) if ospec else set()
            by_port = {}
            for i, p in enumerate(spec.get('ports') or []):
                np = p.get('nodePort') or 0
                path = 'spec.ports[%d].nodePort' % i
                if np and np not in mine and np not in by_port.values():
                    if not lo <= np <= hi:
                        errs.append(FieldError('invalid', path, np, 'provided port is not in the '
                                               'valid range. The range of valid ports is %d-%d' %
                                               (lo, hi)))
                    elif np in used_ports:
                        errs.append(FieldError('invalid', path, np,
                                               'provided port is already allocated'))
                elif not np and auto:
                    # One nodePort for the ports that share a number across protocols.
                    np = by_port.get(p.get('port')) or self.free_port(registry, used_ports, name)
                    p['nodePort'] = np
                if np:
                    used_ports.add(np)
                    by_port[p.get('port')] = np
        if errs:
            raise invalid('', 'Service', name, errs)
        if needs_hc_node_port(spec):
            hc = spec.get('healthCheckNodePort') or 0
            if not hc:
                spec['healthCheckNodePort'] = self.free_port(registry, used_ports, name)
            elif not (ospec and hc == ospec.get('healthCheckNodePort')):
                lo, hi = registry.node_port_range
                if hc in used_ports or not lo <= hc <= hi:
                    why = ('provided port is already allocated' if hc in used_ports else
                           'provided port is not in the valid range. The range of valid ports '
                           'is %d-%d' % (lo, hi))
                    msg = 'failed to allocate requested HealthCheck NodePort %d: %s' % (hc, why)
                    raise ApiError(500, 'InternalError', 'Internal error occurred: ' + msg,
                                   details={'causes': [{'message': msg}]})

    @staticmethod
    def patch_allocated_values(spec, old):
        """patchAllocatedValues: an update that leaves out allocated values keeps them (node
        ports matched by port name)."""
        if needs_cluster_ip(old) and needs_cluster_ip(spec):
            if not spec.get('clusterIP') and old.get('clusterIP'):
                spec['clusterIP'] = old['clusterIP']
            if not spec.get('clusterIPs') and old.get('clusterIPs'):
                spec['clusterIPs'] = list(old['clusterIPs'])
            for k in ('ipFamilies', 'ipFamilyPolicy'):
                if not spec.get(k) and old.get(k):
                    spec[k] = old[k]
        if needs_node_port(old) and needs_node_port(spec):
            used = node_ports(old) & node_ports(spec)
            by_name = {p.get('name', ''): p.get('nodePort') for p in old.get('ports') or []}
            for p in spec.get('ports') or []:
                if not p.get('nodePort'):
                    v = by_name.get(p.get('name', ''))
                    if v and v not in used:
                        p['nodePort'] = v
        if needs_hc_node_port(old) and needs_hc_node_port(spec):
            if not spec.get('healthCheckNodePort') and old.get('healthCheckNodePort'):
                spec['healthCheckNodePort'] = old['healthCheckNodePort']

    @staticmethod
    def allocate_cluster_ip(registry, spec, ospec, used_ips, name):
        net = registry.service_cidr
        family = 'IPv6' if net.version == 6 else 'IPv4'
        errs = []
        if (spec.get('ipFamilyPolicy') == 'RequireDualStack' or
                len(spec.get('ipFamilies') or []) > 1):
            errs.append(FieldError('invalid', 'spec.ipFamilyPolicy', spec.get('ipFamilyPolicy'),
                                   'this cluster is not configured for dual-stack services'))
        fams = spec.get('ipFamilies') or []
        if fams and fams[0] != family:
            errs.append(FieldError('invalid', 'spec.ipFamilies[0]', fams[0],
                                   'not configured on this cluster'))
        if errs:
            raise invalid('', 'Service', name, errs)
        spec['ipFamilies'] = [family]
        spec.setdefault('ipFamilyPolicy', 'SingleStack')
        ip = spec.get('clusterIP') or ''
        if ip == 'None':
            spec['clusterIPs'] = ['None']
            return
        if ip and ospec and ip == ospec.get('clusterIP'):
            return  # already ours
        if not ip:
            first = 1 if net.num_addresses > 2 else 0
            last = net.num_addresses - (1 if net.version == 4 and net.num_addresses > 2 else 0)
            for i in range(first, last):
                cand = str(net.network_address + i)
                if cand not in used_ips:
                    spec['clusterIP'] = cand
                    spec['clusterIPs'] = [cand]
                    return
            raise ApiError(500, 'InternalError', 'Internal error occurred: failed to allocate a '
                           'serviceIP: range is full')
        addr = parse_ip(ip)
        why = None
        if addr is None or addr not in net:
            why = ('the provided IP (%s) is not in the valid range. The range of valid IPs is %s'
                   % (ip, net))
        elif ip in used_ips:
            why = 'provided IP is already allocated'
        if why:
            raise invalid('', 'Service', name, [FieldError(
                'invalid', 'spec.clusterIPs', spec.get('clusterIPs') or [ip],
                'failed to allocate IP %s: %s' % (ip, why))])

    @staticmethod
    def free_port(registry, used_ports, name):
        lo, hi = registry.node_port_range
        for port in range(lo, hi + 1):
            if port not in used_ports:
                used_ports.add(port)
                return port
        raise ApiError(500, 'InternalError', 'Internal error occurred: failed to allocate a '
                       'nodePort: range is full')

    # --- validation ---------------------------------------------------------------------------
    def validate(self, svc):
        return self.validate_spec(svc['spec']) + self.validate_class(svc['spec'], None)

    def validate_update(self, new, old, sub):
        if sub == 'status':
            return self.validate_status(new)
        spec, ospec = new['spec'], old.get('spec', {})
        errs = self.validate_spec(spec) + self.validate_class(spec, ospec)
        if (needs_cluster_ip(ospec) and needs_cluster_ip(spec) and ospec.get('clusterIPs') and
                (spec.get('clusterIPs') or [''])[0] != ospec['clusterIPs'][0]):
            errs.append(FieldError('invalid', 'spec.clusterIPs[0]',
                                   (spec.get('clusterIPs') or [''])[0], 'may not change once set'))
        if (needs_hc_node_port(ospec) and needs_hc_node_port(spec) and
                ospec.get('healthCheckNodePort') and
                spec.get('healthCheckNodePort') != ospec.get('healthCheckNodePort')):
            errs.append(FieldError('invalid', 'spec.healthCheckNodePort',
                                   spec.get('healthCheckNodePort'), 'field is immutable'))
        return errs

    @staticmethod
    def validate_class(spec, ospec):
        """validateLoadBalancerClassField: only with type LoadBalancer; a label-style qualified
        name; no change (not even nil -> set) while the type stays LoadBalancer (§7)."""
        cls = spec.get('loadBalancerClass')
        errs = []
        if (ospec is not None and ospec.get('type') == 'LoadBalancer' and
                spec.get('type') == 'LoadBalancer' and cls != ospec.get('loadBalancerClass')):
            errs.append(FieldError('invalid', 'spec.loadBalancerClass', cls,
                                   'may not change once set'))
        if spec.get('type') == 'LoadBalancer':
            if cls is not None:
                errs += [FieldError('invalid', 'spec.loadBalancerClass', cls, m)
                         for m in qualified_name_errors(cls)]
        elif cls is not None:
            errs.append(FieldError('forbidden', 'spec.loadBalancerClass',
                                   detail="may only be used when `type` is 'LoadBalancer'"))
        return errs

    @staticmethod
    def validate_spec(spec):
        errs = []
        t = spec.get('type')
        if t not in TYPES:
            errs.append(not_supported('spec.type', t, TYPES))
        ports = spec.get('ports') or []
        if not ports and t != 'ExternalName' and spec.get('clusterIP') != 'None':
            errs.append(FieldError('required', 'spec.ports'))
        names, pairs, nps = set(), set(), set()
        for i, p in enumerate(ports):
            path = 'spec.ports[%d]' % i
            name = p.get('name') or ''
            if len(ports) > 1 and not name:
                errs.append(FieldError('required', path + '.name'))
            elif name and name in names:
                errs.append(FieldError('duplicate', path + '.name', name))
            names.add(name)
            port = p.get('port')
            if not isinstance(port, int) or not 1 <= port <= 65535:
                errs.append(FieldError('invalid', path + '.port', port,
                                       'must be between 1 and 65535, inclusive'))
            proto = p.get('protocol')
            if proto not in ('SCTP', 'TCP', 'UDP'):
                errs.append(not_supported(path + '.protocol', proto, ['SCTP', 'TCP', 'UDP']))
            if (port, proto) in pairs:
                errs.append(FieldError('duplicate', path, {'port': port, 'protocol': proto}))
            pairs.add((port, proto))
            np = p.get('nodePort') or 0
            if np and t in ('ClusterIP', 'ExternalName'):
                errs.append(FieldError('forbidden', path + '.nodePort',
                                       detail="may not be used when `type` is '%s'" % t))
            if np and (np, proto) in nps:
                errs.append(FieldError('duplicate', path + '.nodePort', np))
            nps.add((np, proto))
        if t == 'ExternalName':
            if spec.get('clusterIP'):
                errs.append(FieldError('forbidden', 'spec.clusterIP',
                                       detail='may not be set for ExternalName services'))
            if not spec.get('externalName'):
                errs.append(FieldError('required', 'spec.externalName'))
        elif spec.get('clusterIP') == 'None' and t in ('NodePort', 'LoadBalancer'):
            errs.append(FieldError('invalid', 'spec.clusterIPs[0]', 'None',
                                   "may not be set to 'None' for %s services" % t))
        elif (spec.get('clusterIP') not in (None, '', 'None') and
              parse_ip(spec['clusterIP']) is None):
            errs.append(FieldError('invalid', 'spec.clusterIPs[0]', spec['clusterIP'], MSG_IP))
        etp = spec.get('externalTrafficPolicy')
        if not externally_accessible(spec):
            if etp:
                errs.append(FieldError('invalid', 'spec.externalTrafficPolicy', etp,
                                       'may only be set for externally-accessible services'))
        elif etp not in ('Cluster', 'Local'):
            errs.append(not_supported('spec.externalTrafficPolicy', etp, ['Cluster', 'Local']))
        itp = spec.get('internalTrafficPolicy')
        if itp is not None and itp not in ('Cluster', 'Local'):
            errs.append(not_supported('spec.internalTrafficPolicy', itp, ['Cluster', 'Local']))
        hc = spec.get('healthCheckNodePort') or 0
        if hc and not needs_hc_node_port(spec):
            errs.append(FieldError('invalid', 'spec.healthCheckNodePort', hc,
                                   "may only be set when `type` is 'LoadBalancer' and "
                                   "`externalTrafficPolicy` is 'Local'"))
        sa = spec.get('sessionAffinity')
        if sa not in ('ClientIP', 'None'):
            errs.append(not_supported('spec.sessionAffinity', sa, ['ClientIP', 'None']))
        elif sa == 'ClientIP':
            to = ((spec.get('sessionAffinityConfig') or {}).get('clientIP') or {}).get(
                'timeoutSeconds')
            if not isinstance(to, int) or not 0 < to <= 86400:
                errs.append(FieldError('invalid',
                                       'spec.sessionAffinityConfig.clientIP.timeoutSeconds', to,
                                       'must be greater than 0 and less than 86400'))
        alloc = spec.get('allocateLoadBalancerNodePorts')
        if t == 'LoadBalancer' and alloc is None:
            errs.append(FieldError('required', 'spec.allocateLoadBalancerNodePorts'))
        elif t != 'LoadBalancer' and alloc is not None:
            errs.append(FieldError('forbidden', 'spec.allocateLoadBalancerNodePorts',
                                   detail="may only be used when `type` is 'LoadBalancer'"))
        if spec.get('loadBalancerSourceRanges') and t != 'LoadBalancer':
            errs.append(FieldError('forbidden', 'spec.loadBalancerSourceRanges',
                                   detail="may only be used when `type` is 'LoadBalancer'"))
        for i, cidr in enumerate(spec.get('loadBalancerSourceRanges') or []):
            try:
                ipaddress.ip_network(str(cidr).strip(), strict=False)
            except ValueError:
                errs.append(FieldError('invalid', 'spec.loadBalancerSourceRanges[%d]' % i, cidr,
                                       'must be a valid CIDR value, (e.g. 10.9.8.0/24 or '
                                       '2001:db8::/64)'))
        return errs

    @staticmethod
    def validate_status(svc):
        """ValidateServiceStatusUpdate: ValidateLoadBalancerStatus (§6.2) and the conditions
        (metav1 ValidateConditions)."""
        spec = svc.get('spec') or {}
        status = svc.get('status') or {}
        errs = []
        ingress = (status.get('loadBalancer') or {}).get('ingress') or []
        base = 'status.loadBalancer.ingress'
        if ingress and spec.get('type') != 'LoadBalancer':
            errs.append(FieldError('forbidden', base,
                                   detail="may only be used when `spec.type` is 'LoadBalancer'"))
            ingress = []
        for i, ing in enumerate(ingress):
            path = '%s[%d]' % (base, i)
            ip, mode, host = ing.get('ip') or '', ing.get('ipMode'), ing.get('hostname') or ''
            if ip and parse_ip(ip) is None:
                errs.append(FieldError('invalid', path + '.ip', ip, MSG_IP))
            if mode is None:
                if ip:
                    errs.append(FieldError('required', path + '.ipMode',
                                           detail='must be specified when `ip` is set'))
            elif not ip:
                errs.append(FieldError('forbidden', path + '.ipMode',
                                       detail='may not be specified when `ip` is not set'))
            elif mode not in ('Proxy', 'VIP'):
                errs.append(not_supported(path + '.ipMode', mode, ['Proxy', 'VIP']))
            if host:
                errs += [FieldError('invalid', path + '.hostname', host, m)
                         for m in subdomain_errors(host)]
                if parse_ip(host) is not None:
                    errs.append(FieldError('invalid', path + '.hostname', host,
                                           'must be a DNS name, not an IP address'))
            for j, pst in enumerate(ing.get('ports') or []):
                ppath = '%s.ports[%d]' % (path, j)
                if not isinstance(pst.get('port'), int) or not 1 <= pst['port'] <= 65535:
                    errs.append(FieldError('invalid', ppath + '.port', pst.get('port'),
                                           'must be between 1 and 65535, inclusive'))
                if not pst.get('protocol'):
                    errs.append(FieldError('required', ppath + '.protocol'))
                elif pst['protocol'] not in ('SCTP', 'TCP', 'UDP'):
                    errs.append(not_supported(ppath + '.protocol', pst['protocol'],
                                              ['SCTP', 'TCP', 'UDP']))
        errs += validate_conditions(status.get('conditions') or [], 'status.conditions')
        return errs


_REASON_MSG = ("a condition reason must start with alphabetic character, optionally followed by a "
               "string of alphanumeric characters or '_,:', and must end with an alphanumeric "
               "character or '_' (e.g. 'my_name',  or 'MY_NAME',  or 'MyName',  or "
               "'ReasonA,ReasonB',  or 'ReasonA:ReasonB', regex used for validation is "
               "'[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?')")


def validate_conditions(conds, base):
    """apimachinery metav1/validation ValidateConditions (a subset: type, status, reason,
    lastTransitionTime, message length, duplicate types)."""
    errs, seen = [], set()
    for i, c in enumerate(conds):
        path = '%s[%d]' % (base, i)
        t = c.get('type') or ''
        if not t:
            errs.append(FieldError('required', path + '.type', detail='must be set'))
        else:
            errs += [FieldError('invalid', path + '.type', t, m) for m in qualified_name_errors(t)]
            if t in seen:
                errs.append(FieldError('duplicate', path + '.type', t))
            seen.add(t)
        if c.get('status') not in ('False', 'True', 'Unknown'):
            errs.append(not_supported(path + '.status', c.get('status'),
                                      ['False', 'True', 'Unknown']))
        if not c.get('lastTransitionTime'):
            errs.append(FieldError('required', path + '.lastTransitionTime', detail='must be set'))
        reason = c.get('reason') or ''
        if not reason:
            errs.append(FieldError('required', path + '.reason', detail='must be set'))
        elif not REASON.match(reason):
            errs.append(FieldError('invalid', path + '.reason', reason, _REASON_MSG))
        if len(c.get('message') or '') > 32768:
            errs.append(FieldError('invalid', path + '.message', '', 'may not exceed 32768 '
                                   'characters'))
    return errs
