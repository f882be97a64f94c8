// Shared by the open-addressing maps (FrontendMap, NeighborMap): deletion from a
// linear-probing table by backward shift (Knuth, TAOCP vol. 3, 6.4, algorithm R). No
// tombstones, so a table that churns for months keeps its probe sequences short.
#pragma once

#include <cstddef>
#include <vector>

namespace magline::dp {

// Empties slot `i` (which holds the entry to delete) and moves later entries of the same probe
// run back into the hole. `used(slot)` tells an occupied slot; `home(slot)` its home index.
// The table size is a power of two, `mask` one less.
template <typename Slot, typename Used, typename Home>
void backward_shift_erase(std::vector<Slot>& slots, size_t mask, size_t i, Used used,
                          Home home) noexcept {
  for (size_t j = i;;) {
    j = (j + 1) & mask;
    if (!used(slots[j])) break;
    const size_t h = home(slots[j]);
    // Slot j moves back into the hole at i unless its home lies cyclically in (i, j].
    const bool stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
    if (!stays) {
      slots[i] = slots[j];
      i = j;
    }
  }
  slots[i] = Slot{};
}

}  // namespace magline::dp
