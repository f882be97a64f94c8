// Leases through the API server (control/k8s_client/lease_client.hpp) against the fake API
// server (k8s-api.md §12.1): create when absent, updates conditional on the resourceVersion
// read, the race two candidates run on an expired Lease (exactly one wins), and the node
// Leases listed by label.
#include "control/k8s_client/lease_client.hpp"

#include <gtest/gtest.h>

#include "tests/k8s_client/fake_server.hpp"

namespace magline::k8s {
namespace {

using Kind = LeaseOutcome::Kind;
using Decision = LeaseElector::Decision;
using std::chrono::seconds;

constexpr LeaseTiming kTiming{std::chrono::milliseconds(15000), std::chrono::milliseconds(10000),
                              std::chrono::milliseconds(2000)};
const MonoTime t0{seconds(1000)};

class LeaseClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<FakeServer>(std::vector<std::string>{});
    ASSERT_TRUE(server_->ok());
    ApiConfig c;
    c.server = server_->url();
    auto api = ApiClient::create(c, {}, nullptr);
    ASSERT_TRUE(api.ok()) << api.error().message;
    api_ = std::move(api).value();
    client_ = std::make_unique<LeaseClient>(*api_);
  }
  // One try of `e` on the election Lease: the GET, the decision, the write.
  LeaseOutcome try_once(LeaseElector& e, MonoTime now, std::optional<Decision>* decided = nullptr) {
    const LeaseOutcome got = client_->get("kube-system", "magline-provider");
    std::optional<Lease> current;
    if (got.kind == Kind::done) current = got.lease;
    const Decision d = e.decide(current, now, std::chrono::system_clock::now());
    if (decided) *decided = d;
    if (d.kind == Decision::Kind::wait) return {Kind::failed, 0, "wait", std::nullopt};
    Lease l{"kube-system", "magline-provider", d.resource_version, {}, d.record};
    LeaseOutcome w = d.kind == Decision::Kind::create ? client_->create(l) : client_->update(l);
    if (w.kind == Kind::done) e.written(w.lease->record, now);
    return w;
  }

  std::unique_ptr<FakeServer> server_;
  std::unique_ptr<ApiClient> api_;
  std::unique_ptr<LeaseClient> client_;
};

TEST_F(LeaseClientTest, AnAbsentLeaseIsCreatedOnceAndRenewedFromTheVersionRead) {
  EXPECT_EQ(client_->get("kube-system", "magline-provider").kind, Kind::absent);
  LeaseElector a("node-a", kTiming);
  const LeaseOutcome made = try_once(a, t0);
  ASSERT_EQ(made.kind, Kind::done) << made.error;
  EXPECT_TRUE(a.leading(t0));
  const json stored = server_->objects("leases")["kube-system/magline-provider"];
  EXPECT_EQ(stored["spec"]["holderIdentity"], "node-a");
  EXPECT_EQ(stored["spec"]["leaseDurationSeconds"], 15);
  EXPECT_EQ(stored["spec"]["leaseTransitions"], 0);
  EXPECT_EQ(stored["spec"]["renewTime"].get<std::string>().size(), 27u);  // MicroTime
  // A second create of the same name: 409 AlreadyExists.
  Lease again{"kube-system", "magline-provider", "", {}, made.lease->record};
  EXPECT_EQ(client_->create(again).kind, Kind::conflict);
  // An update from a stale version: 409, nothing changed.
  const LeaseOutcome renewed = try_once(a, t0 + seconds(2));
  ASSERT_EQ(renewed.kind, Kind::done) << renewed.error;
  EXPECT_EQ(renewed.lease->record.acquire_time, made.lease->record.acquire_time);
  Lease stale = *made.lease;
  stale.record.holder = "thief";
  const LeaseOutcome refused = client_->update(stale);
  EXPECT_EQ(refused.kind, Kind::conflict) << refused.error;
  EXPECT_EQ(client_->get("kube-system", "magline-provider").lease->record.holder, "node-a");
}

