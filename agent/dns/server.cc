#include "agent/dns/server.h"

#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "agent/dns/ldns.h"
#include "agent/dns/resolv_conf.h"
#include "base/errno_status.h"
#include "base/log.h"

namespace mesh::agent::dns {

using netplane::ipam::IpAddress;

struct DnsServer::Listener {
  IpAddress address;
  UniqueFd udp;
  UniqueFd tcp;
};

namespace {

sockaddr_in SockAddr(const IpAddress& address, uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr = netplane::ipam::ToInAddr(address);
  sa.sin_port = htons(port);
  return sa;
}

IpAddress AddressOf(const sockaddr_in& sa) { return netplane::ipam::FromInAddr(sa.sin_addr); }

std::string Framed(absl::string_view message) {
  std::string out(2, '\0');
  out[0] = static_cast<char>(message.size() >> 8);
  out[1] = static_cast<char>(message.size() & 0xff);
  out.append(message.data(), message.size());
  return out;
}

// Where an answer goes back: a UDP client (through the listener's socket, so it comes from
// the gateway address), or a TCP connection.
struct ReplyTo {
  int udp_fd = -1;
  sockaddr_in client{};
  int tcp_fd = -1;
};

}  // namespace

std::string Upstream::ToString() const { return absl::StrCat(address.ToString(), ":", port); }

std::vector<Upstream> UpstreamsOfResolvConf(absl::string_view text) {
  std::vector<Upstream> out;
  for (const std::string& nameserver : ParseResolvConf(text).nameservers) {
    absl::StatusOr<IpAddress> a = IpAddress::Parse(nameserver);
    if (!a.ok() || !a->is_v4() || IsLoopbackNameserver(nameserver)) continue;
    out.push_back(Upstream{*a, 53});
  }
  return out;
}

absl::StatusOr<std::vector<Upstream>> ParseUpstreams(absl::string_view text) {
  std::vector<Upstream> out;
  for (absl::string_view entry : absl::StrSplit(text, absl::ByAnyChar(", \t"), absl::SkipEmpty())) {
    absl::string_view host = entry;
    uint16_t port = 53;
    if (size_t colon = entry.find(':'); colon != absl::string_view::npos) {
      host = entry.substr(0, colon);
      int number = 0;
      if (!absl::SimpleAtoi(entry.substr(colon + 1), &number) || number < 1 || number > 65535) {
        return absl::InvalidArgumentError(
            absl::StrCat("upstream \"", entry, "\": the port must be a number from 1 to 65535"));
      }
      port = static_cast<uint16_t>(number);
    }
    absl::StatusOr<IpAddress> address = IpAddress::Parse(host);
    if (!address.ok() || !address->is_v4()) {
      return absl::InvalidArgumentError(
          absl::StrCat("upstream \"", entry,
                       "\" is not an IPv4 address with an optional port (\"203.0.113.53\" "
                       "or \"203.0.113.53:5353\")"));
    }
    out.push_back(Upstream{*address, port});
  }
  return out;
}

absl::StatusOr<std::unique_ptr<DnsServer>> DnsServer::Start(const Zone* zone,
                                                            ServerOptions options) {
  UniqueFd epoll(epoll_create1(EPOLL_CLOEXEC));
  if (!epoll) return ErrnoToStatus(errno, "DNS server: epoll_create1");
  UniqueFd wake(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake) return ErrnoToStatus(errno, "DNS server: eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wake.get();
  if (epoll_ctl(epoll.get(), EPOLL_CTL_ADD, wake.get(), &ev) != 0) {
    return ErrnoToStatus(errno, "DNS server: epoll_ctl");
  }
  std::unique_ptr<DnsServer> server(
      new DnsServer(zone, std::move(options), std::move(epoll), std::move(wake)));
  server->thread_ = std::thread([s = server.get()] { s->Run(); });
  return server;
}

DnsServer::DnsServer(const Zone* zone, ServerOptions options, UniqueFd epoll, UniqueFd wake)
    : zone_(zone), options_(std::move(options)), epoll_(std::move(epoll)), wake_(std::move(wake)) {}

DnsServer::~DnsServer() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
}

absl::Status DnsServer::Listen(const IpAddress& address) {
  const std::string what =
      absl::StrCat("DNS server: listen on ", address.ToString(), ":", options_.port);
  if (!address.is_v4()) return absl::InvalidArgumentError(absl::StrCat(what, ": not IPv4"));
  {
    absl::MutexLock lock(&mu_);
    if (std::find(listening_.begin(), listening_.end(), address) != listening_.end()) {
      return absl::AlreadyExistsError(absl::StrCat(what, ": listening there already"));
    }
  }
  auto listener = std::make_unique<Listener>();
  listener->address = address;
  const sockaddr_in sa = SockAddr(address, options_.port);
  for (const int type : {SOCK_DGRAM, SOCK_STREAM}) {
    UniqueFd fd(::socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) return ErrnoToStatus(errno, what);
    const int one = 1;
    (void)::setsockopt(fd.get(), SOL_IP, IP_FREEBIND, &one, sizeof(one));
    (void)::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)) != 0) {
      return ErrnoToStatus(errno, absl::StrCat(what, type == SOCK_DGRAM ? " (udp)" : " (tcp)"));
    }
    if (type == SOCK_STREAM && ::listen(fd.get(), 64) != 0) return ErrnoToStatus(errno, what);
    (type == SOCK_DGRAM ? listener->udp : listener->tcp) = std::move(fd);
  }
  absl::MutexLock lock(&mu_);
  listening_.push_back(address);
  to_add_.push_back(std::move(listener));
  AwaitLoopLocked();
  return absl::OkStatus();
}

