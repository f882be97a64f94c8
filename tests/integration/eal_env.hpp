// The EAL for the integration tests: initialised once per process by a GoogleTest global
// environment (eal_env.cpp), with virtual devices only, no hugepages and no shared files.
#pragma once

#include <string>

struct rte_mempool;

namespace magline::test {

// A pool of mbufs shared by the tests (every test returns what it takes).
rte_mempool* test_pool();
constexpr unsigned kTestPoolSize = 4095;

// A private temporary directory, removed with its contents when the tests end.
const std::string& temp_dir();

}  // namespace magline::test
