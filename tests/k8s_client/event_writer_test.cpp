// The provider's Event writes (control/k8s_client/event_writer.hpp) against the fake API
// server's events.k8s.io/v1 (its validation is the real server's): a create the server accepts
// as it is, a series patch that updates the same object, and failures reported, not retried.
#include "control/k8s_client/event_writer.hpp"

#include <gtest/gtest.h>

#include "tests/k8s_client/fake_server.hpp"

namespace magline::k8s {
namespace {

const EventClock::time_point t0 =
    EventClock::time_point(std::chrono::microseconds(1'796'230'800'500'000));

EventWrite allocated() {
  EventWrite w;
  w.kind = EventWrite::Kind::create;
  w.name = "web.18ed5c2b9a1f4d00";
  w.spec.regarding = {"shop", "web", "0c0ffee0-0000-4000-8000-000000000001", "12"};
  w.spec.reason = "IPAllocated";
  w.spec.action = "Allocate";
  w.spec.note = "assigned 198.18.200.1 from pool edge";
  w.first = w.last = t0;
  return w;
}

class EventWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<FakeServer>(std::vector<std::string>{});
    ASSERT_TRUE(server_->ok());
    ApiConfig c;
    c.server = server_->url();
    auto api = ApiClient::create(c, {}, nullptr);
    ASSERT_TRUE(api.ok()) << api.error().message;
    api_ = std::move(api).value();
    writer_ = std::make_unique<EventWriter>(*api_, "edge-node-1");
  }
  json event(const std::string& name) { return server_->objects("events")["shop/" + name]; }

  std::unique_ptr<FakeServer> server_;
  std::unique_ptr<ApiClient> api_;
  std::unique_ptr<EventWriter> writer_;
};

TEST_F(EventWriterTest, ACreateThenASeriesPatchOfTheSameEvent) {
  EventWrite w = allocated();
  EventOutcome o = writer_->write(w);
  ASSERT_TRUE(o.ok) << o.status << " " << o.error;
  json e = event(w.name);
  EXPECT_EQ(e["type"], "Normal");
  EXPECT_EQ(e["reason"], "IPAllocated");
  EXPECT_EQ(e["action"], "Allocate");
  EXPECT_EQ(e["note"], "assigned 198.18.200.1 from pool edge");
  EXPECT_EQ(e["eventTime"], "2026-12-02T17:00:00.500000Z");
  EXPECT_EQ(e["reportingController"], "magline.io/provider");
  EXPECT_EQ(e["reportingInstance"], "edge-node-1");
  EXPECT_EQ(e["regarding"], json({{"kind", "Service"},
                                  {"namespace", "shop"},
                                  {"name", "web"},
                                  {"uid", "0c0ffee0-0000-4000-8000-000000000001"},
                                  {"apiVersion", "v1"},
                                  {"resourceVersion", "12"}}));
  EXPECT_FALSE(e.contains("series"));

  w.kind = EventWrite::Kind::series;
  w.count = 3;
  w.last = t0 + std::chrono::seconds(40);
  o = writer_->write(w);
  ASSERT_TRUE(o.ok) << o.status << " " << o.error;
  e = event(w.name);
  EXPECT_EQ(e["series"]["count"], 3);
  EXPECT_EQ(e["series"]["lastObservedTime"], "2026-12-02T17:00:40.500000Z");
  EXPECT_EQ(e["eventTime"], "2026-12-02T17:00:00.500000Z");  // the first sighting's
  EXPECT_EQ(server_->objects("events").size(), 1u);
}

TEST_F(EventWriterTest, AWarningWithALongNoteIsCutToTheServersLimit) {
  EventWrite w = allocated();
  w.spec.warning = true;
  w.spec.reason = "PoolExhausted";
  w.spec.note = std::string(1500, 'x');
  const EventOutcome o = writer_->write(w);
  ASSERT_TRUE(o.ok) << o.status << " " << o.error;
  EXPECT_EQ(event(w.name)["type"], "Warning");
  EXPECT_EQ(event(w.name)["note"].get<std::string>().size(), 1024u);
}

TEST_F(EventWriterTest, FailuresAreReportedWithTheServersMessage) {
  server_->inject({{"resource", "events"}, {"method", "POST"}, {"status", 500}});
  EventOutcome o = writer_->write(allocated());
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.status, 500);
  EXPECT_FALSE(o.error.empty());
  // A series patch of an Event the server does not have (expired after its TTL): 404.
  EventWrite w = allocated();
  w.kind = EventWrite::Kind::series;
  w.count = 2;
  o = writer_->write(w);
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.status, 404);
  EXPECT_TRUE(server_->objects("events").empty());
}

}  // namespace
}  // namespace magline::k8s
