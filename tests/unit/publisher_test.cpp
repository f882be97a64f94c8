#include "control/publisher.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace magline::control {
namespace {

dp::IpAddr ip(const char* s) { return *dp::parse_ip(s); }

dp::Service svc(const std::string& name, const char* vip, uint16_t port,
                std::vector<const char*> backends) {
  dp::Service s;
  s.name = name;
  s.frontends = {{ip(vip), port, dp::Protocol::tcp, dp::FrontendKind::load_balancer}};
  for (const char* b : backends) s.backends.push_back({ip(b), 8080, 1, {}});
  s.table_size = 251;
  return s;
}

dp::Node one_port() {
  dp::Node n;
  n.ports.push_back({0, "lan0", {}, {{ip("198.18.0.1"), 16}}, 1500});
  return n;
}

TEST(Publisher, RebuildsOnlyWhatChangedAndRetiresWhatWasReplaced) {
  const dp::Node node = one_port();
  Publisher pub(node);
  auto first = pub.publish({svc("a", "198.18.100.1", 80, {"198.18.1.10"}),
                            svc("b", "198.18.100.2", 80, {"198.18.1.20"})},
                           0);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(first->built, 2u);
  EXPECT_EQ(first->updates.size(), 2u);
  EXPECT_TRUE(first->retired.empty());
  const dp::ServiceState* a1 = pub.find_by_name("a");
  ASSERT_NE(a1, nullptr);
  EXPECT_TRUE(a1->next_hop(0).has_value());

  auto second = pub.publish({svc("a", "198.18.100.1", 80, {"198.18.1.10"}),
                             svc("b", "198.18.100.2", 80, {"198.18.1.20", "198.18.1.21"})},
                            0);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->built, 1u);
  EXPECT_EQ(second->unchanged, 1u);
  EXPECT_EQ(pub.find_by_name("a"), a1);  // shared, not rebuilt
  ASSERT_EQ(second->retired.size(), 1u);
  EXPECT_EQ(second->retired[0]->spec().name, "b");
  // Removal of the old state's frontends first, then the install.
  ASSERT_EQ(second->updates.size(), 2u);
  EXPECT_EQ(second->updates[0].old_state, second->retired[0].get());
  EXPECT_EQ(second->updates[0].new_state, nullptr);
  EXPECT_EQ(second->updates[1].old_state, nullptr);
  EXPECT_EQ(second->updates[1].new_state, pub.find_by_name("b"));

  auto third = pub.publish({svc("b", "198.18.100.2", 80, {"198.18.1.20", "198.18.1.21"})}, 0);
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(third->removed, 1u);
  EXPECT_EQ(third->built, 0u);
  EXPECT_EQ(pub.find_by_name("a"), nullptr);
}

dp::Service dnat(const std::string& name, const char* vip, std::vector<const char*> backends) {
  dp::Service s = svc(name, vip, 80, std::move(backends));
  s.mode = dp::ForwardMode::dnat;
  return s;
}

// The DNAT backends' frontends, as the workers are told: backend "addr:port/proto" -> the
// frontend's address ("ambiguous"; "-": it serves none any more).
std::map<std::string, std::string> dnat_returns(const Publisher& pub, const Change& c) {
  std::map<std::string, std::string> out;
  for (const dp::Update& u : c.updates) {
    if (u.kind != dp::Update::Kind::dnat_return) continue;
    const dp::DnatReturnUpdate& r = u.dnat_return;
    const std::string key = dp::backend_id(r.backend.addr, r.backend.port) + "/" +
                            std::to_string(r.backend.proto);
    if (!r.valid) {
      out[key] = "-";
    } else if (r.frontend == dp::kAmbiguousFrontend) {
      out[key] = "ambiguous";
    } else {
      out[key] = dp::to_string(pub.registry().at(r.frontend).addr);
    }
  }
  return out;
}

