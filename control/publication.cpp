#include "control/publication.hpp"

#include <algorithm>

namespace magline::control {

namespace {
constexpr uint32_t kChunk = 4096;  // updates pushed into a ring per call
}  // namespace

Publication::Publication(WorkerLink& link)
    : link_(link),
      queues_(link.workers()),
      heads_(link.workers(), 0),
      queued_total_(link.workers(), 0),
      sent_total_(link.workers(), 0) {}

Publication::~Publication() = default;

void Publication::queue(const std::vector<dp::Update>& updates) {
  for (size_t w = 0; w < queues_.size(); ++w) {
    queues_[w].insert(queues_[w].end(), updates.begin(), updates.end());
    queued_total_[w] += updates.size();
  }
  sent_at_ = std::chrono::steady_clock::now();
  awaiting_effect_ = true;
  flush();
}

void Publication::send(Change change) {
  if (change.updates.empty()) return;
  queue(change.updates);
  if (!change.retired.empty()) batches_.push_back({std::move(change.retired), queued_total_});
}

void Publication::send(const std::vector<dp::Update>& updates) {
  if (!updates.empty()) queue(updates);
}

void Publication::flush() {
  for (size_t w = 0; w < queues_.size(); ++w) {
    std::vector<dp::Update>& q = queues_[w];
    size_t& head = heads_[w];
    while (head < q.size()) {
      const uint32_t n = uint32_t(std::min<size_t>(q.size() - head, kChunk));
      const uint32_t sent = link_.send_updates(w, q.data() + head, n);
      head += sent;
      sent_total_[w] += sent;
      if (sent < n) break;  // full: the rest goes in on a later turn
    }
    if (head == q.size()) {
      q.clear();
      head = 0;
    }
  }
}

size_t Publication::poll() {
  flush();
  size_t freed = 0;
  for (auto it = batches_.begin(); it != batches_.end();) {
    Batch& b = *it;
    if (b.stage == 0) {
      bool in_rings = true;
      for (size_t w = 0; w < b.marks.size(); ++w) in_rings &= sent_total_[w] >= b.marks[w];
      if (in_rings) {
        b.stage = 1;
        b.token = link_.grace_start();
      }
    } else if (link_.grace_passed(b.token)) {
      if (b.stage == 1) {
        b.stage = 2;
        b.token = link_.grace_start();
      } else {
        it = batches_.erase(it);  // the last reference this side: S is freed unless read elsewhere
        ++freed;
        continue;
      }
    }
    ++it;
  }
  if (awaiting_effect_ && in_effect()) {
    awaiting_effect_ = false;
    last_latency_ = std::chrono::steady_clock::now() - sent_at_;
    ++completed_;
  }
  return freed;
}

bool Publication::in_effect() const noexcept {
  for (size_t w = 0; w < queues_.size(); ++w) {
    if (sent_total_[w] < queued_total_[w] || link_.applied(w) < sent_total_[w]) return false;
  }
  return true;
}

}  // namespace magline::control