TEST_F(LeaseClientTest, TwoCandidatesRaceOnAnExpiredLeaseAndExactlyOneWins) {
  LeaseElector old("node-old", kTiming);
  ASSERT_EQ(try_once(old, t0).kind, Kind::done);
  LeaseElector a("node-a", kTiming), b("node-b", kTiming);
  // Both see node-old's record at t0 and again 15 s later, unchanged: expired for both.
  ASSERT_EQ(try_once(a, t0).error, "wait");
  ASSERT_EQ(try_once(b, t0).error, "wait");
  const LeaseOutcome got = client_->get("kube-system", "magline-provider");
  const auto now = t0 + seconds(15);
  const Decision da = a.decide(got.lease, now, std::chrono::system_clock::now());
  const Decision db = b.decide(got.lease, now, std::chrono::system_clock::now());
  ASSERT_EQ(da.kind, Decision::Kind::update);
  ASSERT_EQ(db.kind, Decision::Kind::update);
  const LeaseOutcome wa =
      client_->update({"kube-system", "magline-provider", da.resource_version, {}, da.record});
  const LeaseOutcome wb =
      client_->update({"kube-system", "magline-provider", db.resource_version, {}, db.record});
  EXPECT_EQ(wa.kind, Kind::done) << wa.error;
  EXPECT_EQ(wb.kind, Kind::conflict) << wb.error;
  const Lease now_held = *client_->get("kube-system", "magline-provider").lease;
  EXPECT_EQ(now_held.record.holder, "node-a");
  EXPECT_EQ(now_held.record.transitions, 1);
  // The loser's next try sees the winner's fresh record: valid, it waits.
  std::optional<Decision> next;
  try_once(b, now, &next);
  EXPECT_EQ(next->kind, Decision::Kind::wait);
}

TEST_F(LeaseClientTest, AReleasedLeaseIsTakenAtOnce) {
  LeaseElector a("node-a", kTiming), b("node-b", kTiming);
  const LeaseOutcome made = try_once(a, t0);
  ASSERT_EQ(made.kind, Kind::done);
  ASSERT_EQ(try_once(b, t0).error, "wait");
  const LeaseOutcome released = client_->update({"kube-system",
                                                 "magline-provider",
                                                 made.lease->resource_version,
                                                 {},
                                                 a.release(std::chrono::system_clock::now())});
  ASSERT_EQ(released.kind, Kind::done) << released.error;
  EXPECT_EQ(released.lease->record.holder, "");
  EXPECT_EQ(released.lease->record.duration_s, 1);
  const LeaseOutcome taken = try_once(b, t0 + seconds(1));
  ASSERT_EQ(taken.kind, Kind::done) << taken.error;
  EXPECT_EQ(taken.lease->record.holder, "node-b");
  EXPECT_EQ(taken.lease->record.transitions, 1);
}

TEST_F(LeaseClientTest, NodeLeasesAreListedByLabel) {
  for (const char* n : {"a", "b"}) {
    Lease l{"kube-system",
            std::string("magline-node-") + n,
            "",
            {{"magline.io/node-lease", "true"}},
            {n, 10, "", "", 0}};
    ASSERT_EQ(client_->create(l).kind, Kind::done);
  }
  ASSERT_EQ(client_->create({"kube-system", "kube-scheduler", "", {}, {"x", 15, "", "", 0}}).kind,
            Kind::done);
  std::string error;
  const auto leases = client_->list("kube-system", "magline.io/node-lease=true", error);
  ASSERT_TRUE(leases) << error;
  ASSERT_EQ(leases->size(), 2u);
  LivenessTracker t;
  t.observe(*leases, t0);
  EXPECT_EQ(t.live(t0), (std::vector<std::string>{"a", "b"}));
  // A failure is said, not hidden.
  server_->inject(
      {{"path", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"}, {"status", 500}});
  EXPECT_FALSE(client_->list("kube-system", "magline.io/node-lease=true", error));
  EXPECT_FALSE(error.empty());
}

}  // namespace
}  // namespace magline::k8s
