// Magline's configuration file: JSON, every field documented in docs/config.md.
//
// Loading is all or nothing: a Config is returned only when every field is valid, and an error
// names the file, the field's path (e.g. `services[0].backends[2].port`) and what was expected.
// Unknown and duplicate keys are errors, so a typo never passes silently.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/address_pool.hpp"
#include "dataplane/addr.hpp"
#include "dataplane/flow_state.hpp"
#include "dataplane/node.hpp"
#include "dataplane/packet.hpp"
#include "dataplane/result.hpp"
#include "dataplane/service.hpp"

namespace magline::cfg {

struct FrontendConfig {
  dp::FrontendKind kind = dp::FrontendKind::load_balancer;
  std::optional<dp::IpAddr> address;  // absent for node_port: every node address of the family
  uint16_t port = 0;
  dp::Protocol protocol = dp::Protocol::tcp;
};

struct ServiceConfig {
  std::string name;
  dp::Family family = dp::Family::v4;  // from the addresses; one family per service
  dp::ForwardMode mode = dp::ForwardMode::full_nat;
  std::vector<FrontendConfig> frontends;
  std::vector<dp::Backend> backends;
  dp::SessionAffinity affinity;
  std::vector<dp::IpPrefix> source_ranges;
  dp::NoBackends no_backends = dp::NoBackends::reject;
  std::optional<uint32_t> table_size;  // overrides maglev.table_size
  dp::ConnectionLimit new_connections;  // new_connection_limit; none by default
  dp::SynProxy syn_proxy = dp::SynProxy::automatic;  // full_nat TCP frontends only
};

// A DPDK port Magline owns.
struct PortConfig {
  std::string name;    // used by routes, metrics and logs
  std::string device;  // a PCI address (0000:03:00.0) or a virtual device (net_af_packet0,iface=x)
  std::optional<dp::MacAddr> mac;     // replaces the device's own MAC address
  std::vector<dp::IfAddr> addresses;  // "ADDR/LEN": the port's addresses and on-link subnets
  uint16_t mtu = 1500;
  bool promiscuous = false;
  // The exception path: the name of a kernel (TAP) interface Magline creates for this port,
  // with its MAC, MTU and addresses; frames for the node itself go there. Empty: none.
  std::string kernel_interface;

  friend bool operator==(const PortConfig&, const PortConfig&) = default;
};

struct RouteConfig {
  dp::IpPrefix to;
  dp::IpAddr via;
  std::string port;

  friend bool operator==(const RouteConfig&, const RouteConfig&) = default;
};

// Where the replies of a DNAT connection this node opens go back to its client
// (docs/architecture.md, "One entry per DNAT connection").
enum class DnatReplies : uint8_t {
  routed,    // by the route to the client, without a reply entry, where the backends' map
             // names the frontend and the route's neighbour is known (else as last_hop)
  last_hop,  // through the hop the client's frames came from: a reply entry per connection
};

// How `magline run` sets up DPDK. Absent from a file: no ports (check and table still work).
struct DataplaneConfig {
  uint32_t main_core = 0;                  // the control thread
  std::vector<uint32_t> worker_cores{1};   // one worker per core
  uint32_t memory_mb = 512;
  bool hugepages = true;                   // false: --no-huge (tests, small machines)
  std::vector<std::string> eal_args;       // appended to the EAL's arguments as given
  // The EAL's --file-prefix: its runtime directory is /var/run/dpdk/<file_prefix> (root), where
  // DPDK's tools find the process (dpdk-telemetry.py -f, dpdk-dumpcap --file-prefix).
  std::string file_prefix = "magline";
  bool telemetry = true;  // DPDK's telemetry socket in the runtime directory
  // DPDK secondary processes (dpdk-dumpcap, dpdk-pdump, dpdk-proc-info) may attach: the EAL
  // shares its memory through files (not --in-memory) and packet capture is initialised.
  bool capture = false;
  uint16_t burst = 32;
  // Idle backoff (dataplane/idle_backoff.hpp): 0 polls without pause.
  uint32_t idle_sleep_max_us = 0;
  uint32_t idle_after_us = 200;
  uint16_t rx_descriptors = 1024;
  uint16_t tx_descriptors = 1024;
  uint32_t mbufs = 0;                      // 0: enough for every queue (computed)
  std::vector<PortConfig> ports;
  std::vector<RouteConfig> routes;
  uint16_t snat_port_low = 1024;
  uint16_t snat_port_high = 65535;
  dp::EncapSettings encapsulation;  // IPIP and GUE services (dataplane/encap.hpp)
  // Full-NAT's SYN proxy engages for a `syn_proxy: auto` frontend on a worker whose handshakes
  // begun and not completed in a second pass this (dataplane/forwarder_proxy.cpp).
  uint32_t syn_proxy_threshold = 1000;
  uint32_t exception_rate = 10'000;  // frames a second per worker to the kernel interfaces
  DnatReplies dnat_replies = DnatReplies::routed;