void DnsServer::AwaitLoopLocked() {
  const uint64_t target = ++requested_;
  uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof(one));
  struct Wait {
    const DnsServer* server;
    uint64_t target;
  } wait{this, target};
  mu_.Await(absl::Condition(
      +[](Wait* w) ABSL_NO_THREAD_SAFETY_ANALYSIS {
        return w->server->applied_ >= w->target || w->server->stop_;
      },
      &wait));
}

void DnsServer::Unlisten(const IpAddress& address) {
  absl::MutexLock lock(&mu_);
  auto it = std::find(listening_.begin(), listening_.end(), address);
  if (it == listening_.end()) return;
  listening_.erase(it);
  to_remove_.push_back(address);
  AwaitLoopLocked();
}

std::vector<IpAddress> DnsServer::Listening() const {
  absl::MutexLock lock(&mu_);
  return listening_;
}

ServerStats DnsServer::Stats() const {
  ServerStats s;
  s.queries = queries_.load();
  s.answered = answered_.load();
  s.forwarded = forwarded_.load();
  s.servfail = servfail_.load();
  s.malformed = malformed_.load();
  return s;
}

// ---- The event loop: everything below runs on thread_ only. ----

struct DnsServer::Connection {
  UniqueFd fd;
  IpAddress client;
  std::string in;
  std::string out;
  absl::Time last_active;
};

struct DnsServer::Forward {
  UniqueFd fd;  // connected to the upstream
  Query query;
  std::string wire;  // the client's query, with our id
  uint16_t upstream_id = 0;
  size_t upstream = 0;  // index into options_.upstreams
  absl::Time deadline;
  ReplyTo reply_to;
};

class DnsServer::Loop {
 public:
  explicit Loop(DnsServer& server) : s_(server), random_(std::random_device{}()) {}

  void Run() {
    std::vector<epoll_event> events(64);
    for (;;) {
      const int timeout = NextTimeoutMs();
      const int n =
          epoll_wait(s_.epoll_.get(), events.data(), static_cast<int>(events.size()), timeout);
      if (n < 0 && errno != EINTR) {
        MESH_LOG(Error) << ErrnoToStatus(errno, "DNS server: epoll_wait");
        return;
      }
      for (int i = 0; i < n; ++i) {
        const int fd = events[static_cast<size_t>(i)].data.fd;
        const uint32_t what = events[static_cast<size_t>(i)].events;
        if (fd == s_.wake_.get()) {
          uint64_t count;
          (void)!::read(fd, &count, sizeof(count));
          if (!ApplyChanges()) return;
        } else if (auto l = udp_.find(fd); l != udp_.end()) {
          ReadUdp(fd);
        } else if (auto t = tcp_.find(fd); t != tcp_.end()) {
          Accept(fd);
        } else if (auto c = connections_.find(fd); c != connections_.end()) {
          ServeConnection(c->second, what);
        } else if (auto f = forwards_.find(fd); f != forwards_.end()) {
          ReadUpstream(f->second);
        }
      }
      Expire();
    }
  }

 private:
  // Listener changes from Listen/Unlisten; false once the server stops.
  bool ApplyChanges() {
    absl::MutexLock lock(&s_.mu_);
    for (std::unique_ptr<Listener>& l : s_.to_add_) {
      Watch(l->udp.get(), EPOLLIN);
      Watch(l->tcp.get(), EPOLLIN);
      udp_[l->udp.get()] = l.get();
      tcp_[l->tcp.get()] = l.get();
      listeners_.push_back(std::move(l));
    }
    s_.to_add_.clear();
    for (const IpAddress& address : s_.to_remove_) {
      for (auto it = listeners_.begin(); it != listeners_.end();) {
        if ((*it)->address != address) {
          ++it;
          continue;
        }
        udp_.erase((*it)->udp.get());
        tcp_.erase((*it)->tcp.get());
        // Forwards waiting to answer through this socket answer nobody now.
        for (auto& [fd, f] : forwards_) {
          if (f.reply_to.udp_fd == (*it)->udp.get()) f.reply_to.udp_fd = -1;
        }
        it = listeners_.erase(it);  // closing the fds takes them out of the epoll set
      }
    }
    s_.to_remove_.clear();
    s_.applied_ = s_.requested_;
    return !s_.stop_;
  }

