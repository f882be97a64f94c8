#include "control/provider_events.hpp"

#include <pthread.h>
#include <chrono>
#include <utility>
#include <vector>

namespace magline::control {

namespace {

// Due series writes are looked for this often when nothing is recorded meanwhile.
constexpr auto kTick = std::chrono::milliseconds(200);

}  // namespace

ProviderEvents::ProviderEvents(std::string instance, k8s::EventOptions options)
    : book_(options), instance_(std::move(instance)) {}

Result<std::unique_ptr<ProviderEvents>> ProviderEvents::start(const k8s::ApiConfig& api,
                                                              std::string instance,
                                                              k8s::EventOptions options) {
  std::unique_ptr<ProviderEvents> p(new ProviderEvents(std::move(instance), options));
  // Short bounds: an Event is not worth waiting minutes for.
  k8s::ApiClientOptions o;
  o.connect_timeout = std::chrono::seconds(5);
  o.total_timeout = std::chrono::seconds(10);
  auto client = k8s::ApiClient::create(api, o, &p->stop_);
  if (!client) return Error{"provider events: " + client.error().message};
  p->api_ = std::move(client).value();
  p->writer_ = std::make_unique<k8s::EventWriter>(*p->api_, p->instance_);
  p->thread_ = std::thread([raw = p.get()] { raw->run(); });
  pthread_setname_np(p->thread_.native_handle(), "provider-events");
  return p;
}

ProviderEvents::~ProviderEvents() {
  stop();
}

void ProviderEvents::stop() {
  stop_.store(true);
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ProviderEvents::record(const k8s::EventSpec& e) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (book_.observe(e, k8s::EventClock::now()) != k8s::EventBook::Seen::fresh) return;
    poked_ = true;
  }
  cv_.notify_one();
}

k8s::EventBookCounts ProviderEvents::counts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return book_.counts();
}

std::optional<std::string> ProviderEvents::take_complaint() {
  std::lock_guard<std::mutex> lock(mu_);
  return std::exchange(complaint_, std::nullopt);
}

void ProviderEvents::run() {
  std::vector<k8s::EventWrite> writes;
  while (!stop_.load()) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, kTick, [&] { return poked_ || stop_.load(); });
      poked_ = false;
      writes = book_.due(k8s::EventClock::now());
    }
    for (const k8s::EventWrite& w : writes) {
      const k8s::EventOutcome o = writer_->write(w);
      std::lock_guard<std::mutex> lock(mu_);
      book_.written(w.spec.regarding.ns, w.name, o.ok);
      if (o.ok) {
        complained_ = false;
      } else if (!complained_) {
        complained_ = true;
        complaint_ = "Event " + w.spec.regarding.ns + "/" + w.name + " (" + w.spec.reason +
                     ") not written: " + o.error +
                     (o.status ? " (HTTP " + std::to_string(o.status) + ")" : "") +
                     "; Events are given up while writes fail";
      }
    }
  }
}

}  // namespace magline::control