  friend bool operator==(const DataplaneConfig&, const DataplaneConfig&) = default;
};

struct AdminConfig {
  std::string address = "127.0.0.1";  // loopback by default
  uint16_t port = 9100;
  bool enabled = true;

  friend bool operator==(const AdminConfig&, const AdminConfig&) = default;
};

// What a watched Service's backends are (docs/k8s.md, "Node targets").
enum class K8sTargets : uint8_t {
  pods,   // its EndpointSlices' addresses
  nodes,  // the cluster's eligible nodes at the Service port's nodePort (watches Nodes)
};

// Health checks of node targets: each node's kube-proxy on a Service's healthCheckNodePort
// (docs/k8s.md "Health checks of node targets"; defaults and their reasons there).
struct HealthChecksConfig {
  uint32_t interval_ms = 5000;
  uint32_t timeout_ms = 2000;  // below interval_ms
  uint32_t healthy_threshold = 2;
  uint32_t unhealthy_threshold = 3;
  uint32_t max_in_flight = 256;

  friend bool operator==(const HealthChecksConfig&, const HealthChecksConfig&) = default;
};

// Watching a Kubernetes API server for Services and EndpointSlices (docs/k8s.md). Absent from
// a file: nothing is watched.
struct KubernetesConfig {
  bool enabled = false;
  bool in_cluster = false;         // service-account token and CA, KUBERNETES_SERVICE_HOST/_PORT
  std::string kubeconfig;          // a kubeconfig file (when not in_cluster); load_config()
                                   // makes a relative one the configuration file's neighbour;
                                   // empty: kubectl's default ($KUBECONFIG, ~/.kube/config)
  std::string context;             // its context; empty: current-context
  std::string namespace_;          // watch one namespace; empty: all
  std::string proxy_name;          // service.kubernetes.io/service-proxy-name to claim
  std::string load_balancer_class; // spec.loadBalancerClass to claim; empty: classless only
  bool default_load_balancer_class = false;  // also claim classless Services (needs a class)
  std::string node_name;           // the node Magline runs as (Local policy, topology hints)
  std::string zone;                // that node's topology.kubernetes.io/zone
  uint32_t table_size = 16381;     // Maglev table size for watched services (the largest)
  uint32_t min_table_size = 4093;  // the smallest; 0: every table has table_size slots
  uint32_t coalesce_ms = 2;        // events within this window are published together
  uint32_t page_limit = 500;       // LIST page size
  K8sTargets targets = K8sTargets::pods;
  HealthChecksConfig health_checks;

  friend bool operator==(const KubernetesConfig&, const KubernetesConfig&) = default;
};

// Leader election among the Magline nodes that run the provider, and their node Leases
// (docs/provider.md). The Lease holds whole seconds: lease_duration_ms is a multiple of 1000.
struct ElectionConfig {
  std::string lease_name = "magline-provider";
  std::string lease_namespace = "kube-system";  // the node Leases' too
  std::string identity;  // unique per node; empty: kubernetes.node_name, else the host name
  uint32_t lease_duration_ms = 15000;  // client-go's defaults (kube-controller-manager's)
  uint32_t renew_deadline_ms = 10000;
  uint32_t retry_period_ms = 2000;

