"""The fake kube-apiserver's Service strategy (see fake_apiserver.py and
fake_apiserver_strategy.py): the main-endpoint/status split, the defaulting of status writes and
their validation (k8s-api.md §6.1, §6.2).

Read from pkg/registry/core/service/strategy.go (PrepareForCreate/Update, the status strategy),
pkg/apis/core/v1/defaults.go SetDefaults_Service and pkg/apis/core/validation/validation.go
(ValidateServiceStatusUpdate, ValidateLoadBalancerStatus).
"""

from fake_apiserver_strategy import (MSG_IP, REASON, FieldError, Strategy, label1035_errors,
                                     not_supported, parse_ip, qualified_name_errors,
                                     subdomain_errors)


class ServiceStrategy(Strategy):

    def name_errors(self, name):
        return label1035_errors(name)  # Service names are DNS-1035 labels

    # --- decode-time defaulting ---------------------------------------------------------------
    def defaults(self, svc):
        """SetDefaults_Service, the part status writes need: type ClusterIP, and ipMode VIP for
        an ingress with an ip on a LoadBalancer (k8s-api.md §6.2). Runs on the object as decoded:
        for a PUT on /status the body's own spec.type decides whether ipMode is defaulted."""
        spec = svc.setdefault('spec', {})
        spec['type'] = spec.get('type') or 'ClusterIP'
        status = svc.get('status')
        if not isinstance(status, dict):
            status = svc['status'] = {}
        lb = status.get('loadBalancer')
        if not isinstance(lb, dict):
            lb = status['loadBalancer'] = {}
        if spec['type'] == 'LoadBalancer':
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

    # --- validation ---------------------------------------------------------------------------
    def validate_update(self, new, old, sub):
        return self.validate_status(new) if sub == 'status' else []

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
