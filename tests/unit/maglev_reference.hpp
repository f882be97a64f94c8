// An oracle for the Maglev builder, written straight from Pseudocode 1 of the Maglev paper
// (NSDI 2016, section 3.4): whole permutation tables, modulo arithmetic, the next[] array and
// entry[] = -1 for empty, and the weighted turn rule documented in dataplane/maglev.hpp applied
// by scanning every backend every round. Slow and simple on purpose.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/maglev.hpp"

namespace magline::test {

struct RefBackend {
  std::string id;
  uint32_t weight = 1;
};

// Returns, per slot, the backend's position in `in`; all -1 when no backend has weight.
inline std::vector<int> reference_maglev(const std::vector<RefBackend>& in, uint64_t M) {
  std::vector<int> order;  // indices into `in`, by identity, weight > 0
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i].weight > 0) order.push_back(int(i));
  }
  std::sort(order.begin(), order.end(), [&](int a, int b) { return in[a].id < in[b].id; });
  const size_t N = order.size();
  std::vector<int> entry(M, -1);
  if (N == 0) return entry;

  std::vector<std::vector<uint64_t>> permutation(N, std::vector<uint64_t>(M));
  for (size_t i = 0; i < N; ++i) {
    const std::string& name = in[order[i]].id;
    const auto* p = reinterpret_cast<const uint8_t*>(name.data());
    const uint64_t offset = dp::hash_bytes(p, name.size(), dp::kMaglevOffsetSeed) % M;
    const uint64_t skip = dp::hash_bytes(p, name.size(), dp::kMaglevSkipSeed) % (M - 1) + 1;
    for (uint64_t j = 0; j < M; ++j) permutation[i][j] = (offset + j * skip) % M;
  }

  // Quotas: floor of the exact share, then one more slot for the largest remainders.
  uint64_t W = 0, w_max = 0;
  for (int i : order) {
    W += in[i].weight;
    w_max = std::max<uint64_t>(w_max, in[i].weight);
  }
  std::vector<uint64_t> quota(N), rem(N);
  uint64_t given = 0;
  for (size_t i = 0; i < N; ++i) {
    quota[i] = M * in[order[i]].weight / W;
    rem[i] = M * in[order[i]].weight % W;
    given += quota[i];
  }
  std::vector<bool> got_extra(N, false);
  while (given < M) {
    size_t best = N;
    for (size_t i = 0; i < N; ++i) {
      if (!got_extra[i] && (best == N || rem[i] > rem[best])) best = i;
    }
    got_extra[best] = true;
    ++quota[best];
    ++given;
  }

  std::vector<uint64_t> next(N, 0), turns(N, 0);
  uint64_t n = 0;
  for (uint64_t round = 0;; ++round) {
    for (size_t i = 0; i < N; ++i) {
      if (turns[i] >= quota[i]) continue;
      if (turns[i] * w_max / in[order[i]].weight != round) continue;  // not this backend's turn
      uint64_t c = permutation[i][next[i]];
      while (entry[c] >= 0) {
        next[i] = next[i] + 1;
        c = permutation[i][next[i]];
      }
      entry[c] = order[i];
      next[i] = next[i] + 1;
      ++turns[i];
      n = n + 1;
      if (n == M) return entry;
    }
  }
}

}  // namespace magline::test
