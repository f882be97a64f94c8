// Flow-table lookup and insert with 1k (cache-resident) and 1M (memory-bound) live entries.
// The hit path of the worker is find_bulk over a burst of 32; single find() is shown for
// comparison. Perf goal G18 (../shared/reference/perf.md): a lookup under 40 cycles in bulk.
#include <benchmark/benchmark.h>

#include <memory>
#include <random>
#include <vector>

#include "dataplane/flow_table.hpp"
#include "dataplane/parse.hpp"

namespace magline::dp {
namespace {

std::vector<FlowKey> random_keys(size_t n, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<FlowKey> keys(n);
  for (FlowKey& k : keys) {
    k.src = IpAddr::v4(uint32_t(rng())).bytes;
    k.dst = IpAddr::v4(198, 19, 0, 1).bytes;
    k.sport = uint16_t(rng());
    k.dport = 443;
    k.proto = kProtoTcp;
  }
  return keys;
}

struct Loaded {
  std::unique_ptr<FlowTable> table;
  std::vector<FlowKey> keys;
};

// A table of 2x the entries (50% occupancy, as a sized deployment runs) holding `n` flows.
Loaded load(size_t n) {
  Loaded l{std::make_unique<FlowTable>(2 * n, FlowTimeouts{}, 99), random_keys(n, 1)};
  for (const FlowKey& k : l.keys) l.table->insert(k, l.table->hash(k), FlowState::tcp_established, 0);
  return l;
}

void BM_FlowFind(benchmark::State& state) {
  Loaded l = load(size_t(state.range(0)));
  std::vector<uint32_t> order(1 << 16);
  std::mt19937 rng(2);
  for (auto& o : order) o = uint32_t(rng() % l.keys.size());
  size_t i = 0;
  for (auto _ : state) {
    const FlowKey& k = l.keys[order[i++ & 0xffff]];
    benchmark::DoNotOptimize(l.table->find(k, l.table->hash(k), 1));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FlowFind)->Arg(1000)->Arg(1000000)->ArgName("flows");

void BM_FlowFindBulk32(benchmark::State& state) {
  Loaded l = load(size_t(state.range(0)));
  std::mt19937 rng(2);
  constexpr size_t kBurst = 32;
  std::vector<const FlowKey*> ptrs(1 << 16);
  for (auto& p : ptrs) p = &l.keys[rng() % l.keys.size()];
  uint64_t hashes[kBurst];
  FlowEntry* out[kBurst];
  FlowTable::Slot at[kBurst];
  size_t i = 0;
  for (auto _ : state) {
    const FlowKey* const* burst = &ptrs[i];
    for (size_t j = 0; j < kBurst; ++j) hashes[j] = l.table->hash(*burst[j]);
    l.table->find_bulk(burst, hashes, kBurst, out, at, 1);
    benchmark::DoNotOptimize(out[kBurst - 1]);
    i = (i + kBurst) & 0xffff;
  }
  state.SetItemsProcessed(state.iterations() * kBurst);
}
BENCHMARK(BM_FlowFindBulk32)->Arg(1000)->Arg(1000000)->ArgName("flows");

// Steady state at `flows` entries: each iteration erases the oldest flow and inserts a new one.
void BM_FlowInsertErase(benchmark::State& state) {
  const size_t n = size_t(state.range(0));
  Loaded l = load(n);
  const std::vector<FlowKey> fresh = random_keys(1 << 20, 3);
  std::vector<FlowKey> live = l.keys;
  size_t i = 0;
  for (auto _ : state) {
    FlowKey& slot = live[i % n];
    FlowTable& t = *l.table;
    if (FlowEntry* e = t.find(slot, t.hash(slot), 1)) t.erase(e);
    slot = fresh[i & ((1 << 20) - 1)];
    benchmark::DoNotOptimize(t.insert(slot, t.hash(slot), FlowState::tcp_syn, 1));
    ++i;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FlowInsertErase)->Arg(1000)->Arg(1000000)->ArgName("flows");

}  // namespace
}  // namespace magline::dp

namespace magline::dp {
namespace {

// The hash every lookup starts with (a 40-byte key, five multiplies).
void BM_FlowHash(benchmark::State& state) {
  const std::vector<FlowKey> keys = random_keys(4096, 4);
  size_t i = 0;
  uint64_t acc = 0;
  for (auto _ : state) {
    acc += hash_flow(keys[i++ & 4095], 99);
    benchmark::DoNotOptimize(acc);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FlowHash);

}  // namespace
}  // namespace magline::dp
