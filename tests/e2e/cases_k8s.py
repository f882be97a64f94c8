"""The end-to-end cases on Services from the fake Kubernetes API server (tests/e2e/README.md,
"Cases"): forwarding, EndpointSlice changes under live connections, the provider, deletion and
the shipped RBAC. A mixin of e2e.Suite: `self` holds the run."""
import json
import time

from topology import (  # names, addresses, command helpers, cleanup
    AGENT, BACKENDS, CLIENT, Fail, LB_V4, NODE_PORT_K8S, PYTHON, VIP_K8S, VIP_K8S_ECHO, in_ns,
    run,
)
import k8s
from harness import (  # the process wrappers, clients, /metrics
    ADMIN_PORT, Agent, curl, http_series, stream_summary, tail, time_left,
)


class K8sCases:
    def wait_for_answer(self, url, seconds):
        """Seconds until the first HTTP answer through `url`, or a Fail."""
        t0 = time.monotonic()
        last = ""
        while time.monotonic() < t0 + seconds:
            self.magline.check_alive()
            body, last = curl(CLIENT, url, max_time=1)
            if body is not None:
                return time.monotonic() - t0
            time.sleep(0.1)
        raise Fail(f"no answer through {url} within {seconds} s ({last}); magline stderr:\n"
                   f"{tail(self.magline.stderr())}")

    def k8s_service(self, out):
        by_name = {b[1]: b[2] for b in BACKENDS}
        self.api.write(k8s.service("kweb", VIP_K8S, 80, node_port=NODE_PORT_K8S),
                       k8s.slice_("kweb", "a", 8080, ready=[by_name["b0"], by_name["b1"]]))
        took = self.wait_for_answer(f"http://{VIP_K8S}/", 5)
        out.append(f"Service written: first answer through {VIP_K8S}:80 after {took:.2f} s")
        n = 20
        answers, errors = http_series(CLIENT, f"http://{VIP_K8S}/", n)
        seen = sorted(set(a.get("backend") for a in answers))
        out.append(f"{len(answers)}/{n} answered by {seen}")
        problems = list(errors)
        if len(answers) == n and seen != ["b0", "b1"]:
            problems.append(f"answers from {seen}, not the slice's b0 and b1")
        np_answers, np_errors = http_series(CLIENT, f"http://{LB_V4}:{NODE_PORT_K8S}/", 5)
        out.append(f"NodePort {LB_V4}:{NODE_PORT_K8S}: {len(np_answers)}/5 answered")
        problems += np_errors
        state = run(["curl", "-s", "--max-time", "3", f"http://127.0.0.1:{ADMIN_PORT}/state"],
                    check=False).stdout
        try:
            names = [s["name"] for s in json.loads(state)["services"]]
        except (ValueError, KeyError, TypeError):
            names = None
        out.append(f"/state lists {names}")
        if not names or "e2e/kweb:main/tcp/v4" not in names:
            problems.append(f"/state does not list e2e/kweb:main/tcp/v4: {state[:300]!r}")
        if problems:
            raise Fail("\n".join(problems))

    def backend_counters_slice(self, out):
        """b0's counters keep counting up across EndpointSlice updates of e2e/kweb that remove
        b1 and add it back."""
        by_name = {b[1]: b[2] for b in BACKENDS}
        service = "e2e/kweb:main/tcp/v4"

        def update(names):
            self.api.write(k8s.slice_("kweb", "a", 8080, ready=[by_name[n] for n in names]))
            return lambda: True  # applied when /metrics lists the slice's backends

        self.counters_follow(out, service, VIP_K8S, "b0", [["b0"], ["b0", "b1"]], update,
                             "slice update")

    def k8s_stream(self, out):
        """A long-lived connection survives EndpointSlice changes that remove and add the other
        endpoints and mark its own terminating; new connections follow the slices."""
        seconds = 8.0
        if time_left(seconds + 8) < seconds + 8:
            raise Fail("out of time for the run: not started")
        by_name = {b[1]: b[2] for b in BACKENDS}
        everyone = [b[2] for b in BACKENDS]
        self.api.write(k8s.service("kecho", VIP_K8S_ECHO, 9000),
                       k8s.slice_("kecho", "a", 9000, ready=everyone))
        self.wait_for_echo(VIP_K8S_ECHO, 5)
        agent = Agent(CLIENT, ["stream", VIP_K8S_ECHO, "9000", str(seconds)], self.workdir,
                      "k8s-stream-client")
        self.agents.append(agent)
        first = agent.readline(5)
        hello = json.loads(first) if first else {}
        used = (hello.get("greeting") or "").rsplit(" ", 1)[-1]
        if used not in by_name:
            raise Fail(f"stream did not start: {first!r}: {tail(agent.stderr())}")
        others = [by_name[n] for n in by_name if n != used]
        out.append(f"stream on {used}; changing the slices under it")
        steps = [
            dict(ready=[by_name[used], others[0]]),
            dict(ready=[others[0]], terminating=[by_name[used]]),  # its pod is going away
            dict(ready=[others[1]], terminating=[by_name[used]]),
            dict(ready=everyone),
        ]
        for i, step in enumerate(steps):
            time.sleep(1.2)
            self.api.write(k8s.slice_("kecho", "a", 9000, **step))
            if i == 2:
                # New connections go only where the slice says: the ready endpoint.
                got = self.echo_backends(VIP_K8S_ECHO, 4)
                out.append(f"while {used} terminates, new connections reach {sorted(set(got))}")
                want = [n for n in by_name if by_name[n] == others[1]]
                if sorted(set(got)) != want:
                    raise Fail(f"new connections reached {got}, not only {want}")
        stream_summary(agent, seconds, f"{len(steps)} slice changes", out, [])

    def echo_backends(self, vip, n):
        """The backends n new connections to vip:9000 greet from."""
        names = []
        for _ in range(n):
            p = in_ns(CLIENT, PYTHON, AGENT, "stream", vip, "9000", "0.2", timeout=10,
                      check=False)
            lines = p.stdout.strip().splitlines()
            hello = json.loads(lines[0]) if lines else {}
            names.append((hello.get("greeting") or "none").rsplit(" ", 1)[-1])
        return names

    def wait_for_echo(self, vip, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.echo_backends(vip, 1)[0] != "none":
                return
            time.sleep(0.1)
        raise Fail(f"no greeting from {vip}:9000 within {seconds} s")

    def provider(self, out):
        """A Service written without a status gets an address from the pool and Magline's
        finalizer; real TCP to that address reaches its endpoints. Deleted through the API, its
        address stops answering before the finalizer goes, and then the Service is gone."""
        by_name = {b[1]: b[2] for b in BACKENDS}
        self.api.write(k8s.service("kprov", None, 80),
                       k8s.slice_("kprov", "a", 8080, ready=[by_name["b2"]]))
        ip, t0 = None, time.monotonic()
        while time.monotonic() < t0 + 5 and ip is None:
            svc = self.api.service_object("kprov") or {}
            ingress = svc.get("status", {}).get("loadBalancer", {}).get("ingress", [])
            if ingress:
                ip = ingress[0].get("ip")
            else:
                time.sleep(0.05)
        if ip is None:
            raise Fail(f"no address written into kprov's status within 5 s; magline stderr:\n"
                       f"{tail(self.magline.stderr())}")
        svc = self.api.service_object("kprov")
        out.append(f"kprov got {ip} ({ingress[0].get('ipMode')}) after "
                   f"{time.monotonic() - t0:.2f} s, finalizers {svc['metadata'].get('finalizers')}")
        problems = []
        if "magline.io/load-balancer" not in svc["metadata"].get("finalizers", []):
            problems.append("no magline.io/load-balancer finalizer")
        took = self.wait_for_answer(f"http://{ip}/", 5)
        answers, errors = http_series(CLIENT, f"http://{ip}/", 5)
        out.append(f"first answer through {ip}:80 after {took:.2f} s; "
                   f"{len(answers)}/5 answered by {sorted(set(a.get('backend') for a in answers))}")
        problems += errors
        if answers and {a.get("backend") for a in answers} != {"b2"}:
            problems.append("answers from other backends than the slice's b2")
        # The assignment told on the Service as an Event, and shown in /state's allocation table.
        events, t1 = [], time.monotonic()
        while time.monotonic() < t1 + 3 and not events:
            _, listed = self.api.api("GET", f"/apis/events.k8s.io/v1/namespaces/{k8s.NS}/events")
            events = [e for e in listed.get("items", [])
                      if e.get("regarding", {}).get("name") == "kprov"
                      and e.get("reason") == "IPAllocated"]
            if not events:
                time.sleep(0.1)
        out.append(f"Events on kprov: {[(e.get('type'), e.get('note')) for e in events]}")
        if len(events) != 1 or ip not in events[0].get("note", ""):
            problems.append(f"not one IPAllocated Event naming {ip} on kprov: {events}")
        state = run(["curl", "-s", "--max-time", "3", f"http://127.0.0.1:{ADMIN_PORT}/state"],
                    check=False).stdout
        try:
            allocations = json.loads(state)["provider"]["allocations"]
        except (ValueError, KeyError, TypeError):
            allocations = None
        mine = [a for a in allocations or [] if a.get("service") == f"{k8s.NS}/kprov"]
        out.append(f"/state allocation of kprov: {mine}")
        if len(mine) != 1 or mine[0].get("addresses") != [ip]:
            problems.append(f"/state's provider allocations do not hold kprov -> {ip}: "
                            f"{state[:300]!r}")
        # Deleted through the API: the finalizer holds it while the address is withdrawn.
        code, _ = self.api.api("DELETE", f"/api/v1/namespaces/{k8s.NS}/services/kprov")
        if code != 200:
            problems.append(f"DELETE answered {code}")
        answered_after_gone = False
        t0 = time.monotonic()
        silent_at = gone_at = None
        while time.monotonic() < t0 + 5 and gone_at is None:
            if silent_at is None:
                body, _ = curl(CLIENT, f"http://{ip}/", max_time=0.5)
                if body is None:
                    silent_at = time.monotonic() - t0
            if self.api.service_object("kprov") is None:
                gone_at = time.monotonic() - t0
                body, _ = curl(CLIENT, f"http://{ip}/", max_time=0.5)
                answered_after_gone = body is not None
            time.sleep(0.05)
        out.append(f"deleted: silent after {silent_at} s, gone (finalizer removed) after "
                   f"{gone_at} s")
        if gone_at is None:
            problems.append("kprov still there 5 s after its deletion (the finalizer stayed)")
        if silent_at is None or (gone_at is not None and silent_at > gone_at):
            problems.append("the address still answered when the finalizer went")
        if answered_after_gone:
            problems.append(f"{ip} answers after the Service is gone")
        if problems:
            raise Fail("\n".join(problems))

    def k8s_rbac(self, out):
        """Everything Magline asked of the API server in the cases above, as the shipped
        DaemonSet's service account under the shipped role: nothing forbidden, every rule used
        (but the one below, which a run without a lost race does not need)."""
        allow = {("", "services", "get"): "the provider reads a Service again only after a "
                 "write that lost a race (409); tests/deploy/run_test.py rbac injects one",
                 ("events.k8s.io", "events", "patch"): "an Event's series is patched only when "
                 "it repeats 30 s or more after its last write (tests/k8s_client/"
                 "event_writer_test.cpp writes one)",
                 ("", "nodes", "list"): "node targets only (kubernetes.targets nodes); "
                 "tests/deploy/run_test.py rbac runs them",
                 ("", "nodes", "watch"): "node targets only, as above"}
        forbidden, unused = self.api.rbac_findings(allow)
        out.append(f"{len(forbidden)} forbidden, unused grants: {unused or 'none'}")
        problems = [f"forbidden: {r}" for r in forbidden[:10]]
        problems += [f"granted, never used: {u}" for u in unused]
        if problems:
            raise Fail("\n".join(problems))

    def k8s_deleted(self, out):
        self.api.call("DELETE", f"/fake/objects/services/{k8s.NS}/kweb")
        t0 = time.monotonic()
        while time.monotonic() < t0 + 5:
            sent = time.monotonic()
            body, _ = curl(CLIENT, f"http://{VIP_K8S}/", max_time=1)
            if body is None:
                out.append(f"Service deleted: a request sent {sent - t0:.2f} s later got no "
                           f"answer")
                return
            time.sleep(0.1)
        raise Fail(f"{VIP_K8S}:80 still answers 5 s after its Service was deleted")