TEST(Publisher, TellsTheWorkersEachDnatBackendsOneFrontendAsItChanges) {
  const dp::Node node = one_port();
  Publisher pub(node);
  // A LoadBalancer frontend and a NodePort (a node's own address: left out).
  dp::Service web = dnat("web", "198.18.100.1", {"198.18.1.10", "198.18.1.11"});
  web.frontends.push_back({ip("198.18.0.1"), 30080, dp::Protocol::tcp,
                           dp::FrontendKind::node_port});
  auto c = pub.publish({web, svc("full-nat", "198.18.100.9", 80, {"198.18.1.12"})}, 0);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(dnat_returns(pub, *c), (std::map<std::string, std::string>{
                                       {"198.18.1.10:8080/6", "198.18.100.1"},
                                       {"198.18.1.11:8080/6", "198.18.100.1"}}));
  // After the services (a worker translates to a registered frontend only).
  EXPECT_EQ(c->updates.back().kind, dp::Update::Kind::dnat_return);
  EXPECT_EQ(c->updates[c->updates.size() - 3].kind, dp::Update::Kind::service);

  // Another DNAT service on one of web's backends: it stays web's while web has it (web's
  // connections to it may hold no reply entry; api's record theirs).
  dp::Service api = dnat("api", "198.18.100.2", {"198.18.1.11"});
  c = pub.update({api}, {}, 0);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(dnat_returns(pub, *c).empty());
  // A backend two services gain in one change is neither's; once one of them leaves it, the
  // other's.
  c = pub.update({dnat("b1", "198.18.100.3", {"198.18.1.13"}),
                  dnat("b2", "198.18.100.4", {"198.18.1.13"})},
                 {}, 0);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(dnat_returns(pub, *c),
            (std::map<std::string, std::string>{{"198.18.1.13:8080/6", "ambiguous"}}));
  c = pub.update({}, {"b1"}, 0);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(dnat_returns(pub, *c),
            (std::map<std::string, std::string>{{"198.18.1.13:8080/6", "198.18.100.4"}}));
  c = pub.update({}, {"b2"}, 0);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(dnat_returns(pub, *c),
            (std::map<std::string, std::string>{{"198.18.1.13:8080/6", "-"}}));

  // A change that leaves the answers as they were tells nothing (weights, a backend of the
  // full-NAT service); a backend removed from "web" is web's no more.
  web.backends[0].weight = 5;
  c = pub.update({web}, {}, 0);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(dnat_returns(pub, *c).empty());
  web.backends.pop_back();
  c = pub.update({web}, {}, 0);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(dnat_returns(pub, *c),
            (std::map<std::string, std::string>{{"198.18.1.11:8080/6", "198.18.100.2"}}));

  c = pub.update({}, {"web", "api"}, 0);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(dnat_returns(pub, *c), (std::map<std::string, std::string>{
                                       {"198.18.1.10:8080/6", "-"},
                                       {"198.18.1.11:8080/6", "-"}}));
  // A failed change tells nothing.
  EXPECT_FALSE(pub.update({dnat("x", "198.18.100.9", {"198.18.1.10"})}, {}, 0).ok());
  c = pub.update({}, {"full-nat"}, 0);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(dnat_returns(pub, *c).empty());
}

TEST(Publisher, FrontendIdsAreStableWhileAFrontendLives) {
  const dp::Node node = one_port();
  Publisher pub(node);
  ASSERT_TRUE(pub.publish({svc("a", "198.18.100.1", 80, {"198.18.1.10"})}, 0).ok());
  const uint16_t id = pub.find_by_name("a")->frontend_id(0);
  ASSERT_TRUE(pub.publish({svc("a", "198.18.100.1", 80, {"198.18.1.11"})}, 0).ok());
  EXPECT_EQ(pub.find_by_name("a")->frontend_id(0), id);
  EXPECT_EQ(dp::to_string(pub.registry().at(id).addr), "198.18.100.1");
  // A frontend that moves to another service keeps its id too.
  ASSERT_TRUE(pub.publish({svc("z", "198.18.100.1", 80, {"198.18.1.11"})}, 0).ok());
  EXPECT_EQ(pub.find_by_name("z")->frontend_id(0), id);
  EXPECT_EQ(pub.registry().in_use(), 1u);
}