  void Watch(int fd, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    if (epoll_ctl(s_.epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
      ev.events = events;
      (void)epoll_ctl(s_.epoll_.get(), EPOLL_CTL_MOD, fd, &ev);
    }
  }

  void ReadUdp(int fd) {
    char buf[65536];
    for (;;) {
      sockaddr_in from{};
      socklen_t len = sizeof(from);
      const ssize_t n =
          ::recvfrom(fd, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n < 0) return;  // EAGAIN: drained
      ReplyTo to;
      to.udp_fd = fd;
      to.client = from;
      Handle(absl::string_view(buf, static_cast<size_t>(n)), AddressOf(from), to);
    }
  }

  void Accept(int fd) {
    for (;;) {
      sockaddr_in from{};
      socklen_t len = sizeof(from);
      UniqueFd c(
          ::accept4(fd, reinterpret_cast<sockaddr*>(&from), &len, SOCK_NONBLOCK | SOCK_CLOEXEC));
      if (!c) return;
      if (connections_.size() >= s_.options_.max_tcp_connections) continue;  // closed: busy
      const int key = c.get();
      Watch(key, EPOLLIN);
      connections_[key] = Connection{std::move(c), AddressOf(from), "", "", absl::Now()};
    }
  }

  void ServeConnection(Connection& c, uint32_t events) {
    const int fd = c.fd.get();
    c.last_active = absl::Now();
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
      char buf[65536];
      for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof(buf));
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
          Close(fd);
          return;
        }
        if (n < 0) break;
        c.in.append(buf, static_cast<size_t>(n));
        if (c.in.size() > 2 * 65537) {  // a client that never frames right
          s_.malformed_++;
          Close(fd);
          return;
        }
      }
      while (c.in.size() >= 2) {
        const size_t size = static_cast<uint8_t>(c.in[0]) << 8 | static_cast<uint8_t>(c.in[1]);
        if (c.in.size() < 2 + size) break;
        const std::string message = c.in.substr(2, size);
        c.in.erase(0, 2 + size);
        ReplyTo to;
        to.tcp_fd = fd;
        Handle(message, c.client, to);
        if (!connections_.contains(fd)) return;
      }
    }
    Flush(c);
  }

  void Flush(Connection& c) {
    const int fd = c.fd.get();
    while (!c.out.empty()) {
      const ssize_t n = ::write(fd, c.out.data(), c.out.size());
      if (n < 0) {
        if (errno == EAGAIN) break;
        Close(fd);
        return;
      }
      c.out.erase(0, static_cast<size_t>(n));
    }
    epoll_event ev{};
    ev.events = c.out.empty() ? uint32_t{EPOLLIN} : uint32_t{EPOLLIN | EPOLLOUT};
    ev.data.fd = fd;
    (void)epoll_ctl(s_.epoll_.get(), EPOLL_CTL_MOD, fd, &ev);
  }

  void Close(int fd) {
    for (auto& [key, f] : forwards_) {
      if (f.reply_to.tcp_fd == fd) f.reply_to.tcp_fd = -1;
    }
    connections_.erase(fd);
  }

  void Send(const ReplyTo& to, absl::string_view message) {
    if (to.udp_fd >= 0) {
      (void)::sendto(to.udp_fd, message.data(), message.size(), MSG_DONTWAIT,
                     reinterpret_cast<const sockaddr*>(&to.client), sizeof(to.client));
      return;
    }
    if (auto c = connections_.find(to.tcp_fd); c != connections_.end()) {
      c->second.out += Framed(message);
      Flush(c->second);
    }
  }

  void Answer(const Query& q, const Reply& reply, const ReplyTo& to) {
    const size_t max = to.udp_fd >= 0 ? q.udp_size : 65535;
    absl::StatusOr<std::string> wire = BuildResponse(q, reply, max);
    if (!wire.ok()) {
      s_.malformed_++;  // a name ldns reads but will not write back
      return;
    }
    Send(to, *wire);
  }

  void Fail(const Query& q, const ReplyTo& to) {
    s_.servfail_++;
    Reply r;
    r.rcode = LDNS_RCODE_SERVFAIL;
    Answer(q, r, to);
  }

  void Handle(absl::string_view wire, const IpAddress& client, const ReplyTo& to) {
    absl::StatusOr<Query> q = ParseQuery(wire);
    if (!q.ok()) {
      s_.malformed_++;
      return;
    }
    s_.queries_++;
    // Classes other than IN (CHAOS, HESIOD) are nothing of mesh's and no container's business
    // upstream: forwarding them would let a container on an internal network out.
    const Lookup found = q->klass == LDNS_RR_CLASS_IN || q->klass == LDNS_RR_CLASS_ANY
                             ? s_.zone_->Find(q->name, client)
                             : Lookup{.kind = Lookup::Kind::kRefused};
    if (found.kind != Lookup::Kind::kUnknown) {
      s_.answered_++;
      Reply r;
      r.rcode = found.kind == Lookup::Kind::kFound     ? LDNS_RCODE_NOERROR
                : found.kind == Lookup::Kind::kRefused ? LDNS_RCODE_REFUSED
                                                       : LDNS_RCODE_NXDOMAIN;
      r.addresses = found.addresses;
      r.names = found.names;
      r.ttl = s_.options_.ttl;
      Answer(*q, r, to);
      return;
    }
    Forward f;
    f.query = *q;
    f.wire = std::string(wire);
    f.reply_to = to;
    StartForward(std::move(f), 0);
  }

  // Sends to upstream `index` and on; SERVFAIL when none is left.
  void StartForward(Forward f, size_t index) {
    const std::vector<Upstream>& upstreams = s_.options_.upstreams;
    for (; index < upstreams.size(); ++index) {
      UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      if (!fd) break;
      const sockaddr_in to = SockAddr(upstreams[index].address, upstreams[index].port);
      f.upstream_id = static_cast<uint16_t>(random_());
      const std::string wire = WithId(f.wire, f.upstream_id);
      if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&to), sizeof(to)) != 0 ||
          ::send(fd.get(), wire.data(), wire.size(), 0) < 0) {
        continue;  // no route there: the next one
      }
      f.upstream = index;
      f.deadline = absl::Now() + s_.options_.upstream_timeout;
      const int key = fd.get();
      f.fd = std::move(fd);
      Watch(key, EPOLLIN);
      forwards_[key] = std::move(f);
      return;
    }
    Fail(f.query, f.reply_to);
  }

  void ReadUpstream(Forward& f) {
    const int key = f.fd.get();
    char buf[65536];
    const ssize_t n = ::recv(key, buf, sizeof(buf), 0);
    if (n < 0 && errno == EAGAIN) return;
    if (n >= 0 && MessageId(absl::string_view(buf, static_cast<size_t>(n))) != f.upstream_id) {
      return;  // not the answer to this query (a late one, or a spoof): keep waiting
    }
    Forward done = std::move(f);
    forwards_.erase(key);
    if (n < 0) {  // refused (nothing listens there) or unreachable: the next upstream
      const size_t next = done.upstream + 1;
      done.fd = UniqueFd();
      StartForward(std::move(done), next);
      return;
    }
    s_.forwarded_++;
    const std::string answer =
        WithId(absl::string_view(buf, static_cast<size_t>(n)), done.query.id);
    if (done.reply_to.udp_fd >= 0 || done.reply_to.tcp_fd >= 0) Send(done.reply_to, answer);
  }

  void Expire() {
    const absl::Time now = absl::Now();
    std::vector<int> late;
    for (const auto& [fd, f] : forwards_) {
      if (f.deadline <= now) late.push_back(fd);
    }
    for (int fd : late) {
      Forward f = std::move(forwards_[fd]);
      forwards_.erase(fd);
      f.fd = UniqueFd();
      const size_t next = f.upstream + 1;
      StartForward(std::move(f), next);
    }
    std::vector<int> idle;
    for (const auto& [fd, c] : connections_) {
      if (now - c.last_active > s_.options_.tcp_idle) idle.push_back(fd);
    }
    for (int fd : idle) Close(fd);
  }

  int NextTimeoutMs() const {
    if (forwards_.empty() && connections_.empty()) return -1;
    absl::Time next = absl::InfiniteFuture();
    for (const auto& [fd, f] : forwards_) next = std::min(next, f.deadline);
    for (const auto& [fd, c] : connections_) {
      next = std::min(next, c.last_active + s_.options_.tcp_idle);
    }
    const int64_t ms = absl::ToInt64Milliseconds(next - absl::Now()) + 1;
    return static_cast<int>(std::clamp<int64_t>(ms, 0, 60'000));
  }

  DnsServer& s_;
  std::mt19937 random_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::map<int, Listener*> udp_;
  std::map<int, Listener*> tcp_;
  std::map<int, Connection> connections_;
  std::map<int, Forward> forwards_;
};

void DnsServer::Run() { Loop(*this).Run(); }

}  // namespace mesh::agent::dns
