#include "agent/check/probe.h"

#include <arpa/inet.h>
#include <linux/icmp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "netplane/ipam/ip.h"

namespace mesh::agent {
namespace {

constexpr char kPayload[] = "mesh check\n";

sockaddr_in SockAddr(in_addr address, uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr = address;
  sa.sin_port = htons(port);
  return sa;
}

// The RFC 1071 checksum.
uint16_t Checksum(const uint8_t* data, size_t len) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < len; i += 2) sum += static_cast<uint32_t>(data[i] << 8 | data[i + 1]);
  if (len % 2 != 0) sum += static_cast<uint32_t>(data[len - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

// Echo identifiers: distinct per probe of this process, so concurrent checks from one
// namespace tell their replies apart.
uint16_t NextEchoId() {
  static std::atomic<uint16_t> next{static_cast<uint16_t>(getpid() * 2654435761u >> 16)};
  return next.fetch_add(1);
}

std::string UnreachableText(uint8_t type, uint8_t code, in_addr from) {
  const std::string by =
      absl::StrCat(" (ICMP from ", netplane::ipam::FromInAddr(from).ToString(), ")");
  if (type == ICMP_TIME_EXCEEDED) return absl::StrCat("time to live exceeded", by);
  switch (code) {
    case ICMP_NET_UNREACH:
      return absl::StrCat("network unreachable", by);
    case ICMP_HOST_UNREACH:
      return absl::StrCat("host unreachable", by);
    case ICMP_PROT_UNREACH:
      return absl::StrCat("protocol unreachable", by);
    case ICMP_PORT_UNREACH:
      return absl::StrCat("port unreachable", by);
    case ICMP_NET_ANO:
    case ICMP_HOST_ANO:
    case ICMP_PKT_FILTERED:
      return absl::StrCat("administratively prohibited", by);
    default:
      return absl::StrCat("destination unreachable, code ", code, by);
  }
}

}  // namespace

std::string ProbeTargetName(ProbeProtocol protocol, uint16_t port) {
  switch (protocol) {
    case ProbeProtocol::kTcp:
      return absl::StrCat(port, "/tcp");
    case ProbeProtocol::kUdp:
      return absl::StrCat(port, "/udp");
    case ProbeProtocol::kIcmp:
      break;
  }
  return "icmp";
}

absl::StatusOr<std::unique_ptr<Probe>> Probe::Prepare(const NamespaceHandle& netns,
                                                      const ProbeTarget& target) {
  UniqueFd socket_fd;
  in_addr source{};
  int route_error = 0;
  absl::Status made = RunInNetns(netns, [&]() -> absl::Status {
    // A connected UDP socket is a route lookup that sends nothing: it learns the source
    // address the namespace would use.
    UniqueFd route(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!route) return ErrnoToStatus(errno, "probe: socket");
    sockaddr_in dst = SockAddr(target.destination, target.port == 0 ? 9 : target.port);
    if (::connect(route.get(), reinterpret_cast<sockaddr*>(&dst), sizeof(dst)) != 0) {
      route_error = errno;
      return absl::OkStatus();
    }
    sockaddr_in local{};
    socklen_t len = sizeof(local);
    if (::getsockname(route.get(), reinterpret_cast<sockaddr*>(&local), &len) != 0) {
      return ErrnoToStatus(errno, "probe: getsockname");
    }
    source = local.sin_addr;
    switch (target.protocol) {
      case ProbeProtocol::kTcp:
        socket_fd = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        break;
      case ProbeProtocol::kUdp:
        socket_fd = UniqueFd(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        break;
      case ProbeProtocol::kIcmp:
        socket_fd =
            UniqueFd(::socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP));
        break;
    }
    if (!socket_fd) return ErrnoToStatus(errno, "probe: socket");
    return absl::OkStatus();
  });
  if (!made.ok()) return made;

  std::unique_ptr<Probe> probe(new Probe(target, std::move(socket_fd)));
  probe->packet_.destination = target.destination;
  probe->packet_.proto = target.protocol == ProbeProtocol::kTcp   ? IPPROTO_TCP
                         : target.protocol == ProbeProtocol::kUdp ? IPPROTO_UDP
                                                                  : IPPROTO_ICMP;
  if (route_error != 0) {
    probe->FinishWithErrno(route_error);
    return probe;
  }
  probe->packet_.source = source;
  const int fd = probe->socket_.get();
  if (target.protocol == ProbeProtocol::kIcmp) {
    icmp_filter filter{
        ~((1U << ICMP_ECHOREPLY) | (1U << ICMP_DEST_UNREACH) | (1U << ICMP_TIME_EXCEEDED))};
    (void)::setsockopt(fd, SOL_RAW, ICMP_FILTER, &filter, sizeof(filter));
    probe->packet_.icmp_id = NextEchoId();
    return probe;
  }
  // Bound now, so the port is known before anything is sent.
  sockaddr_in local = SockAddr(source, 0);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) {
    return ErrnoToStatus(errno, "probe: bind the source address");
  }
  socklen_t len = sizeof(local);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0) {
    return ErrnoToStatus(errno, "probe: getsockname");
  }
  probe->packet_.source_port = ntohs(local.sin_port);
  probe->packet_.destination_port = target.port;
  if (target.protocol == ProbeProtocol::kTcp) {
    // Closed with a reset: no TIME_WAIT left in the container's namespace.
    linger l{1, 0};
    (void)::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  }
  return probe;
}

