#include "dataplane/service.hpp"

#include <gtest/gtest.h>

#include <map>
#include <random>

#include "dataplane/parse.hpp"

namespace magline::dp {
namespace {

IpAddr ip(const char* s) { return *parse_ip(s); }

Backend backend(const char* addr, uint16_t port, BackendState state = BackendState::ready,
                uint32_t weight = 1) {
  return Backend{ip(addr), port, weight, state};
}

Service web(std::vector<Backend> backends) {
  Service s;
  s.name = "demo/web:http";
  s.frontends = {{ip("198.18.100.1"), 80, Protocol::tcp, FrontendKind::load_balancer}};
  s.backends = std::move(backends);
  s.table_size = 251;
  return s;
}

std::shared_ptr<const ServiceState> build_ok(Service s) {
  auto r = ServiceState::build(std::move(s));
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return *r;
}

TEST(Service, IdentitiesAndNames) {
  EXPECT_EQ(backend_id(ip("198.18.1.10"), 8080), "198.18.1.10:8080");
  EXPECT_EQ(backend_id(ip("2001:db8::10"), 8080), "[2001:db8::10]:8080");
  EXPECT_EQ(to_string(Frontend{ip("2001:db8::1"), 53, Protocol::udp, FrontendKind::node_port}),
            "[2001:db8::1]:53/udp");
}

TEST(Service, NewConnectionsGoOnlyToReadyBackends) {
  auto s = build_ok(web({backend("198.18.1.10", 8080), backend("198.18.1.11", 8080),
                         backend("198.18.1.12", 8080, BackendState::terminating)}));
  ASSERT_TRUE(s->has_backends());
  EXPECT_FALSE(s->serving_terminating());
  const auto counts = s->table().slot_counts();
  EXPECT_EQ(counts[2], 0u);
  EXPECT_EQ(counts[0] + counts[1], 251u);
  std::mt19937_64 rng(1);
  for (int i = 0; i < 1000; ++i) EXPECT_NE(s->backend(s->pick(rng())).addr, ip("198.18.1.12"));
}

TEST(Service, FallsBackToTerminatingBackendsWhenNoneIsReady) {
  auto s = build_ok(web({backend("198.18.1.10", 8080, BackendState::terminating),
                         backend("198.18.1.11", 8080, BackendState::terminating),
                         backend("198.18.1.12", 8080, BackendState::ready, 0)}));
  ASSERT_TRUE(s->has_backends());
  EXPECT_TRUE(s->serving_terminating());
  EXPECT_EQ(s->table().slot_counts()[2], 0u);
}

TEST(Service, NoUsableBackendIsExplicit) {
  EXPECT_FALSE(build_ok(web({}))->has_backends());
  EXPECT_FALSE(build_ok(web({backend("198.18.1.10", 8080, BackendState::ready, 0)}))->has_backends());
}

TEST(Service, BuildErrorsNameTheService) {
  auto dup = ServiceState::build(web({backend("198.18.1.10", 8080), backend("198.18.1.10", 8080)}));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().message,
            "service \"demo/web:http\": backend \"198.18.1.10:8080\" appears twice");
}

TEST(Service, SourceRanges) {
  Service spec = web({backend("198.18.1.10", 8080)});
  EXPECT_TRUE(build_ok(spec)->source_allowed(ip("203.0.113.9")));
  spec.source_ranges = {*parse_prefix("198.18.0.0/16", HostBits::reject),
                        *parse_prefix("198.19.5.0/24", HostBits::reject)};
  auto s = build_ok(spec);
  EXPECT_TRUE(s->source_allowed(ip("198.18.77.1")));
  EXPECT_TRUE(s->source_allowed(ip("198.19.5.200")));
  EXPECT_FALSE(s->source_allowed(ip("198.19.6.1")));
  EXPECT_FALSE(s->source_allowed(ip("2001:db8::1")));
}

TEST(FrontendMap, AgreesWithAReferenceMapUnderInsertAndErase) {
  FrontendMap map(4);
  std::map<std::tuple<uint32_t, uint16_t, uint8_t>, const ServiceState*> model;
  std::vector<std::shared_ptr<const ServiceState>> states;
  for (int i = 0; i < 8; ++i) states.push_back(build_ok(web({})));
  std::mt19937 rng(5);
  for (int op = 0; op < 50000; ++op) {
    const uint32_t a = 0xc6120000 | (rng() % 64);
    const uint16_t port = uint16_t(80 + rng() % 4);
    const uint8_t proto = rng() % 2 ? kProtoTcp : kProtoUdp;
    const Frontend f{IpAddr::v4(a), port, Protocol(proto), FrontendKind::load_balancer};
    const auto key = std::make_tuple(a, port, proto);
    if (rng() % 3 == 0) {
      EXPECT_EQ(map.erase(f), model.erase(key) == 1);
    } else {
      const ServiceState* s = states[rng() % states.size()].get();
      map.insert(f, s, 0);
      model[key] = s;
    }
    ASSERT_EQ(map.size(), model.size());
    if (op % 97 == 0) {
      // Every key of the space, held or not (the address filter's counts follow inserts,
      // replacements and erasures).
      for (uint32_t a2 = 0xc6120000; a2 < 0xc6120040; ++a2) {
        for (uint16_t p2 = 80; p2 < 84; ++p2) {
          for (const uint8_t pr : {kProtoTcp, kProtoUdp}) {
            const auto it = model.find(std::make_tuple(a2, p2, pr));
            ASSERT_EQ(map.find(IpAddr::v4(a2), p2, pr).service,
                      it == model.end() ? nullptr : it->second);
          }
        }
      }
    }
  }
  EXPECT_EQ(map.find(IpAddr::v4(1, 2, 3, 4), 80, kProtoTcp).service, nullptr);
}

TEST(FrontendMap, FamiliesAndProtocolsAreDistinct) {
  FrontendMap map;
  auto s4 = build_ok(web({}));
  auto s6 = build_ok(web({}));
  map.insert({IpAddr::v4(0, 0, 0, 0), 80, Protocol::tcp, FrontendKind::load_balancer}, s4.get(), 0);
  map.insert({ip("::"), 80, Protocol::tcp, FrontendKind::load_balancer}, s6.get(), 0);
  EXPECT_EQ(map.find(IpAddr::v4(0, 0, 0, 0), 80, kProtoTcp).service, s4.get());
  EXPECT_EQ(map.find(ip("::"), 80, kProtoTcp).service, s6.get());
  EXPECT_EQ(map.find(ip("::"), 80, kProtoUdp).service, nullptr);
  // From a flow key's address and family (the forwarder's lookup): the same bytes (all zero),
  // told apart by the family alone.
  FlowKey k;
  k.dst = IpAddr::v4(0, 0, 0, 0).bytes;
  EXPECT_EQ(map.find(k.dst, Family::v4, 80, kProtoTcp).service, s4.get());
  EXPECT_EQ(map.find(k.dst, Family::v6, 80, kProtoTcp).service, s6.get());
  EXPECT_EQ(map.find(k.dst, Family::v4, 81, kProtoTcp).service, nullptr);
}

TEST(Snapshot, IndexesFrontendsAndRefusesConflicts) {
  Service a = web({backend("198.18.1.10", 8080)});
  Service b = web({backend("198.18.1.11", 8080)});
  b.name = "demo/other:http";
  b.frontends[0].port = 8443;
  auto snap = Snapshot::build({a, b});
  ASSERT_TRUE(snap.ok()) << snap.error().message;
  EXPECT_EQ((*snap)->services().size(), 2u);
  EXPECT_EQ((*snap)->services()[0]->spec().name, "demo/other:http");  // sorted by name
  EXPECT_EQ((*snap)->find(ip("198.18.100.1"), 80, kProtoTcp)->spec().name, "demo/web:http");
  EXPECT_EQ((*snap)->find(ip("198.18.100.1"), 8443, kProtoTcp)->spec().name, "demo/other:http");
  EXPECT_EQ((*snap)->find(ip("198.18.100.1"), 80, kProtoUdp), nullptr);
  EXPECT_EQ((*snap)->find_by_name("demo/web:http")->spec().name, "demo/web:http");
  EXPECT_EQ((*snap)->find_by_name("nope"), nullptr);

  b.frontends[0].port = 80;
  auto clash = Snapshot::build({a, b});
  ASSERT_FALSE(clash.ok());
  EXPECT_EQ(clash.error().message,
            "frontend 198.18.100.1:80/tcp is claimed by services \"demo/other:http\" and "
            "\"demo/web:http\"");

  auto twice = Snapshot::build({a, a});
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.error().message, "two services are named \"demo/web:http\"");
}

TEST(Snapshot, SharesUnchangedServicesWithThePreviousOne) {
  Service a = web({backend("198.18.1.10", 8080)});
  Service b = web({backend("198.18.1.11", 8080)});
  b.name = "demo/other:http";
  b.frontends[0].port = 8443;
  auto first = *Snapshot::build({a, b});
  b.backends.push_back(backend("198.18.1.12", 8080));
  auto second = *Snapshot::build({a, b}, first.get());
  EXPECT_EQ(second->find_by_name("demo/web:http"), first->find_by_name("demo/web:http"));
  EXPECT_NE(second->find_by_name("demo/other:http"), first->find_by_name("demo/other:http"));
  EXPECT_EQ(second->find_by_name("demo/other:http")->spec().backends.size(), 2u);
}

}  // namespace
}  // namespace magline::dp
