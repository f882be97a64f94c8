// The control thread (control/control_thread.hpp) over a FakeLink: the test plays the workers
// (drains their update rings, reports their quiescent states, hands frames to the slow path)
// and calls turn() as the control loop would. Configuration files live in a temporary
// directory, rewritten before a reload as an operator would before a SIGHUP.
//
// Times stay below 1000 ms: the admin listener's copy of the service list (which keeps the
// states it names alive) is first taken at 1000 ms, so here a retired state is freed as soon as
// the Publication lets go of it.
//
// The Kubernetes feed cannot be handed to a ControlThread (start_kubernetes() builds its own
// watcher): its coalescing is tested on K8sFeed::poll with a Publisher, in k8s_feed_test.cpp.
#include "control/control_thread.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/wire.hpp"
#include "tests/unit/fake_link.hpp"

namespace magline::control {
namespace {

using test::Bytes;
using test::FakeLink;
using test::kBackendMac;
using test::kClientMac;
using test::kLbMac;
using test::Mac;
using test::Packet;
using test::SentFrame;

constexpr Mac kZeroMac{};
constexpr Mac kBroadcast{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

dp::IpAddr ip(const char* s) { return *dp::parse_ip(s); }

// A configuration file with `services` (JSON objects, comma-separated) on node 198.18.0.1.
std::string config_text(const std::string& services) {
  return R"({ "node": { "addresses": ["198.18.0.1"] }, "maglev": { "table_size": 251 },
              "services": [)" +
         services + "] }";
}

std::string service_json(const std::string& name, const std::string& vip,
                         const std::vector<std::string>& backends) {
  std::string s = R"({ "name": ")" + name + R"(", "frontends": [ { "kind": "load_balancer",
      "address": ")" + vip + R"(", "port": 80 } ], "backends": [)";
  for (size_t i = 0; i < backends.size(); ++i) {
    s += (i ? ", " : "") + std::string(R"({ "address": ")") + backends[i] + R"(", "port": 8080 })";
  }
  return s + "] }";
}

const std::string kWebDb =
    config_text(service_json("web", "198.18.100.1", {"198.18.1.10", "198.18.1.11"}) + ", " +
                service_json("db", "198.18.100.2", {"198.18.1.20"}));

// An update as text: "-name" removes a state, "+name" installs one.
std::string str(const dp::Update& u) {
  if (u.kind == dp::Update::Kind::neighbor) {
    return "neighbor " + dp::to_string(u.neighbor.ip) + " " + dp::to_string(u.neighbor.mac);
  }
  std::string s;
  if (u.old_state) s += "-" + u.old_state->spec().name;
  if (u.new_state) s += (s.empty() ? "+" : " +") + u.new_state->spec().name;
  return s;
}
// A worker's ring, drained, as sorted text (the order within a publish is the Publisher's).
std::vector<std::string> drained(FakeLink& link, size_t w) {
  std::vector<std::string> out;
  for (const dp::Update& u : link.drain(w)) out.push_back(str(u));
  std::sort(out.begin(), out.end());
  return out;
}
using Strings = std::vector<std::string>;

Bytes arp_request(const char* sender, const Mac& sender_mac, const char* target) {
  return Packet()
      .eth(sender_mac, kBroadcast)
      .arp(dp::kArpRequest, sender_mac, sender, kZeroMac, target)
      .pad(18)
      .bytes();
}
Bytes arp_reply(const char* sender, const Mac& sender_mac, const char* target,
                const Mac& target_mac) {
  return Packet()
      .eth(sender_mac, target_mac)
      .arp(dp::kArpReply, sender_mac, sender, target_mac, target)
      .pad(18)
      .bytes();
}

class ControlThreadTest : public ::testing::Test {
 protected:
  ControlThreadTest() {
    node_.ports.push_back({0, "lan0", dp::MacAddr{kLbMac}, {{ip("198.18.0.1"), 16}}, 1500});
    char tmpl[] = "/tmp/magline_control_thread_test_XXXXXX";
    dir_ = mkdtemp(tmpl);
    path_ = dir_ + "/magline.json";
  }
  ~ControlThreadTest() override {
    ct_.reset();  // its slow path gives its held frames back to the link's pool
    EXPECT_EQ(link_.pool.live, 0) << "buffers leaked";
    std::filesystem::remove_all(dir_);
  }