void Probe::Finish(ProbeOutcome::Kind kind, std::string detail) {
  if (outcome_) return;
  outcome_ = ProbeOutcome{kind, std::move(detail)};
}

void Probe::FinishWithErrno(int err) {
  using Kind = ProbeOutcome::Kind;
  switch (err) {
    case ECONNREFUSED:
      Finish(Kind::kClosed,
             target_.protocol == ProbeProtocol::kTcp ? "connection refused" : "port unreachable");
      return;
    case EHOSTUNREACH:
      Finish(Kind::kUnreachable, "no route to host");
      return;
    case ENETUNREACH:
      Finish(Kind::kUnreachable, "network unreachable");
      return;
    case EACCES:
    case EPERM:
      Finish(Kind::kUnreachable, "refused by the container's own rules (EPERM)");
      return;
    default:
      Finish(Kind::kUnreachable, std::strerror(err));
  }
}

void Probe::Send() {
  if (outcome_) return;
  const int fd = socket_.get();
  sockaddr_in dst = SockAddr(target_.destination, target_.port);
  switch (target_.protocol) {
    case ProbeProtocol::kTcp:
      if (::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof(dst)) == 0) {
        Finish(ProbeOutcome::Kind::kOpen, "connected");
      } else if (errno != EINPROGRESS) {
        FinishWithErrno(errno);
      }
      return;
    case ProbeProtocol::kUdp:
      if (::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof(dst)) != 0 ||
          ::send(fd, kPayload, sizeof(kPayload) - 1, 0) < 0) {
        FinishWithErrno(errno);
      }
      return;
    case ProbeProtocol::kIcmp: {
      uint8_t packet[8 + sizeof(kPayload) - 1] = {ICMP_ECHO, 0};
      packet[4] = static_cast<uint8_t>(packet_.icmp_id >> 8);
      packet[5] = static_cast<uint8_t>(packet_.icmp_id);
      packet[7] = 1;  // sequence 1
      std::memcpy(packet + 8, kPayload, sizeof(kPayload) - 1);
      const uint16_t sum = Checksum(packet, sizeof(packet));
      packet[2] = static_cast<uint8_t>(sum >> 8);
      packet[3] = static_cast<uint8_t>(sum);
      dst.sin_port = 0;
      if (::sendto(fd, packet, sizeof(packet), 0, reinterpret_cast<sockaddr*>(&dst), sizeof(dst)) <
          0) {
        FinishWithErrno(errno);
      }
      return;
    }
  }
}

pollfd Probe::PollFd() const {
  const short events = target_.protocol == ProbeProtocol::kTcp ? POLLOUT : POLLIN;
  return pollfd{socket_.get(), events, 0};
}

void Probe::OnReady() {
  if (outcome_) return;
  const int fd = socket_.get();
  switch (target_.protocol) {
    case ProbeProtocol::kTcp: {
      int err = 0;
      socklen_t len = sizeof(err);
      if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      if (err == 0) {
        Finish(ProbeOutcome::Kind::kOpen, "connected");
      } else if (err != EINPROGRESS) {
        FinishWithErrno(err);
      }
      return;
    }
    case ProbeProtocol::kUdp: {
      char buf[512];
      ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n >= 0) {
        Finish(ProbeOutcome::Kind::kOpen, absl::StrCat("answered (", n, " bytes)"));
      } else if (errno != EAGAIN && errno != EINTR) {
        FinishWithErrno(errno);
      }
      return;
    }
    case ProbeProtocol::kIcmp:
      ReadIcmp();
      return;
  }
}

void Probe::ReadIcmp() {
  uint8_t buf[1500];
  for (;;) {
    sockaddr_in from{};
    socklen_t from_len = sizeof(from);
    ssize_t n = ::recvfrom(socket_.get(), buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from),
                           &from_len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // EAGAIN: drained
    }
    const size_t len = static_cast<size_t>(n);
    if (len < 20) continue;
    const size_t ihl = static_cast<size_t>(buf[0] & 0x0f) * 4;
    if (len < ihl + 8) continue;
    const uint8_t* icmp = buf + ihl;
    const uint8_t type = icmp[0];
    if (type == ICMP_ECHOREPLY) {
      if (Be16(icmp + 4) == packet_.icmp_id && from.sin_addr.s_addr == target_.destination.s_addr) {
        Finish(ProbeOutcome::Kind::kOpen, "echo reply");
        return;
      }
      continue;
    }
    if (type != ICMP_DEST_UNREACH && type != ICMP_TIME_EXCEEDED) continue;
    // The error quotes our packet: its IP header, then at least 8 bytes of the echo request.
    const uint8_t* inner = icmp + 8;
    const size_t inner_len = len - ihl - 8;
    if (inner_len < 20) continue;
    const size_t inner_ihl = static_cast<size_t>(inner[0] & 0x0f) * 4;
    if (inner_len < inner_ihl + 8 || inner[9] != IPPROTO_ICMP) continue;
    if (std::memcmp(inner + 16, &target_.destination.s_addr, 4) != 0) continue;
    if (Be16(inner + inner_ihl + 4) != packet_.icmp_id) continue;
    Finish(ProbeOutcome::Kind::kUnreachable, UnreachableText(type, icmp[1], from.sin_addr));
    return;
  }
}

void Probe::TimeOut() { Finish(ProbeOutcome::Kind::kNoAnswer, ""); }

}  // namespace mesh::agent