  friend bool operator==(const ElectionConfig&, const ElectionConfig&) = default;
};

// The LoadBalancer provider (docs/provider.md): the pools LoadBalancer IPs are assigned from.
struct ProviderConfig {
  std::vector<dp::AddressPool> pools;
  ElectionConfig election;
  // One node answers ARP/ND for each service address, by rendezvous hashing over the live
  // node Leases (control/l2_speaker.hpp); false: every node answers for every address.
  bool l2_speaker = false;
  friend bool operator==(const ProviderConfig&, const ProviderConfig&) = default;
};

// Announcement over BGP through BIRD (docs/announce.md): Magline writes BIRD's whole
// configuration (`bird_config`) and asks BIRD to read it (`bird_socket`) whenever what it
// announces changes.
struct BgpPeerConfig {
  dp::IpAddr address;
  uint32_t as = 0;
  std::string password;        // TCP MD5 (RFC 2385); empty: none
  uint32_t hold_time_s = 90;   // 0 or 3..65535 (RFC 4271 4.2)
  bool multihop = false;       // the peer is not on a port's subnet
  friend bool operator==(const BgpPeerConfig&, const BgpPeerConfig&) = default;
};

struct BgpCommunity {
  uint16_t as = 0;
  uint16_t value = 0;
  friend bool operator==(const BgpCommunity&, const BgpCommunity&) = default;
};

struct BgpConfig {
  bool enabled = false;  // a `bgp` section is present
  std::string bird_config = "/run/magline/bird.conf";
  std::string bird_socket = "/run/bird/bird.ctl";
  uint32_t local_as = 0;
  std::optional<dp::IpAddr> router_id;  // IPv4; default: the first IPv4 port address
  std::vector<BgpPeerConfig> peers;
  std::vector<BgpCommunity> communities;  // attached to every announced route
  // The next hop announced; none: the session's own address (BIRD's default for eBGP).
  std::optional<dp::IpAddr> next_hop_v4;
  std::optional<dp::IpAddr> next_hop_v6;  // needed for IPv6 routes over an IPv4 session
  bool withdraw_without_backends = true;  // an address none of whose services can serve
  uint32_t drain_ms = 5000;  // SIGTERM: everything withdrawn, then this long before stopping
  friend bool operator==(const BgpConfig&, const BgpConfig&) = default;
};

struct Config {
  std::string source;  // the file it came from, or "<embedded default>"
  std::vector<dp::IpAddr> node_addresses;  // default: every port address
  bool node_addresses_from_ports = false;   // no node.addresses in the file: that default
  uint32_t table_size = dp::kDefaultMaglevSize;
  uint64_t flow_capacity = 1u << 20;  // per worker
  dp::FlowTimeouts timeouts;
  std::vector<ServiceConfig> services;
  DataplaneConfig dataplane;
  AdminConfig admin;
  KubernetesConfig kubernetes;
  ProviderConfig provider;
  BgpConfig bgp;
};

inline constexpr std::string_view kEmbeddedSource = "<embedded default>";
inline constexpr std::string_view kStdinSource = "<stdin>";

// Parses and validates `text`; `source` names it in error messages.
Result<Config> parse_config(std::string_view text, std::string_view source);

// Reads and parses a file; "-" reads standard input (named "<stdin>" in errors). Errors start
// with the path. A relative kubernetes.kubeconfig is resolved against the file's directory
// (the working directory for standard input), made absolute.
Result<Config> load_config(const std::string& path);

// The file at `path`, or the configuration built into the binary when there is none: what
// every subcommand that takes --config runs with.
Result<Config> load_or_default(const std::optional<std::string>& path);

// What a reload (SIGHUP) runs with when `loaded` replaces `running`: the loaded services and
// Maglev table size, and every other section as it runs. The node's addresses (which NodePorts
// of watched Services use too), the flow tables, DPDK and its ports, the admin listener and the
// Kubernetes watch are set up once, at start. `needs_restart` names each such section where the
// file differs, in file order: "node", "flow_table", "dataplane", "admin", "kubernetes",
// "provider", "bgp" (node addresses taken from the ports count as "dataplane").
struct Reload {
  Config config;
  std::vector<std::string> needs_restart;
};
Reload reload_of(const Config& running, Config loaded);

// The configuration built into the binary (config/default.json), used when none is given.
std::string_view embedded_default_config() noexcept;

// The node as the forwarding code sees it: ports (MACs from the configuration, or zero until
// the devices are opened) and routes resolved to port indices.
dp::Node node_of(const Config& config);

// The services to forward: node_port frontends expanded over the node addresses of the
// service's family, the table size resolved. Order as in the file.
std::vector<dp::Service> services_of(const Config& config);

}  // namespace magline::cfg