  void write(const std::string& text) { std::ofstream(path_, std::ios::trunc) << text; }

  // A control thread running the file `text`, published, and in effect on every worker.
  void start(const std::string& text) {
    write(text);
    auto config = cfg::load_config(path_);
    ASSERT_TRUE(config.ok()) << config.error().message;
    ct_ = std::make_unique<ControlThread>(std::move(config).value(), path_, node_, link_, admin_,
                                          log_);
    auto published = ct_->publish_configuration(0);
    ASSERT_TRUE(published.ok()) << published.error().message;
  }
  // The workers take a turn, then the control thread does.
  void turns(uint64_t now_ms, bool reload = false) {
    link_.turn_all();
    ct_->turn(now_ms, reload);
  }

  dp::Node node_;
  std::string dir_, path_;
  FakeLink link_{2};
  AdminView admin_;
  std::ostringstream log_;
  std::unique_ptr<ControlThread> ct_;  // after what it refers to: destroyed first
};

TEST_F(ControlThreadTest, PublishConfigurationSendsTheFilesServicesToEveryWorker) {
  start(kWebDb);
  EXPECT_EQ(ct_->services_from_file(), 2u);
  EXPECT_EQ(ct_->publisher().size(), 2u);
  EXPECT_EQ(ct_->counters().updates_published, 1u);
  for (size_t w = 0; w < 2; ++w) EXPECT_EQ(drained(link_, w), (Strings{"+db", "+web"}));
  for (size_t w = 0; w < 2; ++w) link_.quiescent(w);
  ct_->turn(1, false);
  EXPECT_TRUE(ct_->publication().in_effect());
  EXPECT_EQ(ct_->publication().completed(), 1u);
  EXPECT_GE(ct_->counters().last_update_ms, 0.0);
  EXPECT_EQ(ct_->publication().retiring(), 0u);
}

TEST_F(ControlThreadTest, AReloadPublishesOnlyWhatChanged) {
  start(kWebDb);
  turns(1);
  const dp::ServiceState* db = ct_->publisher().find_by_name("db");
  ASSERT_NE(db, nullptr);

  // web's backends change, db stays as it is, dns comes.
  write(config_text(service_json("web", "198.18.100.1", {"198.18.1.11", "198.18.1.12"}) + ", " +
                    service_json("db", "198.18.100.2", {"198.18.1.20"}) + ", " +
                    service_json("dns", "198.18.100.3", {"198.18.1.30"})));
  ct_->turn(2, true);
  EXPECT_EQ(ct_->counters().reloads, 1u);
  EXPECT_EQ(ct_->counters().reloads_refused, 0u);
  EXPECT_EQ(ct_->counters().updates_published, 2u);
  EXPECT_EQ(ct_->services_from_file(), 3u);
  EXPECT_EQ(ct_->publisher().find_by_name("db"), db);
  for (size_t w = 0; w < 2; ++w) EXPECT_EQ(drained(link_, w), (Strings{"+dns", "+web", "-web"}));
  EXPECT_EQ(ct_->publication().retiring(), 1u);  // the old web

  // A service gone from the file is removed.
  write(config_text(service_json("web", "198.18.100.1", {"198.18.1.11", "198.18.1.12"}) + ", " +
                    service_json("dns", "198.18.100.3", {"198.18.1.30"})));
  ct_->turn(3, true);
  for (size_t w = 0; w < 2; ++w) EXPECT_EQ(drained(link_, w), (Strings{"-db"}));
  EXPECT_EQ(ct_->services_from_file(), 2u);

  // The same file again: nothing to publish.
  ct_->turn(4, true);
  EXPECT_EQ(ct_->counters().reloads, 3u);
  EXPECT_EQ(ct_->counters().updates_published, 3u);
  for (size_t w = 0; w < 2; ++w) EXPECT_TRUE(link_.ring(w).empty());
}

TEST_F(ControlThreadTest, ABadFileIsRefusedAndNothingIsSent) {
  start(kWebDb);
  turns(1);
  const dp::ServiceState* web = ct_->publisher().find_by_name("web");
  const std::vector<std::string> bad = {
      "{ \"services\": [",                          // not JSON
      config_text(R"({ "name": "web", "frontends": [] })"),  // invalid
      // Two services claim one frontend.
      config_text(service_json("web", "198.18.100.1", {"198.18.1.10"}) + ", " +
                  service_json("www", "198.18.100.1", {"198.18.1.11"})),
  };
  uint64_t refused = 0;
  for (const std::string& text : bad) {
    SCOPED_TRACE(text);
    write(text);
    turns(10 + refused, true);
    EXPECT_EQ(ct_->counters().reloads_refused, ++refused);
    EXPECT_EQ(ct_->counters().updates_published, 1u);
    for (size_t w = 0; w < 2; ++w) {
      EXPECT_TRUE(link_.ring(w).empty());
      EXPECT_EQ(link_.share(w).applied(), 2u);  // the first publish only
    }
    EXPECT_EQ(ct_->publisher().find_by_name("web"), web);
    EXPECT_EQ(ct_->publisher().size(), 2u);
    EXPECT_EQ(ct_->services_from_file(), 2u);
  }
  EXPECT_EQ(ct_->counters().reloads, 3u);
  EXPECT_NE(log_.str().find("reload refused"), std::string::npos);
  // The file fixed: it goes through.
  write(config_text(service_json("web", "198.18.100.1", {"198.18.1.10"})));
  ct_->turn(20, true);
  EXPECT_EQ(ct_->counters().reloads_refused, refused);
  EXPECT_EQ(ct_->publisher().size(), 1u);
  EXPECT_EQ(drained(link_, 0), (Strings{"+web", "-db", "-web"}));
}

// ARP for a VIP, handed over by any worker, is answered through worker 0's ring; the asker is
// learned and every worker told.
TEST_F(ControlThreadTest, ArpForAVipIsAnsweredThroughSendFrame) {
  start(kWebDb);
  turns(1);
  link_.hand_slow(1, arp_request("198.18.0.10", kClientMac, "198.18.100.2"), dp::SlowReason::arp,
                  0);
  ct_->turn(2, false);
  EXPECT_EQ(link_.sent_frames,
            (std::vector<SentFrame>{
                {0, arp_reply("198.18.100.2", kLbMac, "198.18.0.10", kClientMac)}}));
  EXPECT_EQ(ct_->slow_path().arp_requests_answered, 1u);
  const std::string learned = "neighbor 198.18.0.10 " + dp::to_string(dp::MacAddr{kClientMac});
  for (size_t w = 0; w < 2; ++w) EXPECT_EQ(drained(link_, w), (Strings{learned}));

  // Not a VIP: no answer.
  link_.sent_frames.clear();
  link_.hand_slow(0, arp_request("198.18.0.10", kClientMac, "198.18.100.99"), dp::SlowReason::arp,
                  0);
  ct_->turn(3, false);
  EXPECT_TRUE(link_.sent_frames.empty());
  EXPECT_EQ(ct_->slow_path().arp_requests_answered, 1u);

  // Worker 0's ring full: the answer is dropped, counted, and its buffer freed.
  link_.refuse_frames = true;
  link_.hand_slow(0, arp_request("198.18.0.10", kClientMac, "198.18.100.1"), dp::SlowReason::arp,
                  0);
  ct_->turn(4, false);
  EXPECT_EQ(ct_->counters().control_tx_full, 1u);
  EXPECT_EQ(link_.pool.live, 0);
}

// A frame waiting for a backend's MAC: the slow path asks, the answer becomes a neighbour update
// for every worker (retiring nothing), and the held frame goes out completed.
TEST_F(ControlThreadTest, ANeighbourAnswerIsSentToEveryWorker) {
  start(kWebDb);
  turns(1);
  const auto waiting = [] {
    return Packet().eth(kZeroMac, kZeroMac).ipv4("198.18.0.1", "198.18.1.10").udp(40000, 8080);
  };
  link_.hand_slow(1, waiting().bytes(), dp::SlowReason::needs_neighbor, 0,
                  {ip("198.18.1.10"), 0});
  ct_->turn(2, false);
  EXPECT_EQ(link_.sent_frames,
            (std::vector<SentFrame>{{0, arp_request("198.18.0.1", kLbMac, "198.18.1.10")}}));
  for (size_t w = 0; w < 2; ++w) EXPECT_TRUE(link_.ring(w).empty());

  link_.sent_frames.clear();
  link_.hand_slow(0, arp_reply("198.18.1.10", kBackendMac, "198.18.0.1", kLbMac),
                  dp::SlowReason::arp, 0);
  ct_->turn(3, false);
  EXPECT_EQ(link_.sent_frames,
            (std::vector<SentFrame>{{0, waiting().eth(kLbMac, kBackendMac).bytes()}}));
  for (size_t w = 0; w < 2; ++w) {
    ASSERT_EQ(link_.ring(w).size(), 1u);
    const dp::Update& u = link_.ring(w).front();
    EXPECT_EQ(u.kind, dp::Update::Kind::neighbor);
    EXPECT_EQ(u.neighbor.ip, ip("198.18.1.10"));
    EXPECT_EQ(u.neighbor.mac, dp::MacAddr{kBackendMac});
    EXPECT_EQ(u.neighbor.port, 0u);
    EXPECT_TRUE(u.neighbor.valid);
  }
  EXPECT_EQ(ct_->publication().retiring(), 0u);
  EXPECT_FALSE(ct_->publication().in_effect());
  turns(4);
  EXPECT_TRUE(ct_->publication().in_effect());
  EXPECT_EQ(link_.tokens_taken(), 0u);  // nothing was retired: no grace period
}

// A removed backend's counter slot is reset in every worker's rows only once the state that
// named it is freed (two grace periods after the change is in the rings, then a turn); a kept
// backend's and the frontend's rows go on across the update.
TEST_F(ControlThreadTest, ARemovedBackendsRowIsResetOnlyOnceItsStateIsFreed) {
  start(config_text(service_json("web", "198.18.100.1", {"198.18.1.10", "198.18.1.11"})));
  turns(1);
  const dp::ServiceState* web = ct_->publisher().find_by_name("web");
  ASSERT_NE(web, nullptr);
  ASSERT_EQ(web->backend(0).addr, ip("198.18.1.10"));
  const uint32_t gone = web->backend_slot(0);
  const uint32_t kept = web->backend_slot(1);
  const uint32_t fe = web->frontend_slot(0);
  for (size_t w = 0; w < 2; ++w) {
    link_.traffic(w).backend(gone).traffic.add(100);
    link_.traffic(w).backend(kept).traffic.add(200);
    link_.traffic(w).frontend(fe).add(300);
  }
  const auto rows = [&](uint32_t slot) {
    std::vector<uint64_t> bytes;
    for (size_t w = 0; w < 2; ++w) bytes.push_back(link_.traffic(w).backend_total(slot).bytes);
    return bytes;
  };
  const std::vector<uint64_t> full{100, 100}, zero{0, 0}, kept_rows{200, 200};

  write(config_text(service_json("web", "198.18.100.1", {"198.18.1.11", "198.18.1.12"})));
  ct_->turn(2, true);  // the change is in the rings: T1
  const dp::ServiceState* next = ct_->publisher().find_by_name("web");
  ASSERT_NE(next, web);
  EXPECT_EQ(next->backend_slot(0), kept);
  EXPECT_EQ(next->frontend_slot(0), fe);
  EXPECT_EQ(ct_->publication().retiring(), 1u);
  EXPECT_EQ(rows(gone), full);
  turns(3);  // T1 passed: T2
  EXPECT_EQ(ct_->publication().retiring(), 1u);
  EXPECT_EQ(rows(gone), full);
  ct_->turn(4, false);  // nobody reported T2
  EXPECT_EQ(rows(gone), full);
  turns(5);  // T2 passed: the old state is freed, and its slot reset in the same turn
  EXPECT_EQ(ct_->publication().retiring(), 0u);
  EXPECT_EQ(rows(gone), zero);
  EXPECT_EQ(rows(kept), kept_rows);
  for (size_t w = 0; w < 2; ++w) EXPECT_EQ(link_.traffic(w).frontend_total(fe).bytes, 300u);
  EXPECT_EQ(ct_->publisher().backend_slots_in_use(), 2u);
}

// Readiness (sd_notify's READY=1): not before the configuration's services are in effect on
// every worker.
TEST_F(ControlThreadTest, ReadyOnlyOnceTheConfigurationIsInEffect) {
  start(kWebDb);
  EXPECT_FALSE(ct_->ready());  // published, not applied yet
  ct_->turn(0, false);
  EXPECT_FALSE(ct_->ready());  // in the rings, not applied
  for (uint64_t t = 1; t < 10 && !ct_->ready(); ++t)
    turns(t);
  EXPECT_TRUE(ct_->ready());
}

// BGP: what the control thread asks the announcer for, turn by turn (BIRD is absent: the
// announcer keeps retrying, and reports what it was asked).
TEST_F(ControlThreadTest, AnnouncesWhatTheWorkersForwardAndHoldsWhileAnUpdateIsInFlight) {
  const std::string bgp = R"(, "bgp": { "bird_config": ")" + dir_ + R"(/bird.conf",
      "bird_socket": ")" + dir_ + R"(/bird.ctl", "local_as": 65001, "router_id": "198.18.0.1",
      "peers": [ { "address": "198.18.0.254", "as": 65000, "multihop": true } ] } })";
  auto with_bgp = [&](const std::string& services) {
    std::string text = config_text(services);
    return text.substr(0, text.rfind('}')) + bgp;
  };
  start(with_bgp(service_json("web", "198.18.100.1", {"198.18.1.10"}) + ", " +
                 service_json("db", "198.18.100.2", {"198.18.1.20"})));
  ASSERT_TRUE(ct_->start_announcing().ok());
  auto report = [&] { return ct_->announcer()->report(); };

  ct_->announce_turn(0, "");
  EXPECT_EQ(report().withdrawn, "not ready: the services are not in effect yet");
  EXPECT_TRUE(report().announced.empty());
  for (uint64_t t = 1; t < 10 && !ct_->ready(); ++t) turns(t);
  ct_->announce_turn(10, "");
  EXPECT_EQ(report().withdrawn, "");
  EXPECT_EQ(report().announced, (std::vector<dp::IpAddr>{ip("198.18.100.1"), ip("198.18.100.2")}));

  // db loses its backend: while the reload is in flight nothing changes (the workers still
  // forward db), then db's address is withdrawn.
  write(with_bgp(service_json("web", "198.18.100.1", {"198.18.1.10"}) + ", " +
                 service_json("db", "198.18.100.2", {})));
  ct_->turn(500, true);
  EXPECT_FALSE(ct_->publication().in_effect());
  EXPECT_TRUE(ct_->ready());
  ct_->announce_turn(500, "");
  EXPECT_EQ(report().announced, (std::vector<dp::IpAddr>{ip("198.18.100.1"), ip("198.18.100.2")}));
  for (uint64_t t = 501; t < 510 && !ct_->publication().in_effect(); ++t) turns(t);
  ct_->announce_turn(510, "");
  EXPECT_EQ(report().announced, (std::vector<dp::IpAddr>{ip("198.18.100.1")}));

  // The data plane unhealthy: everything withdrawn at once, announced again when it is back
  // (within 200 ms of the last change at most).
  ct_->announce_turn(520, "port lan0: link down");
  EXPECT_TRUE(report().announced.empty());
  EXPECT_EQ(report().withdrawn, "port lan0: link down");
  ct_->announce_turn(530, "");
  EXPECT_EQ(report().announced, (std::vector<dp::IpAddr>{ip("198.18.100.1")}));
  EXPECT_EQ(report().withdrawn, "");

  // Draining (SIGTERM): withdrawn, whatever else holds.
  ct_->drain();
  ct_->announce_turn(540, "");
  EXPECT_TRUE(report().announced.empty());
  EXPECT_EQ(report().withdrawn, "stopping");
}

