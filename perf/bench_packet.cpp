// Per-packet cost of the packet layer: parse alone, and parse followed by the DNAT or full-NAT
// rewrite a worker does on a flow-table hit. Rewrites change the packet, so every iteration
// works on a restored copy of the original.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "dataplane/bytes.hpp"
#include "dataplane/checksum.hpp"
#include "dataplane/parse.hpp"
#include "dataplane/rewrite.hpp"

namespace magline::dp {
namespace {

constexpr size_t kPayload = 10;
constexpr size_t kTcp4FrameLen = 14 + 20 + 20 + kPayload;  // 64 bytes
constexpr size_t kTcp6FrameLen = 14 + 40 + 20 + kPayload;

const IpAddr kClient4 = IpAddr::v4(198, 18, 0, 1);
const IpAddr kVip4 = IpAddr::v4(198, 18, 100, 1);
const IpAddr kBackend4 = IpAddr::v4(198, 18, 200, 7);
const IpAddr kSnat4 = IpAddr::v4(198, 18, 50, 1);

IpAddr v6(uint8_t last, uint8_t group) {
  uint8_t b[16] = {0x20, 0x01, 0x0d, 0xb8, 0, group};
  b[15] = last;
  return IpAddr::v6(b);
}

// An ACK with a 10-byte payload and valid checksums.
void write_tcp(uint8_t* tcp, const IpAddr& src, const IpAddr& dst) {
  store_be16(tcp, 40000);
  store_be16(tcp + 2, 80);
  store_be32(tcp + 4, 1000);
  store_be32(tcp + 8, 2000);
  tcp[12] = 5 << 4;
  tcp[13] = kTcpAck;
  store_be16(tcp + 14, 65535);
  for (size_t i = 0; i < kPayload; ++i)
    tcp[20 + i] = uint8_t('a' + i);
  store_be16(tcp + 16, l4_checksum(src, dst, kProtoTcp, tcp, 20 + kPayload, 16));
}

std::array<uint8_t, kTcp4FrameLen> tcp4_frame() {
  std::array<uint8_t, kTcp4FrameLen> f{};
  store_be16(f.data() + 12, kEtherTypeIpv4);
  uint8_t* ip = f.data() + 14;
  ip[0] = 0x45;
  store_be16(ip + 2, uint16_t(20 + 20 + kPayload));
  ip[8] = 64;
  ip[9] = kProtoTcp;
  std::memcpy(ip + 12, kClient4.data(), 4);
  std::memcpy(ip + 16, kVip4.data(), 4);
  store_be16(ip + 10, ipv4_header_checksum(ip, 20));
  write_tcp(ip + 20, kClient4, kVip4);
  return f;
}

std::array<uint8_t, kTcp6FrameLen> tcp6_frame() {
  std::array<uint8_t, kTcp6FrameLen> f{};
  store_be16(f.data() + 12, kEtherTypeIpv6);
  uint8_t* ip = f.data() + 14;
  ip[0] = 0x60;
  store_be16(ip + 4, uint16_t(20 + kPayload));
  ip[6] = kProtoTcp;
  ip[7] = 64;
  std::memcpy(ip + 8, v6(1, 0).data(), 16);
  std::memcpy(ip + 24, v6(1, 0x10).data(), 16);
  write_tcp(ip + 40, v6(1, 0), v6(1, 0x10));
  return f;
}

template <size_t N>
void parse_only(benchmark::State& state, const std::array<uint8_t, N>& frame) {
  Parsed p;
  for (auto _ : state) {
    benchmark::DoNotOptimize(frame.data());
    const DropReason r = parse(frame, p);
    benchmark::DoNotOptimize(r);
    benchmark::DoNotOptimize(p);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_ParseTcp4_64B(benchmark::State& state) {
  parse_only(state, tcp4_frame());
}
void BM_ParseTcp6(benchmark::State& state) {
  parse_only(state, tcp6_frame());
}

// Rewritten packets are restored from a pool refilled every kPool packets: restoring each one
// right before parsing it would measure a store-forwarding stall (a 16-byte copy followed by
// loads that straddle two of its stores) that a NIC-written mbuf never has. The refill is timed,
// and measured alone by BM_RestoreBaseline.
constexpr size_t kPool = 256;

template <size_t N>
struct Pool {
  explicit Pool(const std::array<uint8_t, N>& original) : original(original), frames(kPool) {
    refill();
  }
  std::array<uint8_t, N>& next() {
    if (i == kPool) refill();
    return frames[i++];
  }
  void refill() {
    std::fill(frames.begin(), frames.end(), original);
    i = 0;
  }
  std::array<uint8_t, N> original;
  std::vector<std::array<uint8_t, N>> frames;
  size_t i = 0;
};

void BM_RestoreBaseline64B(benchmark::State& state) {
  Pool pool(tcp4_frame());
  for (auto _ : state) {
    auto& frame = pool.next();
    benchmark::DoNotOptimize(frame.data());
  }
  state.SetItemsProcessed(state.iterations());
}

template <size_t N, typename Rewrite>
void parse_and_rewrite(benchmark::State& state, const std::array<uint8_t, N>& original,
                       Rewrite rewrite) {
  Pool pool(original);
  Parsed p;
  for (auto _ : state) {
    auto& frame = pool.next();
    benchmark::DoNotOptimize(frame.data());
    if (parse(frame, p) != DropReason::none) state.SkipWithError("parse failed");
    const DropReason r = rewrite(std::span<uint8_t>(frame), p);
    benchmark::DoNotOptimize(r);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}

// The shape of the worker loop: parse a whole burst, then rewrite it, so that a rewrite never
// waits on the parse of the same packet. Reported per packet.
constexpr size_t kBurst = 32;

template <size_t N, typename Rewrite>
void parse_and_rewrite_burst(benchmark::State& state, const std::array<uint8_t, N>& original,
                             Rewrite rewrite) {
  Pool pool(original);
  std::array<std::array<uint8_t, N>*, kBurst> frames;
  std::array<Parsed, kBurst> parsed;
  for (auto _ : state) {
    for (size_t i = 0; i < kBurst; ++i) {
      frames[i] = &pool.next();
      benchmark::DoNotOptimize(frames[i]->data());
      if (parse(*frames[i], parsed[i]) != DropReason::none) state.SkipWithError("parse failed");
    }
    for (size_t i = 0; i < kBurst; ++i) {
      const DropReason r = rewrite(std::span<uint8_t>(*frames[i]), parsed[i]);
      benchmark::DoNotOptimize(r);
    }
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * kBurst);
}

void BM_ParseDnatTcp4Burst32(benchmark::State& state) {
  parse_and_rewrite_burst(state, tcp4_frame(), [](std::span<uint8_t> f, const Parsed& p) {
    return rewrite_dnat(f, p, kBackend4, 8080);
  });
}

void BM_ParseFullNatTcp6Burst32(benchmark::State& state) {
  const IpAddr backend = v6(7, 0x20);
  const IpAddr snat = v6(1, 0x05);
  parse_and_rewrite_burst(state, tcp6_frame(), [&](std::span<uint8_t> f, const Parsed& p) {
    return rewrite_full_nat(f, p, snat, 61000, backend, 8080);
  });
}

void BM_ParseDnatTcp4(benchmark::State& state) {
  parse_and_rewrite(state, tcp4_frame(), [](std::span<uint8_t> f, const Parsed& p) {
    return rewrite_dnat(f, p, kBackend4, 8080);
  });
}

void BM_ParseFullNatTcp4(benchmark::State& state) {
  parse_and_rewrite(state, tcp4_frame(), [](std::span<uint8_t> f, const Parsed& p) {
    return rewrite_full_nat(f, p, kSnat4, 61000, kBackend4, 8080);
  });
}

void BM_ParseDnatTcp6(benchmark::State& state) {
  const IpAddr backend = v6(7, 0x20);
  parse_and_rewrite(state, tcp6_frame(), [&backend](std::span<uint8_t> f, const Parsed& p) {
    return rewrite_dnat(f, p, backend, 8080);
  });
}

void BM_ParseFullNatTcp6(benchmark::State& state) {
  const IpAddr backend = v6(7, 0x20);
  const IpAddr snat = v6(1, 0x05);
  parse_and_rewrite(state, tcp6_frame(), [&](std::span<uint8_t> f, const Parsed& p) {
    return rewrite_full_nat(f, p, snat, 61000, backend, 8080);
  });
}

BENCHMARK(BM_ParseTcp4_64B);
BENCHMARK(BM_ParseTcp6);
BENCHMARK(BM_RestoreBaseline64B);
BENCHMARK(BM_ParseDnatTcp4);
BENCHMARK(BM_ParseFullNatTcp4);
BENCHMARK(BM_ParseDnatTcp6);
BENCHMARK(BM_ParseFullNatTcp6);
BENCHMARK(BM_ParseDnatTcp4Burst32);
BENCHMARK(BM_ParseFullNatTcp6Burst32);

}  // namespace
}  // namespace magline::dp