TEST(Publisher, AnInvalidSetChangesNothing) {
  const dp::Node node = one_port();
  Publisher pub(node);
  ASSERT_TRUE(pub.publish({svc("a", "198.18.100.1", 80, {"198.18.1.10"})}, 0).ok());
  const dp::ServiceState* before = pub.find_by_name("a");
  auto clash = pub.publish({svc("a", "198.18.100.1", 80, {"198.18.1.10"}),
                            svc("b", "198.18.100.1", 80, {"198.18.1.20"})},
                           0);
  ASSERT_FALSE(clash.ok());
  EXPECT_EQ(clash.error().message,
            "frontend 198.18.100.1:80/tcp is claimed by services \"a\" and \"b\"");
  EXPECT_EQ(pub.find_by_name("a"), before);
  EXPECT_EQ(pub.size(), 1u);
  EXPECT_EQ(pub.registry().in_use(), 1u);  // b's id was given back
  auto bad = pub.publish({svc("a", "198.18.100.1", 80, {"198.18.1.10", "198.18.1.10"})}, 0);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(pub.find_by_name("a"), before);
  EXPECT_EQ(pub.size(), 1u);
}

TEST(Publisher, UpdatesTouchOnlyTheServicesNamed) {
  const dp::Node node = one_port();
  Publisher pub(node);
  ASSERT_TRUE(pub.update({svc("a", "198.18.100.1", 80, {"198.18.1.10"}),
                          svc("b", "198.18.100.2", 80, {"198.18.1.20"})},
                         {}, 0)
                  .ok());
  const dp::ServiceState* a = pub.find_by_name("a");
  // Changing b leaves a alone; removing a name not held is no error.
  auto c = pub.update({svc("b", "198.18.100.2", 80, {"198.18.1.21"})}, {"nope"}, 0);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->built, 1u);
  EXPECT_EQ(c->removed, 0u);
  EXPECT_EQ(pub.find_by_name("a"), a);
  EXPECT_EQ(pub.size(), 2u);
  // The same spec again is recognised: no update at all.
  auto same = pub.update({svc("b", "198.18.100.2", 80, {"198.18.1.21"})}, {}, 0);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->unchanged, 1u);
  EXPECT_TRUE(same->updates.empty());
  // A frontend held by a service the change does not touch cannot be claimed...
  auto clash = pub.update({svc("c", "198.18.100.1", 80, {"198.18.1.30"})}, {}, 0);
  ASSERT_FALSE(clash.ok());
  EXPECT_EQ(clash.error().message,
            "frontend 198.18.100.1:80/tcp is claimed by services \"a\" and \"c\"");
  EXPECT_EQ(pub.size(), 2u);
  // ...but it can move in the same change that removes its holder.
  auto moved = pub.update({svc("c", "198.18.100.1", 80, {"198.18.1.30"})}, {"a"}, 0);
  ASSERT_TRUE(moved.ok()) << moved.error().message;
  EXPECT_EQ(moved->removed, 1u);
  ASSERT_EQ(moved->updates.size(), 2u);
  EXPECT_EQ(moved->updates[0].old_state, a);  // removal first
  EXPECT_EQ(moved->updates[1].new_state, pub.find_by_name("c"));
  EXPECT_EQ(pub.owner({ip("198.18.100.1"), 80, dp::Protocol::tcp, {}}), pub.find_by_name("c"));
  EXPECT_TRUE(pub.is_vip(ip("198.18.100.1")));
  EXPECT_TRUE(moved->new_vips.empty());  // the address was in use all along
  auto fresh = pub.update({svc("e", "198.18.100.5", 80, {})}, {}, 0);
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(fresh->new_vips, std::vector<dp::IpAddr>{ip("198.18.100.5")});
  ASSERT_TRUE(pub.update({}, {"e"}, 0).ok());
  // Names are unique within a change.
  EXPECT_FALSE(pub.update({svc("d", "198.18.100.4", 80, {}), svc("d", "198.18.100.5", 80, {})},
                          {}, 0)
                   .ok());
  EXPECT_FALSE(pub.update({svc("d", "198.18.100.4", 80, {})}, {"d"}, 0).ok());
  // The last user of an address gone: no longer a VIP.
  ASSERT_TRUE(pub.update({}, {"c"}, 0).ok());
  EXPECT_FALSE(pub.is_vip(ip("198.18.100.1")));
  EXPECT_TRUE(pub.is_vip(ip("198.18.100.2")));
  ASSERT_EQ(pub.services().size(), 1u);
  EXPECT_EQ(pub.services()[0]->spec().name, "b");
}

