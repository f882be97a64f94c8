// The SYN proxy of full-NAT services: the segments it builds and how it translates the rest.
// (DPVS's synproxy and Linux's SYNPROXY target are the anchors.)
//
// Under a SYN flood a full-NAT SYN would cost a flow entry, a reply entry and a source port
// each. With the proxy engaged (forwarder.hpp says when), Magline answers the SYN itself with a
// cookie (syn_cookie.hpp) and keeps nothing. Only a client that returns the cookie in its ACK
// gets a connection: Magline opens it to the backend with a SYN of its own (the client's ISN
// and options), holds the client's first data segment, and on the backend's SYN-ACK completes
// that handshake (the held segment goes with the ACK). From then on every segment is
// translated, both ways, for the connection's life:
// - sequence numbers: the client saw the cookie as the server's ISN, the backend chose its own;
//   acknowledgments and SACK blocks towards the backend, sequence numbers towards the client;
// - timestamps: the client saw Magline's TSval, the backend has its own clock;
// - windows: the client was offered window scale kProxyWscale, the backend gave its own (or
//   none); a window too large for the client's view is capped at the largest it can show.
// ECN is not offered. A client without timestamps gets no window scaling and no SACK (its SYN's
// options do not survive the cookie), as from Linux.
//
// Contract: per-packet path, noexcept, no allocation. Builders work in place on the frame
// `in` was parsed from, keep its L2 header (VLAN tags included) and write fresh IP headers
// (no options or extension headers); they return DropReason::none or why not, having changed
// nothing. Translators update the TCP checksum incrementally.
#pragma once

#include <cstdint>
#include <span>

#include "dataplane/drop_reason.hpp"
#include "dataplane/flow_table.hpp"
#include "dataplane/packet.hpp"
#include "dataplane/parse.hpp"
#include "dataplane/syn_cookie.hpp"

namespace magline::dp {

inline constexpr uint8_t kProxyWscale = 7;  // what Linux offers with its default buffers
inline constexpr uint16_t kProxySynWindow = 65535;

// A client's SYN options as a ProxyFlow keeps them (its client_options byte).
struct ClientOptions {
  uint8_t wscale = kNoWscale;
  bool sack_permitted = false;
  bool timestamps = false;
  uint8_t mss_index = 0;  // into kCookieMss
};
uint8_t pack(const ClientOptions& o) noexcept;
ClientOptions unpack_client_options(uint8_t packed) noexcept;

// The client's SYN becomes Magline's SYN-ACK, from the frontend, with the Ethernet addresses
// swapped: ISN `cookie`, MSS `mss`, and, when the client sent timestamps, TSval `tsval`
// (cookie_tsval()), SACK permitted and window scale kProxyWscale as far as the client offered
// them.
DropReason make_cookie_syn_ack(Packet& p, const Parsed& in, const TcpOptions& client,
                               uint32_t cookie, uint16_t mss, uint32_t tsval) noexcept;

// A segment of the client's becomes Magline's SYN to the backend, with the tuple `to` (full-NAT
// source, backend): the client's ISN and SYN options, as the ProxyFlow `f` keeps them, and
// `tsval`, the client's latest. The Ethernet addresses are left to the caller.
DropReason make_backend_syn(Packet& p, const Parsed& in, const FlowKey& to, const ProxyFlow& f,
                            uint32_t tsval) noexcept;

// The backend's SYN-ACK becomes the handshake's last ACK, back to the backend with the
// Ethernet addresses swapped: acknowledging `backend_isn`, with the client's window translated
// and, when both use timestamps, TSval `client_tsval` and TSecr `backend_tsval`. `f` must be
// complete (complete_proxy_flow()).
DropReason make_backend_ack(Packet& p, const Parsed& in, const ProxyFlow& f,
                            uint32_t client_tsval, uint32_t backend_tsval) noexcept;

// What the backend's SYN-ACK (`in`, frame bytes `frame`) teaches `f`: the sequence and
// timestamp deltas and its window scale. Returns the client's TSval `f` held until now.
uint32_t complete_proxy_flow(ProxyFlow& f, std::span<const uint8_t> frame,
                             const Parsed& in) noexcept;

// Translations of an established proxied connection's segments, made before the addresses are
// rewritten: client -> backend (acknowledgment, SACK blocks, TSecr, window) and backend ->
// client (sequence number, TSval, window).
void proxy_to_backend(std::span<uint8_t> frame, const Parsed& p, const ProxyFlow& f) noexcept;
void proxy_to_client(std::span<uint8_t> frame, const Parsed& p, const ProxyFlow& f) noexcept;

// The backend's RST answering Magline's SYN, made acceptable to the client (RFC 5961 3.2: the
// sequence number the client expects next from the server, the cookie's successor).
void proxy_reset_to_client(std::span<uint8_t> frame, const Parsed& p, const ProxyFlow& f) noexcept;

}  // namespace magline::dp
