// The kernel side of the exception path: a Linux TAP interface that stands for a DPDK port in
// the node's own network stack. Magline writes into it the frames addressed to the node itself
// (SSH, a BGP session), and sends on the port what the kernel writes out of it, so the kernel
// must look like the port: same MAC, same MTU, same addresses.
//
// The TAP is not persistent: it disappears when its fd is closed (the destructor, or the process
// exiting however it exits), so a crash leaves no stale interface and a restart starts clean.
//
// open() runs ioctls, /proc/sys writes and rtnetlink requests; it needs CAP_NET_ADMIN. The
// per-frame functions are one non-blocking syscall each, noexcept, for whichever single thread
// moves the frames (not thread-safe between themselves).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/node.hpp"
#include "dataplane/result.hpp"

namespace magline::control {

struct KernelTapSpec {
  std::string name;     // the interface's name: 1 to 15 characters (IFNAMSIZ - 1), no '%'
  dp::MacAddr mac;      // the DPDK port's MAC: the kernel's frames leave with it
  uint16_t mtu = 1500;  // at least 1280 with IPv6 addresses
  // The port's addresses with their prefix lengths, assigned to the interface: the kernel then
  // has the port's on-link subnets as connected routes.
  std::vector<dp::IfAddr> addrs;
};

class KernelTap {
 public:
  // Room in a frame beyond the MTU: an Ethernet header and one VLAN tag. A read buffer of
  // mtu + kFrameOverhead bytes holds any frame the kernel sends.
  static constexpr size_t kFrameOverhead = 18;

  // Creates the TAP and makes it the port's double, in this order: TUNSETIFF (IFF_TAP |
  // IFF_NO_PI, non-blocking, close-on-exec), the MAC, the MTU, IPv6 SLAAC and DAD off (the
  // addresses are the port's, and Magline itself answers neighbour solicitations for them, so
  // DAD would see them as duplicates), every address (IPv6 ones with IFA_F_NODAD), IFF_UP; then
  // it waits (2 s at most; rarely at all) until every address has its local route, so that the
  // kernel answers for them as soon as open() returns. Errors name the step, the interface and
  // the cause; nothing is left behind.
  //
  // The kernel adds a link-local IPv6 address of its own (EUI-64 of the MAC) and speaks from it
  // at once: MLD reports and router solicitations. Router advertisements are accepted (for
  // routes), not used for addresses.
  //
  // A name already in use fails with EBUSY, whatever holds it (IFF_TUN_EXCL): a second open()
  // of the same name, another interface, an unowned persistent TAP (`ip tuntap add`), which
  // would otherwise be taken over and then outlive Magline.
  static Result<std::unique_ptr<KernelTap>> open(const KernelTapSpec& spec);

  ~KernelTap();  // closes the fd: the interface goes away
  KernelTap(const KernelTap&) = delete;
  KernelTap& operator=(const KernelTap&) = delete;

  // One frame to the kernel, as if received on the interface. False when the kernel did not
  // take it (any write error: e.g. EIO while the interface is down, EINVAL for a frame shorter
  // than an Ethernet header).
  bool write(std::span<const uint8_t> frame) noexcept;

  // One frame from the kernel into `buf`: its length; 0 when none is waiting; -1 on an error
  // (errno says which). A frame longer than `buf` is consumed and lost: the tun driver copies
  // what fits and returns that much, as for a frame of exactly that size, so read() asks for
  // one byte more and returns -1 with EMSGSIZE, not a truncated frame, when it comes. It does
  // not happen with a buffer of frame_capacity() bytes.
  ssize_t read(std::span<uint8_t> buf) noexcept;

  const std::string& name() const noexcept { return name_; }
  int ifindex() const noexcept { return ifindex_; }
  int fd() const noexcept { return fd_; }  // for poll(): POLLIN when a frame is waiting
  size_t frame_capacity() const noexcept { return size_t{mtu_} + kFrameOverhead; }

 private:
  KernelTap(std::string name, int fd, int ifindex, uint16_t mtu) noexcept
      : name_(std::move(name)), fd_(fd), ifindex_(ifindex), mtu_(mtu) {}

  std::string name_;
  int fd_ = -1;
  int ifindex_ = 0;
  uint16_t mtu_ = 0;
};

}  // namespace magline::control