// Counter slots follow identities, not states: a service replaced by an update keeps the slots
// of the frontends and backends it keeps, so the workers' counters at those slots go on.
TEST(Publisher, AServiceKeepsTheCounterSlotsOfWhatItKeeps) {
  const dp::Node node = one_port();
  Publisher pub(node);
  ASSERT_TRUE(pub.publish({svc("a", "198.18.100.1", 80, {"198.18.1.10", "198.18.1.11"})}, 0).ok());
  const dp::ServiceState* a1 = pub.find_by_name("a");
  const uint32_t fe = a1->frontend_slot(0);
  const uint32_t kept = a1->backend_slot(1);  // 198.18.1.11
  auto second = pub.publish({svc("a", "198.18.100.1", 80, {"198.18.1.11", "198.18.1.12"})}, 0);
  ASSERT_TRUE(second.ok());
  const dp::ServiceState* a2 = pub.find_by_name("a");
  ASSERT_NE(a2, a1);
  EXPECT_EQ(a2->frontend_slot(0), fe);
  EXPECT_EQ(a2->backend_slot(0), kept);
  EXPECT_NE(a2->backend_slot(1), kept);
  EXPECT_EQ(pub.backend_slots_in_use(), 3u);  // .10 lives on in the retired state
  // Another service with the same backend address counts apart.
  ASSERT_TRUE(pub.update({svc("b", "198.18.100.2", 80, {"198.18.1.11"})}, {}, 0).ok());
  EXPECT_NE(pub.find_by_name("b")->backend_slot(0), kept);
}

// A slot is free again only once every state that named it is gone (workers and readers of the
// counters are past it), and reclaim() resets it before anything else may take it.
TEST(Publisher, ASlotIsResetAndReusedOnlyAfterItsLastStateIsFreed) {
  const dp::Node node = one_port();
  Publisher pub(node, 4, 2);  // two backend slots
  ASSERT_TRUE(pub.publish({svc("a", "198.18.100.1", 80, {"198.18.1.10", "198.18.1.11"})}, 0).ok());
  const uint32_t gone = pub.find_by_name("a")->backend_slot(0);
  std::vector<std::pair<bool, uint32_t>> resets;
  auto reset = [&](bool backend, uint32_t slot) { resets.emplace_back(backend, slot); };

  auto change = pub.publish({svc("a", "198.18.100.1", 80, {"198.18.1.11"})}, 0);
  ASSERT_TRUE(change.ok());
  ASSERT_EQ(change->retired.size(), 1u);
  // The old state is still alive (the workers may be using it): its slot stays taken.
  EXPECT_EQ(pub.reclaim(reset), 0u);
  EXPECT_FALSE(pub.update({svc("b", "198.18.100.2", 80, {"198.18.1.20"})}, {}, 0).ok());
  // An admin listener's copy of the service list keeps it alive too.
  std::shared_ptr<const dp::ServiceState> reader = change->retired[0];
  change->retired.clear();
  EXPECT_EQ(pub.reclaim(reset), 0u);
  reader.reset();
  EXPECT_EQ(pub.reclaim(reset), 1u);
  ASSERT_EQ(resets.size(), 1u);
  EXPECT_EQ(resets[0], std::make_pair(true, gone));
  ASSERT_TRUE(pub.update({svc("b", "198.18.100.2", 80, {"198.18.1.20"})}, {}, 0).ok());
  EXPECT_EQ(pub.find_by_name("b")->backend_slot(0), gone);
  // A refused change holds no slot: the one it took for a moment is free again at once.
  EXPECT_FALSE(pub.update({svc("c", "198.18.100.3", 80, {"198.18.1.30"})}, {}, 0).ok());
  EXPECT_EQ(pub.backend_slots_in_use(), 2u);
}

}  // namespace
}  // namespace magline::control
