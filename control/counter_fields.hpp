// One table per counter struct, naming each field once for both outputs: its key in the JSON
// reports (/stats, `magline run`'s final report) and its Prometheus family (/metrics), with the
// family's type and help text. A family may take several fields, told apart by a label (drops by
// reason, evictions by state); its samples then add up to something meaningful.
//
// Each table's static_assert checks that it covers every field of its struct: a counter added
// to a struct and forgotten here does not compile.
#pragma once

#include <cstdint>
#include <span>

#include "control/exposition.hpp"
#include "dataplane/flow_table.hpp"
#include "dataplane/forwarder.hpp"
#include "dataplane/slow_path.hpp"
#include "dataplane/worker.hpp"

namespace magline::control {

template <typename T>
struct Field {
  const char* json;    // key in the JSON reports
  const char* metric;  // Prometheus family
  const char* label;   // `name="value"` telling this field apart within its family, or ""
  MetricType type;
  const char* help;    // the family's help text (the first field of the family gives it)
  uint64_t T::*member;
  double scale = 0;    // /metrics shows member * scale (e.g. microseconds as seconds); 0: as is
};

inline constexpr Field<dp::ForwarderCounters> kForwarderFields[] = {
    {"rx_packets", "magline_rx_packets_total", "", MetricType::counter,
     "Frames received by the worker.", &dp::ForwarderCounters::rx_packets},
    {"rx_bytes", "magline_rx_bytes_total", "", MetricType::counter,
     "Bytes received by the worker.", &dp::ForwarderCounters::rx_bytes},
    {"tx_packets", "magline_tx_packets_total", "", MetricType::counter,
     "Frames the worker sent.", &dp::ForwarderCounters::tx_packets},
    {"tx_bytes", "magline_tx_bytes_total", "", MetricType::counter, "Bytes the worker sent.",
     &dp::ForwarderCounters::tx_bytes},
    {"new_connections", "magline_new_connections_total", "", MetricType::counter,
     "Connections given a backend.", &dp::ForwarderCounters::new_connections},
    {"replies", "magline_replies_total", "", MetricType::counter,
     "Reply frames translated back to clients.", &dp::ForwarderCounters::replies},
    {"dnat_returns_refused", "magline_dnat_returns_refused_total", "", MetricType::counter,
     "DNAT backends a worker could not record for replies without an entry (65,536 at most): "
     "their replies without one are dropped as no_service.",
     &dp::ForwarderCounters::dnat_returns_refused},
    {"stateless_replies", "magline_stateless_replies_total", "", MetricType::counter,
     "DNAT replies translated without a connection entry (a connection of one entry, one "
     "opened by another node, or one whose entry was lost).",
     &dp::ForwarderCounters::stateless_replies},
    {"one_entry_connections", "magline_one_entry_connections_total", "", MetricType::counter,
     "DNAT connections opened without a reply entry: their replies are translated from the "
     "backend alone and routed to the client.",
     &dp::ForwarderCounters::one_entry_connections},
    {"icmp_errors", "magline_icmp_errors_total", "", MetricType::counter,
     "ICMP errors passed on to the host whose packet they quote (path MTU discovery).",
     &dp::ForwarderCounters::icmp_errors},
    {"stateless", "magline_stateless_total", "", MetricType::counter,
     "Frames forwarded without a flow entry (table full).", &dp::ForwarderCounters::stateless},
    {"syns_without_state", "magline_syns_without_state_total", "", MetricType::counter,
     "SYNs forwarded by Maglev without a flow entry, the handshake's ACK opening it: "
     "direct-return (L2 DSR, IPIP, GUE) ones, and DNAT ones under a SYN flood.",
     &dp::ForwarderCounters::syns_without_state},
    {"too_big", "magline_too_big_total", "", MetricType::counter,
     "ICMP fragmentation needed / packet too big sent to clients whose packets would exceed the "
     "path MTU once encapsulated.",
     &dp::ForwarderCounters::too_big},
    {"fragments", "magline_fragments_total", "", MetricType::counter,
     "IP fragments of TCP, UDP and SCTP datagrams forwarded with their connection (the later "
     "ones matched to their first by identification).",
     &dp::ForwarderCounters::fragments},
    {"fragments_held", "magline_fragments_held_total", "", MetricType::counter,
     "Later fragments that came before their datagram's first one, held until it came (or "
     "displaced after 64 more: dropped as fragment_unmatched).",
     &dp::ForwarderCounters::fragments_held},
    {"syn_cookies_sent", "magline_syn_cookies_sent_total", "", MetricType::counter,
     "SYNs to full-NAT frontends answered by the SYN proxy with a cookie (no state kept).",
     &dp::ForwarderCounters::syn_cookies_sent},
    {"syn_cookies_valid", "magline_syn_cookies_valid_total", "", MetricType::counter,
     "ACKs returning a valid cookie: connections the SYN proxy opened to a backend.",
     &dp::ForwarderCounters::syn_cookies_valid},
    {"syn_proxy_completed", "magline_syn_proxy_completed_total", "", MetricType::counter,
     "SYN-proxied connections whose backend completed the handshake.",
     &dp::ForwarderCounters::syn_proxy_completed},
    {"syn_proxy_held", "magline_syn_proxy_held_total", "", MetricType::counter,
     "Client segments held until the backend completed a SYN-proxied handshake.",
     &dp::ForwarderCounters::syn_proxy_held},
    {"rejected", "magline_rejected_total", "", MetricType::counter,
     "Connections answered with TCP RST or ICMP unreachable.", &dp::ForwarderCounters::rejected},
    {"reset_removed_backend", "magline_reset_removed_backend_total", "", MetricType::counter,
     "TCP connections reset because their backend was removed.",
     &dp::ForwarderCounters::reset_removed_backend},
    {"rescheduled", "magline_rescheduled_total", "", MetricType::counter,
     "UDP and SCTP flows moved off a removed backend.", &dp::ForwarderCounters::rescheduled},
    {"to_slow_path", "magline_to_slow_path_total", "", MetricType::counter,
     "Frames handed to the control thread (ARP, NDP, pings, frames waiting for a neighbour).",
     &dp::ForwarderCounters::to_slow_path},
    {"to_kernel", "magline_to_kernel_total", "", MetricType::counter,
     "Of those, frames for the node itself, for its kernel interface (the exception path).",
     &dp::ForwarderCounters::to_kernel},
    {"peer_messages_sent", "magline_peer_messages_total", "outcome=\"sent\"",
     MetricType::counter,
     "Messages to other workers (reply entries, state changes, affinity), by outcome.",
     &dp::ForwarderCounters::peer_messages_sent},
    {"peer_messages_lost", "magline_peer_messages_total", "outcome=\"lost\"",
     MetricType::counter, "", &dp::ForwarderCounters::peer_messages_lost},
    {"peer_messages_received", "magline_peer_messages_received_total", "", MetricType::counter,
     "Messages from other workers.", &dp::ForwarderCounters::peer_messages_received},
    {"handoffs_sent", "magline_handoffs_sent_total", "", MetricType::counter,
     "Frames handed to the worker holding their connection (ICMP errors RSS sent here).",
     &dp::ForwarderCounters::handoffs_sent},
    {"handoffs_received", "magline_handoffs_received_total", "", MetricType::counter,
     "Frames other workers handed to this one.", &dp::ForwarderCounters::handoffs_received},
    {"updates_applied", "magline_updates_applied_total", "", MetricType::counter,
     "Updates from the control thread the worker applied.",
     &dp::ForwarderCounters::updates_applied},
};
static_assert(std::size(kForwarderFields) * sizeof(uint64_t) ==
                  sizeof(dp::ForwarderCounters) - sizeof(dp::ForwarderCounters::drops),
              "every ForwarderCounters field has a row (drops are by reason, drop_reason.hpp)");

inline constexpr Field<dp::WorkerIoCounters> kWorkerIoFields[] = {
    {"tx_full", "magline_tx_full_total", "", MetricType::counter,
     "Frames the device did not take (freed).", &dp::WorkerIoCounters::tx_full},
    {"slow_ring_full", "magline_slow_ring_full_total", "", MetricType::counter,
     "Frames for the control thread freed because its ring was full.",
     &dp::WorkerIoCounters::slow_full},
    {"handoff_ring_full", "magline_handoff_ring_full_total", "", MetricType::counter,
     "Handed-off frames freed because the other worker's peer ring was full.",
     &dp::WorkerIoCounters::handoff_full},
    {"polls", "magline_polls_total", "", MetricType::counter, "Turns of the worker's loop.",
     &dp::WorkerIoCounters::polls},
    {"idle_polls", "magline_idle_polls_total", "", MetricType::counter,
     "Turns of the worker's loop that found nothing to do.", &dp::WorkerIoCounters::idle_polls},
    {"idle_sleeps", "magline_idle_sleeps_total", "", MetricType::counter,
     "Sleeps of the worker's loop after it found nothing to do for dataplane.idle_after_us.",
     &dp::WorkerIoCounters::idle_sleeps},
    {"idle_slept_us", "magline_idle_sleep_seconds_total", "", MetricType::counter,
     "Time the worker's loop slept, idle.", &dp::WorkerIoCounters::idle_slept_us, 1e-6},
};
static_assert(std::size(kWorkerIoFields) * sizeof(uint64_t) == sizeof(dp::WorkerIoCounters));

inline constexpr Field<dp::FlowTableStats> kFlowTableFields[] = {
    {"capacity", "magline_flow_table_capacity", "", MetricType::gauge, "Flow-table entry slots.",
     &dp::FlowTableStats::capacity},
    {"occupied", "magline_flow_table_entries", "", MetricType::gauge,
     "Flow-table entries in use.", &dp::FlowTableStats::occupied},
    {"inserts", "magline_flow_table_inserts_total", "", MetricType::counter,
     "Flow entries created.", &dp::FlowTableStats::inserts},
    {"insert_failures", "magline_flow_table_insert_failures_total", "", MetricType::counter,
     "Flow entries that found no room.", &dp::FlowTableStats::insert_failures},
    {"reclaimed_expired", "magline_flow_table_reclaimed_total", "", MetricType::counter,
     "Expired entries reclaimed.", &dp::FlowTableStats::reclaimed_expired},
    {"evicted_half_open", "magline_flow_table_evictions_total", "state=\"half_open\"",
     MetricType::counter, "Live entries evicted for new ones, by the state they were in.",
     &dp::FlowTableStats::evicted_half_open},
    {"evicted_closed", "magline_flow_table_evictions_total", "state=\"closed\"",
     MetricType::counter, "", &dp::FlowTableStats::evicted_closed},
    {"evicted_affinity", "magline_flow_table_evictions_total", "state=\"affinity\"",
     MetricType::counter, "", &dp::FlowTableStats::evicted_affinity},
    {"evicted_half_closed", "magline_flow_table_evictions_total", "state=\"half_closed\"",
     MetricType::counter, "", &dp::FlowTableStats::evicted_half_closed},
    {"evicted_answered", "magline_flow_table_evictions_total", "state=\"answered\"",
     MetricType::counter, "", &dp::FlowTableStats::evicted_answered},
    {"evicted_unconfirmed", "magline_flow_table_evictions_total", "state=\"unconfirmed\"",
     MetricType::counter, "", &dp::FlowTableStats::evicted_unconfirmed},
    {"displaced", "magline_flow_table_displaced_total", "", MetricType::counter,
     "Entries moved to their other bucket to make room.", &dp::FlowTableStats::displaced},
    {"erased", "magline_flow_table_erased_total", "", MetricType::counter,
     "Entries removed before their time (a connection re-opened, its backend removed).",
     &dp::FlowTableStats::erased},
};
static_assert(std::size(kFlowTableFields) * sizeof(uint64_t) == sizeof(dp::FlowTableStats));

inline constexpr Field<dp::SlowPathStats> kSlowPathFields[] = {
    {"arp_requests_answered", "magline_slow_path_answered_total", "protocol=\"arp\"",
     MetricType::counter, "ARP requests and neighbour solicitations answered, by protocol.",
     &dp::SlowPathStats::arp_requests_answered},
    {"nd_solicitations_answered", "magline_slow_path_answered_total", "protocol=\"ndp\"",
     MetricType::counter, "", &dp::SlowPathStats::nd_solicitations_answered},
    {"arp_replies_learned", "magline_slow_path_learned_total", "protocol=\"arp\"",
     MetricType::counter, "Neighbours learnt from ARP replies and advertisements, by protocol.",
     &dp::SlowPathStats::arp_replies_learned},
    {"nd_advertisements_learned", "magline_slow_path_learned_total", "protocol=\"ndp\"",
     MetricType::counter, "", &dp::SlowPathStats::nd_advertisements_learned},
    {"echo_requests_answered", "magline_slow_path_echo_answered_total", "",
     MetricType::counter, "Pings to a port address or a VIP answered.",
     &dp::SlowPathStats::echo_requests_answered},
    {"requests_sent", "magline_slow_path_requests_sent_total", "", MetricType::counter,
     "ARP requests and neighbour solicitations sent to resolve next hops.",
     &dp::SlowPathStats::requests_sent},
    {"queued", "magline_slow_path_held_total", "", MetricType::counter,
     "Frames held while their next hop was resolved.", &dp::SlowPathStats::queued},
    {"released", "magline_slow_path_released_total", "", MetricType::counter,
     "Held frames sent once their next hop resolved.", &dp::SlowPathStats::released},
    {"dropped_unresolved", "magline_slow_path_dropped_total", "reason=\"unresolved\"",
     MetricType::counter, "Frames the slow path dropped, by reason.",
     &dp::SlowPathStats::dropped_unresolved},
    {"dropped_queue_full", "magline_slow_path_dropped_total", "reason=\"queue_full\"",
     MetricType::counter, "", &dp::SlowPathStats::dropped_queue_full},
    {"dropped_table_full", "magline_slow_path_dropped_total", "reason=\"table_full\"",
     MetricType::counter, "", &dp::SlowPathStats::dropped_table_full},
    {"alloc_failed", "magline_slow_path_alloc_failed_total", "", MetricType::counter,
     "Requests, answers or announcements not sent for want of a buffer.",
     &dp::SlowPathStats::alloc_failed},
    {"ignored", "magline_slow_path_ignored_total", "", MetricType::counter,
     "Frames for the slow path that were not for Magline, malformed or unsupported.",
     &dp::SlowPathStats::ignored},
    {"path_mtus_learned", "magline_path_mtus_learned_total", "", MetricType::counter,
     "Tunnelled backends' path MTUs learned or lowered from routers' ICMP errors.",
     &dp::SlowPathStats::path_mtus_learned},
    {"path_mtus_expired", "magline_path_mtus_expired_total", "", MetricType::counter,
     "Learned path MTUs forgotten after their expiry (10 minutes).",
     &dp::SlowPathStats::path_mtus_expired},
    {"path_mtus_refused", "magline_path_mtus_refused_total", "", MetricType::counter,
     "Path MTUs not learned: too many backends had one already.",
     &dp::SlowPathStats::path_mtus_refused},
    {"split_packets", "magline_split_packets_total", "", MetricType::counter,
     "Encapsulated packets too big for the path (inner IPv4 without DF) split by the slow path.",
     &dp::SlowPathStats::split_packets},
    {"split_pieces", "magline_split_pieces_total", "", MetricType::counter,
     "The pieces they were split into, each sent on.", &dp::SlowPathStats::split_pieces},
    {"split_failed", "magline_slow_path_dropped_total", "reason=\"split_failed\"",
     MetricType::counter, "", &dp::SlowPathStats::split_failed},
    {"kernel_frames", "magline_slow_path_kernel_frames_total", "", MetricType::counter,
     "Frames for a kernel interface: for the node itself, and ARP and NDP Magline did not answer.",
     &dp::SlowPathStats::kernel_frames},
};
static_assert(std::size(kSlowPathFields) * sizeof(uint64_t) == sizeof(dp::SlowPathStats));

// The control thread's own counters.
struct ControlCounters {
  uint64_t reloads = 0;            // SIGHUPs, applied or refused
  uint64_t reloads_refused = 0;
  uint64_t updates_published = 0;
  uint64_t control_tx_full = 0;    // slow-path frames dropped: worker 0's ring was full
  // The exception path (control/kernel_tap.hpp): frames written to the kernel interfaces, and
  // read from them and sent on their ports; frames the kernel did not take, and frames read
  // that found no buffer.
  uint64_t kernel_written = 0;
  uint64_t kernel_read = 0;
  uint64_t kernel_refused = 0;
  uint64_t kernel_no_buffer = 0;
  // The L2 speaker (provider.l2_speaker): the addresses this node answers ARP/ND for, the live
  // nodes it shares them with (itself included), and addresses it took over since the start.
  uint64_t l2_owned = 0;
  uint64_t l2_live_nodes = 0;
  uint64_t l2_takeovers = 0;
  double last_update_ms = 0;       // publish to every worker applying it (a gauge of its own)
};

inline constexpr Field<ControlCounters> kControlFields[] = {
    {"reloads", "magline_reloads_total", "", MetricType::counter,
     "SIGHUP reloads, applied or refused.", &ControlCounters::reloads},
    {"reloads_refused", "magline_reloads_refused_total", "", MetricType::counter,
     "SIGHUP reloads refused (the running configuration kept).",
     &ControlCounters::reloads_refused},
    {"updates_published", "magline_updates_total", "", MetricType::counter,
     "Configuration publishes sent to the workers.", &ControlCounters::updates_published},
    {"control_tx_full", "magline_control_tx_full_total", "", MetricType::counter,
     "Slow-path frames dropped because worker 0's ring from the control thread was full.",
     &ControlCounters::control_tx_full},
    {"kernel_written", "magline_exception_frames_total", "direction=\"to_kernel\"",
     MetricType::counter,
     "Frames through the exception path: written to a kernel interface, or read from one and "
     "sent on its port.",
     &ControlCounters::kernel_written},
    {"kernel_read", "magline_exception_frames_total", "direction=\"from_kernel\"",
     MetricType::counter, "", &ControlCounters::kernel_read},
    {"kernel_refused", "magline_exception_dropped_total", "reason=\"kernel_refused\"",
     MetricType::counter,
     "Exception-path frames dropped: the kernel did not take them, or no buffer was free for "
     "one it sent.",
     &ControlCounters::kernel_refused},
    {"kernel_no_buffer", "magline_exception_dropped_total", "reason=\"no_buffer\"",
     MetricType::counter, "", &ControlCounters::kernel_no_buffer},
    {"l2_owned", "magline_l2_owned_addresses", "", MetricType::gauge,
     "Service addresses this node answers ARP and neighbour solicitations for (the L2 "
     "speaker, provider.l2_speaker).",
     &ControlCounters::l2_owned},
    {"l2_live_nodes", "magline_l2_live_nodes", "", MetricType::gauge,
     "Live Magline nodes the L2 speaker shares the addresses with, this one included (0 while "
     "this node does not hold its own Lease).",
     &ControlCounters::l2_live_nodes},
    {"l2_takeovers", "magline_l2_takeovers_total", "", MetricType::counter,
     "Addresses the L2 speaker took over (and announced) since the start.",
     &ControlCounters::l2_takeovers},
};
static_assert(std::size(kControlFields) * sizeof(uint64_t) + sizeof(double) ==
              sizeof(ControlCounters));

}  // namespace magline::control
