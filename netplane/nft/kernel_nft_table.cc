#include "netplane/nft/kernel_nft_table.h"

#include <linux/netlink.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "base/status_macros.h"
#include "netplane/nft/batch.h"

namespace mesh::netplane::nft {
namespace {

// The kernel handles a whole batch inside sendmsg() and has queued every answer when it
// returns, so waiting is not expected; the timeout only bounds the unexpected.
constexpr int kAnswerTimeoutMs = 10'000;

// One answer is one datagram. With NETLINK_CAP_ACK an error quotes only the failing message's
// header; without it (kernels before 4.3) it quotes the whole message, at most one of
// BuildBatch's messages.
constexpr size_t kReceiveBufferSize = size_t{128} * 1024;

// Each answer is its own skb, charged to the receive buffer at well under 1 KiB (the skb's
// true size). If they did not all fit, the kernel would drop some (ENOBUFS) and the outcome
// of the batch would be unknown.
constexpr size_t kReceiveBytesPerMessage = 1024;

}  // namespace

absl::StatusOr<std::unique_ptr<KernelNftTable>> KernelNftTable::Create() {
  NftnlPtr<mnl_socket> socket(mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC));
  if (socket == nullptr) return ErrnoToStatus(errno, "nftables: open netlink socket");
  if (mnl_socket_bind(socket.get(), 0, MNL_SOCKET_AUTOPID) < 0) {
    return ErrnoToStatus(errno, "nftables: bind netlink socket");
  }
  // Best effort: only keeps error answers small (see kReceiveBufferSize).
  int one = 1;
  (void)mnl_socket_setsockopt(socket.get(), NETLINK_CAP_ACK, &one, sizeof(one));
  return std::unique_ptr<KernelNftTable>(new KernelNftTable(std::move(socket)));
}

KernelNftTable::KernelNftTable(NftnlPtr<mnl_socket> socket)
    : socket_(std::move(socket)), portid_(mnl_socket_get_portid(socket_.get())) {}

void KernelNftTable::SizeBuffers(size_t bytes, size_t messages) {
  const int fd = mnl_socket_get_fd(socket_.get());
  auto grow = [fd](int option, int force_option, size_t wanted) {
    int current = 0;
    socklen_t len = sizeof(current);
    // The kernel reports (and uses) twice the size it was given.
    if (getsockopt(fd, SOL_SOCKET, option, &current, &len) == 0 &&
        static_cast<size_t>(current) / 2 >= wanted) {
      return;
    }
    const int value = static_cast<int>(std::min<size_t>(wanted, INT_MAX / 2));
    // SO_*BUFFORCE passes the net.core.[rw]mem_max cap; it needs CAP_NET_ADMIN, which
    // nf_tables needs anyway. If both fail, a batch too big shows up as EMSGSIZE on send.
    if (setsockopt(fd, SOL_SOCKET, force_option, &value, sizeof(value)) != 0) {
      (void)setsockopt(fd, SOL_SOCKET, option, &value, sizeof(value));
    }
  };
  // netlink_sendmsg() refuses a datagram longer than the send buffer, and a batch must be one
  // datagram (batch.h).
  grow(SO_SNDBUF, SO_SNDBUFFORCE, bytes + 4096);
  grow(SO_RCVBUF, SO_RCVBUFFORCE, messages * kReceiveBytesPerMessage + size_t{64} * 1024);
}

absl::Status KernelNftTable::Apply(const Transaction& transaction) {
  if (transaction.empty()) return absl::OkStatus();

  absl::MutexLock lock(&mu_);
  MESH_ASSIGN_OR_RETURN(Batch batch, BuildBatch(transaction, next_seq_));  // validates
  next_seq_ = batch.last_seq() + 1;
  const size_t n = batch.messages.size();
  SizeBuffers(batch.bytes.size(), n);

  if (mnl_socket_sendto(socket_.get(), batch.bytes.data(), batch.bytes.size()) < 0) {
    return ErrnoToStatus(errno, absl::StrCat("nftables: send a batch of ", n, " messages"));
  }

  // Every command message has NLM_F_ACK, so each gets an answer carrying its sequence number:
  // 0 or an errno. The kernel keeps processing after an error (to report all of them) and
  // then aborts the whole batch. An error for BATCH_BEGIN is about the batch as a whole (no
  // CAP_NET_ADMIN, or the commit itself failed); no per-message answers come then.
  std::vector<int> errors(n, -1);  // -1: not answered yet
  size_t answered = 0;
  std::optional<int> batch_error;
  std::vector<char> buf(kReceiveBufferSize);
  const int fd = mnl_socket_get_fd(socket_.get());
  while (answered < n && !batch_error) {
    pollfd pfd{fd, POLLIN, 0};
    const int ready = poll(&pfd, 1, kAnswerTimeoutMs);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return ErrnoToStatus(errno, "nftables: wait for the kernel's answers");
    if (ready == 0) {
      return absl::DeadlineExceededError(
          absl::StrCat("nftables: no answer from the kernel for ", n - answered, " of ", n,
                       " messages; the outcome of the transaction is unknown"));
    }
    ssize_t len = mnl_socket_recvfrom(socket_.get(), buf.data(), buf.size());
    if (len < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (len < 0) {
      return ErrnoToStatus(errno,
                           "nftables: read the kernel's answers (the outcome of the "
                           "transaction is unknown)");
    }
    int remaining = static_cast<int>(len);
    for (auto* nlh = reinterpret_cast<const nlmsghdr*>(buf.data()); mnl_nlmsg_ok(nlh, remaining);
         nlh = mnl_nlmsg_next(nlh, &remaining)) {
      if (nlh->nlmsg_type != NLMSG_ERROR || nlh->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) {
        continue;
      }
      const int err = -static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh))->error;
      // Unsigned arithmetic keeps this right when sequence numbers wrap.
      const uint32_t offset = nlh->nlmsg_seq - batch.first_seq;
      if (offset == 0 || offset == n + 1) {
        batch_error = err;
      } else if (offset <= n && errors[offset - 1] < 0) {
        errors[offset - 1] = err;
        ++answered;
      }
      // Anything else answers an earlier batch that timed out: ignored.
    }
  }
  if (batch_error && *batch_error != 0) {
    absl::Status status = ErrnoToStatus(
        *batch_error, absl::StrCat("nftables: apply a transaction of ", transaction.size(),
                                   transaction.size() == 1 ? " command" : " commands"));
    if (*batch_error != EPERM) return status;
    return absl::Status(status.code(),
                        absl::StrCat(status.message(), "; changing nftables needs CAP_NET_ADMIN"));
  }
  // The first failure in order is the cause; later ones are often its consequences (a rule
  // naming a set whose creation failed).
  for (size_t i = 0; i < n; ++i) {
    if (errors[i] > 0) {
      const BatchMessage& message = batch.messages[i];
      return CommandError(transaction.commands()[message.command].verb,
                          DescribeMessage(transaction, message), errors[i]);
    }
  }
  return absl::OkStatus();
}

}  // namespace mesh::netplane::nft
