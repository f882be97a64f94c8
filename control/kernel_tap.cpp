#include "control/kernel_tap.hpp"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <string_view>
#include <thread>

namespace magline::control {

namespace {

// A descriptor closed on every way out of open(): a failed open() leaves nothing behind, and the
// TAP, not persistent, goes with its fd.
class Fd {
 public:
  explicit Fd(int fd) noexcept : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const noexcept { return fd_; }
  int release() noexcept { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

Error failure(const std::string& name, std::string_view step, int err,
              std::string_view detail = {}) {
  std::string m = "kernel TAP '" + name + "': " + std::string(step) + ": " + std::strerror(err);
  if (!detail.empty()) m += " (" + std::string(detail) + ")";
  return Error{std::move(m)};
}

ifreq request_for(const std::string& name) {
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, name.data(), name.size());  // checked: shorter than IFNAMSIZ
  return ifr;
}

// Writes "0" to /proc/sys/net/ipv6/conf/NAME/KEY. A missing file is not an error: IPv6 is off
// on the interface (an MTU below 1280, or IPv6 disabled in the kernel), nothing to turn off.
Result<void> ipv6_conf_off(const std::string& name, const char* key) {
  const std::string path = "/proc/sys/net/ipv6/conf/" + name + "/" + key;
  const Fd f(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (f.get() < 0) {
    if (errno == ENOENT) return {};
    return failure(name, "opening " + path, errno);
  }
  if (::write(f.get(), "0\n", 2) != 2) return failure(name, "writing 0 to " + path, errno);
  return {};
}

// An rtnetlink request under construction: the netlink header, the message's fixed header
// (ifaddrmsg, rtmsg), attributes. Small: two addresses at most.
class NlRequest {
 public:
  template <typename Fixed>
  NlRequest(uint16_t type, uint16_t flags, const Fixed& fixed) noexcept {
    nh_.nlmsg_type = type;
    nh_.nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | NLM_F_ACK | flags);
    std::memcpy(buf_.data() + NLMSG_HDRLEN, &fixed, sizeof fixed);
    len_ = NLMSG_LENGTH(sizeof fixed);
  }
  void put(uint16_t type, const void* data, size_t n) noexcept {
    rtattr rta{};
    rta.rta_len = static_cast<uint16_t>(RTA_LENGTH(n));
    rta.rta_type = type;
    std::memcpy(buf_.data() + len_, &rta, sizeof rta);
    std::memcpy(buf_.data() + len_ + RTA_LENGTH(0), data, n);
    len_ += RTA_ALIGN(rta.rta_len);
  }
  std::span<const uint8_t> finish(uint32_t seq) noexcept {
    nh_.nlmsg_len = static_cast<uint32_t>(len_);
    nh_.nlmsg_seq = seq;
    std::memcpy(buf_.data(), &nh_, sizeof nh_);
    return {buf_.data(), len_};
  }

 private:
  alignas(nlmsghdr) std::array<uint8_t, 128> buf_{};
  nlmsghdr nh_{};
  size_t len_ = 0;
};

// The kernel's own words on a refused request (NETLINK_EXT_ACK), when it gave some: the
// attributes after the error header, the request itself not echoed (NETLINK_CAP_ACK).
std::string extack_message(std::span<const uint8_t> msg, const nlmsghdr& nh) {
  if (!(nh.nlmsg_flags & NLM_F_ACK_TLVS)) return {};
  size_t off = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(nlmsgerr));
  while (off + sizeof(rtattr) <= msg.size()) {
    rtattr rta;
    std::memcpy(&rta, msg.data() + off, sizeof rta);
    if (rta.rta_len < sizeof rta || off + rta.rta_len > msg.size()) break;
    if (rta.rta_type == NLMSGERR_ATTR_MSG) {
      const char* text = reinterpret_cast<const char*>(msg.data() + off + RTA_LENGTH(0));
      return std::string(text, strnlen(text, rta.rta_len - RTA_LENGTH(0)));
    }
    off += RTA_ALIGN(rta.rta_len);
  }
  return {};
}

// The acknowledgement of a request: 0 or an errno, and what the kernel said about it.
struct Ack {
  int error = 0;
  std::string message;
};

using OnReply = std::function<void(std::span<const uint8_t> msg)>;

// Sends a request on `nl` (an rtnetlink socket) and reads its answer up to the acknowledgement;
// `on_reply` sees every other message of the answer (an RTM_GETROUTE's route). rtnetlink
// handles a request within sendto() and queues the answer before it returns; SO_RCVTIMEO on
// `nl` bounds the wait anyway. The socket joined no group: only answers arrive.
Result<Ack> transact(int nl, const std::string& name, const std::string& what,
                     std::span<const uint8_t> req, uint32_t seq, const OnReply& on_reply) {
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(nl, req.data(), req.size(), 0, reinterpret_cast<const sockaddr*>(&kernel),
               sizeof kernel) != static_cast<ssize_t>(req.size())) {
    return failure(name, what + ": rtnetlink send", errno);
  }
  alignas(nlmsghdr) std::array<uint8_t, 4096> buf;
  for (;;) {
    const ssize_t n = ::recv(nl, buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return failure(name, what + ": rtnetlink receive", errno);
    }
    size_t off = 0;
    while (off + sizeof(nlmsghdr) <= size_t(n)) {
      nlmsghdr nh;
      std::memcpy(&nh, buf.data() + off, sizeof nh);
      if (nh.nlmsg_len < sizeof nh || off + nh.nlmsg_len > size_t(n)) break;
      const std::span<const uint8_t> msg(buf.data() + off, nh.nlmsg_len);
      off += NLMSG_ALIGN(nh.nlmsg_len);
      if (nh.nlmsg_seq != seq) continue;  // a late answer to an earlier request
      if (nh.nlmsg_type != NLMSG_ERROR) {
        on_reply(msg);
        continue;
      }
      if (msg.size() < NLMSG_HDRLEN + sizeof(nlmsgerr)) {
        return failure(name, what + ": rtnetlink", EPROTO, "short acknowledgement");
      }
      nlmsgerr e;
      std::memcpy(&e, msg.data() + NLMSG_HDRLEN, sizeof e);
      return Ack{-e.error, e.error == 0 ? std::string() : extack_message(msg, nh)};
    }
  }
}

std::string text(const dp::IfAddr& a) {
  return dp::to_string(a.addr) + "/" + std::to_string(a.prefix_len);
}

// Assigns `a` to the interface (RTM_NEWADDR). NLM_F_REPLACE: an address already there is
// updated rather than refused.
Result<void> add_address(int nl, const std::string& name, int ifindex, const dp::IfAddr& a,
                         uint32_t seq) {
  const bool v6 = a.addr.family == dp::Family::v6;
  ifaddrmsg ifa{};
  ifa.ifa_family = v6 ? AF_INET6 : AF_INET;
  ifa.ifa_prefixlen = a.prefix_len;
  // The port's addresses are the node's: Magline answers neighbour solicitations for them, so
  // duplicate address detection would fail, and until it passed the address would be unusable.
  ifa.ifa_flags = v6 ? IFA_F_NODAD : 0;
  ifa.ifa_scope = RT_SCOPE_UNIVERSE;  // the kernel derives IPv6 scopes from the address
  ifa.ifa_index = static_cast<uint32_t>(ifindex);
  NlRequest req(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, ifa);
  // IPv4: IFA_LOCAL is the address, IFA_ADDRESS the peer, the same on a broadcast link (what
  // `ip address add` sends). IPv6: IFA_ADDRESS alone.
  if (!v6) req.put(IFA_LOCAL, a.addr.data(), a.addr.size());
  req.put(IFA_ADDRESS, a.addr.data(), a.addr.size());
  const std::string what = "adding address " + text(a);
  Result<Ack> ack = transact(nl, name, what, req.finish(seq), seq, [](auto) {});
  if (!ack) return ack.error();
  if (ack->error != 0) return failure(name, what, ack->error, ack->message);
  return {};
}

// Whether the kernel takes what is sent to `a` as its own: the route it finds for it is local.
// Not yet (false) while it has no route at all either.
Result<bool> is_local(int nl, const std::string& name, const dp::IfAddr& a, uint32_t seq) {
  rtmsg rtm{};
  rtm.rtm_family = a.addr.family == dp::Family::v6 ? AF_INET6 : AF_INET;
  rtm.rtm_dst_len = static_cast<uint8_t>(a.addr.size() * 8);
  NlRequest req(RTM_GETROUTE, 0, rtm);
  req.put(RTA_DST, a.addr.data(), a.addr.size());
  bool local = false;
  const OnReply on_route = [&](std::span<const uint8_t> msg) {
    if (msg.size() < NLMSG_HDRLEN + sizeof(rtmsg)) return;
    rtmsg route;
    std::memcpy(&route, msg.data() + NLMSG_HDRLEN, sizeof route);
    local = route.rtm_type == RTN_LOCAL;
  };
  Result<Ack> ack =
      transact(nl, name, "looking up the route to " + text(a), req.finish(seq), seq, on_route);
  if (!ack) return ack.error();
  return ack->error == 0 && local;
}

}  // namespace

