// How far apart magline-bench's two cores are (the generator's and the worker's).
#pragma once

namespace magline::bench {

// TSC cycles for one cache line to go from the main lcore to `lcore` and back (each side
// waiting for the other's store), the median of a few thousand round trips; 0 when `lcore`
// cannot be launched. Every frame in process crosses that way twice (its mbuf's line and its
// data's, to the worker and back to the sink): where the two cores' caches are far apart, it
// bounds the ring baseline, whatever the code (docs/performance.md).
double line_round_trip_cycles(unsigned lcore);

}  // namespace magline::bench