// The L2 speaker: ARP for a VIP is answered only by its owner among the live nodes, and an
// address taken over is announced (gratuitous ARP from this node's MAC).
TEST_F(ControlThreadTest, TheL2SpeakerAnswersOnlyForTheAddressesItOwns) {
  start(kWebDb);
  turns(1);
  const dp::IpAddr web = ip("198.18.100.1"), db = ip("198.18.100.2");
  // Two identities that split web and db: this node is the owner of web, "other" of db's.
  std::string me, other;
  for (int i = 0; i < 100 && me.empty(); ++i) {
    const std::string a = "node-" + std::to_string(i), b = "node-" + std::to_string(i + 100);
    std::vector<std::string> live = {a, b};
    std::sort(live.begin(), live.end());
    if (l2_owner(web, live) == a && l2_owner(db, live) == b) me = a, other = b;
  }
  ASSERT_FALSE(me.empty());
  ControlThread::L2Facts facts;  // no Lease yet
  ct_->speak_l2(me, [&] { return facts; });
  ct_->turn(2, false);
  EXPECT_EQ(ct_->counters().l2_owned, 0u);
  link_.sent_frames.clear();
  link_.hand_slow(0, arp_request("198.18.0.10", kClientMac, "198.18.100.1"), dp::SlowReason::arp,
                  0);
  ct_->turn(3, false);
  EXPECT_TRUE(link_.sent_frames.empty()) << "answered without holding its Lease";

  // Its Lease held, both nodes live: it takes web over and announces it.
  facts = {{me, other}, true};
  std::sort(facts.live.begin(), facts.live.end());
  ct_->turn(200, false);
  EXPECT_EQ(ct_->counters().l2_owned, 1u);
  EXPECT_EQ(ct_->counters().l2_live_nodes, 2u);
  EXPECT_EQ(ct_->counters().l2_takeovers, 1u);
  bool announced_web = false;
  for (const SentFrame& f : link_.sent_frames) {
    const Bytes& b = f.frame;
    if (b.size() >= 42 && b[12] == 0x08 && b[13] == 0x06 &&
        dp::IpAddr::v4(b[28], b[29], b[30], b[31]) == web) {
      announced_web = true;
    }
    ASSERT_FALSE(b.size() >= 42 && b[12] == 0x08 && b[13] == 0x06 &&
                 dp::IpAddr::v4(b[28], b[29], b[30], b[31]) == db)
        << "announced an address it does not own";
  }
  EXPECT_TRUE(announced_web);
  link_.sent_frames.clear();
  link_.hand_slow(0, arp_request("198.18.0.10", kClientMac, "198.18.100.1"), dp::SlowReason::arp,
                  0);
  link_.hand_slow(0, arp_request("198.18.0.10", kClientMac, "198.18.100.2"), dp::SlowReason::arp,
                  0);
  ct_->turn(201, false);
  EXPECT_EQ(link_.sent_frames,
            (std::vector<SentFrame>{
                {0, arp_reply("198.18.100.1", kLbMac, "198.18.0.10", kClientMac)}}));

  // The other node goes: this one takes db over too.
  facts.live = {me};
  link_.sent_frames.clear();
  ct_->turn(400, false);
  EXPECT_EQ(ct_->counters().l2_owned, 2u);
  EXPECT_EQ(ct_->counters().l2_takeovers, 2u);
  EXPECT_FALSE(link_.sent_frames.empty());
  for (size_t w = 0; w < 2; ++w) link_.drain(w);
}

}  // namespace
}  // namespace magline::control