Result<std::unique_ptr<KernelTap>> KernelTap::open(const KernelTapSpec& spec) {
  const std::string& name = spec.name;
  // The kernel would take "" or a '%' as a template (tap0, tap1, ...) and choose the name.
  if (name.empty() || name.size() >= IFNAMSIZ || name.find('%') != std::string::npos) {
    return Error{"kernel TAP '" + name + "': invalid interface name (1 to " +
                 std::to_string(IFNAMSIZ - 1) + " characters, no '%')"};
  }
  // The kernel turns IPv6 off on an interface whose MTU is below IPv6's minimum, and then
  // refuses its addresses with a bare EINVAL.
  constexpr uint16_t kIpv6MinMtu = 1280;  // RFC 8200 5
  for (const dp::IfAddr& a : spec.addrs) {
    if (a.addr.family == dp::Family::v6 && spec.mtu < kIpv6MinMtu) {
      return Error{"kernel TAP '" + name + "': IPv6 address " + text(a) + " on an MTU of " +
                   std::to_string(spec.mtu) + " (IPv6 needs " + std::to_string(kIpv6MinMtu) + ")"};
    }
  }

  Fd tap(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (tap.get() < 0) return failure(name, "opening /dev/net/tun", errno);
  // IFF_TUN_EXCL: an interface of that name must not exist yet, whoever holds it. Without it,
  // TUNSETIFF would attach to an unowned persistent TAP, which would then outlive Magline with
  // the port's addresses on it.
  ifreq ifr = request_for(name);
  ifr.ifr_flags = static_cast<short>(IFF_TAP | IFF_NO_PI | IFF_TUN_EXCL);  // 0x8000: bit 15
  if (::ioctl(tap.get(), TUNSETIFF, &ifr) < 0) {
    const int err = errno;
    return failure(name, "creating the interface (TUNSETIFF)", err,
                   err == EBUSY   ? "an interface of that name exists"
                   : err == EPERM ? "needs CAP_NET_ADMIN"
                                  : "");
  }

  // Interface ioctls go through any socket; the TAP's own fd knows only a few of them.
  const Fd ctl(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (ctl.get() < 0) return failure(name, "control socket", errno);
  ifr = request_for(name);
  if (::ioctl(ctl.get(), SIOCGIFINDEX, &ifr) < 0) return failure(name, "SIOCGIFINDEX", errno);
  const int ifindex = ifr.ifr_ifindex;

  ifr = request_for(name);
  ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
  std::memcpy(ifr.ifr_hwaddr.sa_data, spec.mac.b.data(), spec.mac.b.size());
  if (::ioctl(ctl.get(), SIOCSIFHWADDR, &ifr) < 0) {
    return failure(name, "setting the MAC " + dp::to_string(spec.mac) + " (SIOCSIFHWADDR)", errno);
  }
  ifr = request_for(name);
  ifr.ifr_mtu = spec.mtu;
  if (::ioctl(ctl.get(), SIOCSIFMTU, &ifr) < 0) {
    return failure(name, "setting the MTU " + std::to_string(spec.mtu) + " (SIOCSIFMTU)", errno);
  }

  // Before IFF_UP, so that they apply to the link-local address the kernel makes when the
  // interface comes up (EUI-64 from the MAC: Magline must let the kernel's neighbour discovery
  // for it through, or answer for it). SLAAC off: router advertisements on the port's link give
  // the node no address Magline does not know of.
  for (const char* key : {"autoconf", "accept_dad"}) {
    if (Result<void> r = ipv6_conf_off(name, key); !r) return r.error();
  }

  const Fd nl(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (nl.get() < 0) return failure(name, "rtnetlink socket", errno);
  const int one = 1;
  // Best effort both: without them, errors are plain errnos and acks echo the request.
  setsockopt(nl.get(), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  setsockopt(nl.get(), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  const timeval timeout{2, 0};
  setsockopt(nl.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  uint32_t seq = 0;
  for (const dp::IfAddr& a : spec.addrs) {
    if (Result<void> r = add_address(nl.get(), name, ifindex, a, ++seq); !r) return r.error();
  }

  ifr = request_for(name);
  if (::ioctl(ctl.get(), SIOCGIFFLAGS, &ifr) < 0) return failure(name, "SIOCGIFFLAGS", errno);
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  if (::ioctl(ctl.get(), SIOCSIFFLAGS, &ifr) < 0) {
    return failure(name, "bringing it up (SIOCSIFFLAGS)", errno);
  }

  // IPv4 addresses are in use once IFF_UP returns; IPv6 ones only when the kernel's DAD work
  // has run on its workqueue, which skips DAD (IFA_F_NODAD) but runs after IFF_UP all the same:
  // until then they have no local route and what is sent to them is dropped. Waiting for that
  // (a millisecond or so) makes the TAP answer as soon as open() returns.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  for (const dp::IfAddr& a : spec.addrs) {
    for (;;) {
      const Result<bool> local = is_local(nl.get(), name, a, ++seq);
      if (!local) return local.error();
      if (*local) break;
      if (std::chrono::steady_clock::now() > deadline) {
        return Error{"kernel TAP '" + name + "': address " + text(a) +
                     " not in use 2 s after the interface came up (no local route)"};
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  return std::unique_ptr<KernelTap>(new KernelTap(name, tap.release(), ifindex, spec.mtu));
}

KernelTap::~KernelTap() {
  if (fd_ >= 0) ::close(fd_);
}

bool KernelTap::write(std::span<const uint8_t> frame) noexcept {
  return ::write(fd_, frame.data(), frame.size()) == static_cast<ssize_t>(frame.size());
}

// The tun driver copies what fits of a frame and returns the smaller of the frame's length and
// the buffer's, so a frame that fills the buffer exactly and a longer one cut down to it look
// the same. One byte more, in a second iovec, tells them apart within the same syscall.
ssize_t KernelTap::read(std::span<uint8_t> buf) noexcept {
  uint8_t spill;
  iovec iov[2] = {{buf.data(), buf.size()}, {&spill, 1}};
  const ssize_t n = ::readv(fd_, iov, 2);
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
  if (static_cast<size_t>(n) > buf.size()) {
    errno = EMSGSIZE;
    return -1;
  }
  return n;
}

}  // namespace magline::control
