#include "netplane/ipam/ipam.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/atomic_file.h"
#include "base/errno_status.h"
#include "base/names.h"
#include "base/status_macros.h"
#include "base/unique_fd.h"
#include "nlohmann/json.hpp"

namespace mesh::netplane::ipam {
namespace {

using ::nlohmann::json;

// Version 2 added "seq" and the journal; version 1 files still load (as seq 0).
constexpr int kFormatVersion = 2;
constexpr int kOldestFormatVersion = 1;
constexpr absl::string_view kPoolFileSuffix = ".json";
constexpr absl::string_view kJournalSuffix = ".journal";
constexpr mode_t kDirMode = 0700;
constexpr mode_t kFileMode = 0600;
// A journal is compacted once it holds more records than this or than the pool has leases,
// whichever is more: the snapshot rewrite (O(leases)) is then paid for by as many appends.
constexpr uint64_t kMinCompactionRecords = 64;

constexpr absl::string_view kOpAllocate = "allocate";
constexpr absl::string_view kOpRelease = "release";

std::string QuoteNetwork(absl::string_view network) {
  return absl::StrCat("network \"", network, "\"");
}

absl::Status DataLoss(absl::string_view message) { return absl::DataLossError(message); }

// mkdir -p: each missing component is created with `mode`.
absl::Status MakeDirs(const std::string& dir, mode_t mode) {
  for (size_t end = dir.find('/', 1);; end = dir.find('/', end + 1)) {
    std::string part = dir.substr(0, end);
    if (::mkdir(part.c_str(), mode) != 0 && errno != EEXIST) {
      return ErrnoToStatus(errno, absl::StrCat("create directory \"", part, "\""));
    }
    if (end == std::string::npos) break;
  }
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("stat \"", dir, "\""));
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat("\"", dir, "\" is not a directory"));
  }
  return absl::OkStatus();
}

// Makes directory entry changes (create, unlink) durable, as WriteFileAtomically does for
// renames.
absl::Status SyncDir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd || ::fsync(fd.get()) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("fsync directory \"", dir, "\""));
  }
  return absl::OkStatus();
}

// Unlinks `path`; OK if it is already gone.
absl::Status RemoveFile(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoToStatus(errno, absl::StrCat("remove \"", path, "\""));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadAll(int fd, const std::string& path) {
  std::string out;
  char buf[16384];
  for (;;) {
    ssize_t n = ::pread(fd, buf, sizeof(buf), static_cast<off_t>(out.size()));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(errno, absl::StrCat("read \"", path, "\""));
    }
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

// The value of `key` in `object`, parsed as an address; DataLoss naming the key otherwise.
absl::StatusOr<IpAddress> AddressField(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_string()) {
    return DataLoss(absl::StrCat("\"", key, "\" must be a string holding an IP address"));
  }
  absl::StatusOr<IpAddress> address = IpAddress::Parse(it->get_ref<const std::string&>());
  if (!address.ok()) return DataLoss(absl::StrCat("\"", key, "\": ", address.status().message()));
  return address;
}

// One journal line.
struct Record {
  uint64_t seq = 0;
  bool allocate = false;  // else release
  IpAddress address;
  std::string owner;
  std::optional<IpAddress> last;  // allocations by Allocate only
};

std::string RecordToLine(const Record& record) {
  json root = json::object();  // keys sorted, like the snapshot
  root["seq"] = record.seq;
  root["op"] = std::string(record.allocate ? kOpAllocate : kOpRelease);
  root["address"] = record.address.ToString();
  root["owner"] = record.owner;  // printable ASCII (Pool checks): dump() cannot throw
  if (record.last.has_value()) root["last"] = record.last->ToString();
  return root.dump() + "\n";
}

// DataLoss if `object` is not a record of the form RecordToLine writes.
absl::StatusOr<Record> RecordFromJson(const json& object) {
  if (!object.is_object()) return DataLoss("not a JSON object");
  for (const auto& [key, value] : object.items()) {
    if (key != "seq" && key != "op" && key != "address" && key != "owner" && key != "last") {
      return DataLoss(absl::StrCat("unknown key \"", key, "\""));
    }
  }
  Record record;
  auto seq = object.find("seq");
  if (seq == object.end() || !seq->is_number_unsigned() || seq->get<uint64_t>() == 0) {
    return DataLoss("\"seq\" must be a positive integer");
  }
  record.seq = seq->get<uint64_t>();
  auto op = object.find("op");
  const std::string* op_name =
      op != object.end() && op->is_string() ? &op->get_ref<const std::string&>() : nullptr;
  if (op_name == nullptr || (*op_name != kOpAllocate && *op_name != kOpRelease)) {
    return DataLoss(absl::StrCat("\"op\" must be \"", kOpAllocate, "\" or \"", kOpRelease, "\""));
  }
  record.allocate = *op_name == kOpAllocate;
  MESH_ASSIGN_OR_RETURN(record.address, AddressField(object, "address"));
  auto owner = object.find("owner");
  if (owner == object.end() || !owner->is_string()) {
    return DataLoss("\"owner\" must be a string");
  }
  record.owner = owner->get<std::string>();
  if (object.contains("last")) {
    if (!record.allocate) return DataLoss("a release has no \"last\"");
    MESH_ASSIGN_OR_RETURN(record.last, AddressField(object, "last"));
  }
  return record;
}

// Makes the change `record` describes, checking it is one Ipam could have made: an allocation
// of a free address to an owner holding none, a release by the holder. On error the pool may be
// left half-changed: the caller gives up on the whole load.
absl::Status Apply(const Record& record, Pool& pool) {
  if (!record.allocate) {
    if (pool.Lookup(record.owner) != record.address) {
      return absl::InvalidArgumentError(absl::StrCat("release of ", record.address.ToString(),
                                                     " by \"", record.owner,
                                                     "\", which does not hold it"));
    }
    pool.Release(record.owner);
    return absl::OkStatus();
  }
  if (auto it = pool.leases().find(record.address); it != pool.leases().end()) {
    // AllocateStatic would accept this as idempotent; a journal never holds it.
    return absl::InvalidArgumentError(absl::StrCat("address ", record.address.ToString(),
                                                   " is already leased to \"", it->second, "\""));
  }
  MESH_RETURN_IF_ERROR(pool.AllocateStatic(record.address, record.owner).status());
  if (record.last.has_value()) MESH_RETURN_IF_ERROR(pool.SetLast(record.last));
  return absl::OkStatus();
}

// What replaying a journal found.
struct Replay {
  uint64_t seq = 0;        // of the last change: the snapshot's or the last record's
  uint64_t good_size = 0;  // bytes of whole records; anything after is a torn append
  uint64_t records = 0;    // whole records, including those the snapshot already holds
};

// Replays the records of `journal` with seq > `snapshot_seq` onto `pool`. A last line without
// its newline, or one that is not JSON, is an append a crash cut short: it was never
// acknowledged, so it is left out (and past good_size). Any other bad line, a gap in the seq
// numbers, or a record that breaks a pool rule is DataLoss naming the line.
absl::StatusOr<Replay> ReplayJournal(absl::string_view journal, uint64_t snapshot_seq, Pool& pool) {
  Replay replay{.seq = snapshot_seq};
  std::optional<uint64_t> previous_seq;
  size_t offset = 0;
  for (uint64_t line_number = 1; offset < journal.size(); ++line_number) {
    auto bad_line = [&](absl::string_view message) {
      return DataLoss(absl::StrCat("line ", line_number, ": ", message));
    };
    size_t newline = journal.find('\n', offset);
    if (newline == absl::string_view::npos) break;  // torn: no newline
    absl::string_view line = journal.substr(offset, newline - offset);
    bool last_line = newline + 1 == journal.size();
    json object = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
    if (object.is_discarded()) {
      if (last_line) break;  // torn: a prefix, or blocks the crash never wrote (zeros)
      return bad_line("invalid JSON");
    }
    absl::StatusOr<Record> record = RecordFromJson(object);
    if (!record.ok()) return bad_line(record.status().message());
    if (previous_seq.has_value() ? record->seq != *previous_seq + 1
                                 : record->seq > snapshot_seq + 1) {
      return bad_line(absl::StrCat("seq ", record->seq, " does not follow ",
                                   previous_seq.has_value()
                                       ? absl::StrCat("seq ", *previous_seq, " of the line before")
                                       : absl::StrCat("seq ", snapshot_seq, " of the snapshot"),
                                   ": records are missing"));
    }
    previous_seq = record->seq;
    // Records up to the snapshot's seq are in it already: a compaction wrote the snapshot and
    // then crashed before emptying the journal.
    if (record->seq > snapshot_seq) {
      if (absl::Status applied = Apply(*record, pool); !applied.ok()) {
        return bad_line(absl::StrCat(record->allocate ? kOpAllocate : kOpRelease, " seq ",
                                     record->seq, ": ", applied.message()));
      }
      replay.seq = record->seq;
    }
    offset = newline + 1;
    replay.good_size = offset;
    ++replay.records;
  }
  return replay;
}

}  // namespace

std::string PoolToJson(const Pool& pool, uint64_t seq) {
  json leases = json::object();
  for (const auto& [address, owner] : pool.leases()) leases[address.ToString()] = owner;
  // nlohmann::json objects are std::maps, so keys come out sorted: the same pool always
  // serializes to the same bytes. Owners are printable ASCII (Pool checks), so dump() cannot
  // throw on invalid UTF-8.
  json root = json::object();
  root["version"] = kFormatVersion;
  root["seq"] = seq;
  root["subnet"] = pool.subnet().ToString();
  root["gateway"] = pool.gateway().ToString();
  if (pool.last().has_value()) root["last"] = pool.last()->ToString();
  root["leases"] = std::move(leases);
  return root.dump(2) + "\n";
}

absl::StatusOr<Pool> PoolFromJson(absl::string_view text, uint64_t* seq_out) {
  json root;
  try {
    root = json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    return DataLoss(absl::StrCat("invalid JSON: ", e.what()));
  }
  if (!root.is_object()) return DataLoss("not a JSON object");
  auto version = root.find("version");
  if (version == root.end() || !version->is_number_integer() ||
      version->get<int64_t>() < kOldestFormatVersion || version->get<int64_t>() > kFormatVersion) {
    return DataLoss(absl::StrCat(
        "unsupported format version ", version == root.end() ? "(none)" : version->dump(),
        ", this mesh reads versions ", kOldestFormatVersion, " to ", kFormatVersion));
  }
  const bool has_seq = version->get<int64_t>() >= 2;
  for (const auto& [key, value] : root.items()) {
    // Refusing unknown keys (rather than dropping them on the next write) protects data a
    // newer mesh may have put there.
    if (key != "version" && key != "subnet" && key != "gateway" && key != "last" &&
        key != "leases" && !(key == "seq" && has_seq)) {
      return DataLoss(absl::StrCat("unknown key \"", key, "\""));
    }
  }
  uint64_t seq = 0;
  if (has_seq) {
    auto seq_field = root.find("seq");
    if (seq_field == root.end() || !seq_field->is_number_unsigned()) {
      return DataLoss("\"seq\" must be an integer of 0 or more");
    }
    seq = seq_field->get<uint64_t>();
  }

  auto subnet_field = root.find("subnet");
  if (subnet_field == root.end() || !subnet_field->is_string()) {
    return DataLoss("\"subnet\" must be a string holding a subnet");
  }
  absl::StatusOr<IpPrefix> subnet = IpPrefix::Parse(subnet_field->get_ref<const std::string&>());
  if (!subnet.ok()) return DataLoss(absl::StrCat("\"subnet\": ", subnet.status().message()));
  MESH_ASSIGN_OR_RETURN(IpAddress gateway, AddressField(root, "gateway"));
  std::optional<IpAddress> last;
  if (root.contains("last")) {
    MESH_ASSIGN_OR_RETURN(last, AddressField(root, "last"));
  }

  auto leases_field = root.find("leases");
  if (leases_field == root.end() || !leases_field->is_object()) {
    return DataLoss("\"leases\" must be an object mapping addresses to owners");
  }
  std::map<IpAddress, std::string> leases;
  for (const auto& [key, value] : leases_field->items()) {
    absl::StatusOr<IpAddress> address = IpAddress::Parse(key);
    if (!address.ok()) return DataLoss(absl::StrCat("lease: ", address.status().message()));
    if (!value.is_string()) {
      return DataLoss(absl::StrCat("lease of ", key, ": the owner must be a string"));
    }
    // Two spellings of one IPv6 address ("fd00::1", "fd00:0::1") would be one lease.
    if (!leases.emplace(*address, value.get<std::string>()).second) {
      return DataLoss(absl::StrCat("address ", address->ToString(), " is leased twice"));
    }
  }
  absl::StatusOr<Pool> pool = Pool::Restore(*subnet, gateway, last, leases);
  if (!pool.ok()) return DataLoss(pool.status().message());
  if (seq_out != nullptr) *seq_out = seq;
  return pool;
}

absl::StatusOr<std::unique_ptr<Ipam>> Ipam::Open(std::string dir) {
  if (dir.empty()) return absl::InvalidArgumentError("ipam directory must not be empty");
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  MESH_RETURN_IF_ERROR(Annotate(MakeDirs(dir, kDirMode), "open ipam directory"));

  std::error_code ec;
  std::vector<std::string> names;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    names.push_back(it->path().filename().string());
  }
  if (ec) return ErrnoToStatus(ec.value(), absl::StrCat("list ipam directory \"", dir, "\""));
  std::sort(names.begin(), names.end());  // load (and fail) in a stable order

  std::map<std::string, PoolState, std::less<>> pools;
  std::vector<std::string> journals;
  bool created_journal = false;
  for (const std::string& name : names) {
    std::string path = absl::StrCat(dir, "/", name);
    // WriteFileAtomically writes ".<name>.json.tmp.XXXXXX" next to the file; one still here
    // is from a crash mid-write, and the real file holds the old or the new state whole.
    if (absl::StartsWith(name, ".") && absl::StrContains(name, ".json.tmp.")) {
      // Best effort: a leftover that cannot be removed does no harm and is retried next time.
      ::unlink(path.c_str());
      continue;
    }
    if (absl::EndsWith(name, kJournalSuffix)) {
      journals.push_back(name.substr(0, name.size() - kJournalSuffix.size()));
      continue;
    }
    if (!absl::EndsWith(name, kPoolFileSuffix)) continue;
    absl::string_view network =
        absl::string_view(name).substr(0, name.size() - kPoolFileSuffix.size());
    MESH_RETURN_IF_ERROR(Annotate(ValidateName(NameKind::kNetwork, network),
                                  absl::StrCat("load ipam pool file \"", path, "\"")));
    bool created = false;
    MESH_ASSIGN_OR_RETURN(PoolState state, Load(dir, network, &created));
    created_journal |= created;
    pools.emplace(std::string(network), std::move(state));
  }
  for (const std::string& network : journals) {
    // A journal without its snapshot: RemovePool deletes the snapshot first and AddPool writes
    // it last, so this is what a crash between the two steps leaves. No pool holds it.
    if (!pools.contains(network) && ValidateName(NameKind::kNetwork, network).ok()) {
      // Best effort, like the temp files: a stale journal is never read, and AddPool empties
      // it before it writes the snapshot that would make it live again.
      ::unlink(absl::StrCat(dir, "/", network, kJournalSuffix).c_str());
    }
  }
  // An append is fdatasynced, which does not make a new file's directory entry durable.
  if (created_journal) MESH_RETURN_IF_ERROR(Annotate(SyncDir(dir), "open ipam directory"));

  std::unique_ptr<Ipam> ipam(new Ipam(std::move(dir)));
  {
    absl::MutexLock lock(&ipam->mu_);  // not shared yet; taken for the thread annotations
    ipam->pools_ = std::move(pools);
  }
  return ipam;
}

absl::StatusOr<Ipam::PoolState> Ipam::Load(const std::string& dir, absl::string_view network,
                                           bool* created) {
  std::string snapshot_path = absl::StrCat(dir, "/", network, kPoolFileSuffix);
  std::string context = absl::StrCat("load ipam pool file \"", snapshot_path, "\"");
  absl::StatusOr<std::string> text = ReadFile(snapshot_path);
  if (!text.ok()) return Annotate(text.status(), context);
  uint64_t snapshot_seq = 0;
  absl::StatusOr<Pool> pool = PoolFromJson(*text, &snapshot_seq);
  if (!pool.ok()) return Annotate(pool.status(), context);

  std::string journal_path = absl::StrCat(dir, "/", network, kJournalSuffix);
  context = absl::StrCat("load ipam journal \"", journal_path, "\"");
  UniqueFd fd(::open(journal_path.c_str(), O_RDWR | O_APPEND | O_CLOEXEC));
  if (!fd && errno == ENOENT) {
    // A version 1 directory, or a crash in AddPool between the two files of an older mesh.
    fd.Reset(
        ::open(journal_path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, kFileMode));
    *created = fd.valid();
  }
  if (!fd) return Annotate(ErrnoToStatus(errno, "open"), context);
  absl::StatusOr<std::string> journal = ReadAll(fd.get(), journal_path);
  if (!journal.ok()) return Annotate(journal.status(), context);
  absl::StatusOr<Replay> replay = ReplayJournal(*journal, snapshot_seq, *pool);
  if (!replay.ok()) return Annotate(replay.status(), context);
  if (replay->good_size < journal->size()) {
    // Cut off the torn append now: the next record must not follow it, or it would become a
    // bad line in the middle.
    if (::ftruncate(fd.get(), static_cast<off_t>(replay->good_size)) != 0 ||
        ::fdatasync(fd.get()) != 0) {
      return Annotate(ErrnoToStatus(errno, "cut off the torn last record"), context);
    }
  }
  // The Pool methods Apply used keep every rule; this is the same check a snapshot gets.
  absl::StatusOr<Pool> checked =
      Pool::Restore(pool->subnet(), pool->gateway(), pool->last(), pool->leases());
  if (!checked.ok()) return Annotate(DataLoss(checked.status().message()), context);

  return PoolState{.pool = *std::move(pool),
                   .seq = replay->seq,
                   .journal = std::move(fd),
                   .journal_size = replay->good_size,
                   .journal_records = replay->records};
}

std::string Ipam::SnapshotPathOf(absl::string_view network) const {
  return absl::StrCat(dir_, "/", network, kPoolFileSuffix);
}

std::string Ipam::JournalPathOf(absl::string_view network) const {
  return absl::StrCat(dir_, "/", network, kJournalSuffix);
}

absl::Status Ipam::Append(absl::string_view network, PoolState& state, absl::string_view line) {
  std::string path = JournalPathOf(network);
  // Cuts the journal back to its acknowledged records.
  auto cut_back = [&]() {
    if (::ftruncate(state.journal.get(), static_cast<off_t>(state.journal_size)) != 0 ||
        ::fdatasync(state.journal.get()) != 0) {
      state.journal_dirty = true;
      return ErrnoToStatus(
          errno, absl::StrCat("cut \"", path, "\" back to ", state.journal_size, " bytes"));
    }
    state.journal_dirty = false;
    return absl::OkStatus();
  };
  if (state.journal_dirty) MESH_RETURN_IF_ERROR(cut_back());
  absl::Status status =
      WriteAll(state.journal.get(), line, absl::StrCat("append to \"", path, "\""));
  if (status.ok() && ::fdatasync(state.journal.get()) != 0) {
    status = ErrnoToStatus(errno, absl::StrCat("fdatasync \"", path, "\""));
  }
  if (!status.ok()) {
    // The caller undoes the change in memory, so the record must not survive on disk either:
    // a reload would replay it, and the next record would reuse its seq. An fdatasync error
    // leaves it unknown what reached the disk; cutting back settles it.
    if (absl::Status cut = cut_back(); !cut.ok()) {
      return absl::Status(status.code(), absl::StrCat(status.message(), "; ", cut.message()));
    }
    return status;
  }
  state.journal_size += line.size();
  ++state.journal_records;
  return absl::OkStatus();
}

void Ipam::MaybeCompact(absl::string_view network, PoolState& state) {
  if (state.journal_records <=
      std::max<uint64_t>(kMinCompactionRecords, state.pool.leases().size())) {
    return;
  }
  // Snapshot first, then empty the journal. A crash in between leaves a snapshot of seq S
  // next to records up to S, which Load skips; and an append after a failed ftruncate just
  // continues the seq numbers after S.
  if (!WriteFileAtomically(SnapshotPathOf(network), PoolToJson(state.pool, state.seq), kFileMode)
           .ok()) {
    return;  // ignored: the journal still holds every change; the next change retries
  }
  if (::ftruncate(state.journal.get(), 0) != 0) return;  // ignored, as above
  state.journal_size = 0;
  state.journal_records = 0;
  // Ignored: until this is durable the old records may come back after a crash, and they
  // all have seq <= the snapshot's, which Load skips.
  ::fdatasync(state.journal.get());
}

absl::Status Ipam::AddPool(absl::string_view network, const IpPrefix& subnet,
                           std::optional<IpAddress> gateway) {
  MESH_RETURN_IF_ERROR(ValidateName(NameKind::kNetwork, network));
  absl::StatusOr<Pool> pool = Pool::Create(subnet, gateway);
  if (!pool.ok()) return Annotate(pool.status(), QuoteNetwork(network));

  absl::MutexLock lock(&mu_);
  if (auto it = pools_.find(network); it != pools_.end()) {
    const Pool& existing = it->second.pool;
    if (existing.subnet() == pool->subnet() && existing.gateway() == pool->gateway()) {
      return absl::OkStatus();
    }
    return absl::AlreadyExistsError(absl::StrCat(
        QuoteNetwork(network), " already has subnet ", existing.subnet().ToString(),
        " with gateway ", existing.gateway().ToString(), ", not ", pool->subnet().ToString(),
        " with gateway ", pool->gateway().ToString(), "; remove the pool to change it"));
  }
  for (const auto& [other_name, other] : pools_) {
    if (other.pool.subnet().Overlaps(subnet)) {
      return absl::InvalidArgumentError(
          absl::StrCat(QuoteNetwork(network), ": subnet ", subnet.ToString(), " overlaps ",
                       QuoteNetwork(other_name), " (", other.pool.subnet().ToString(), ")"));
    }
  }
  // The empty journal first, the snapshot last: the snapshot makes the pool exist, and a
  // journal left by a crash before it is deleted at Open. O_TRUNC empties a journal a
  // RemovePool could not delete, which must not be replayed onto the new pool; the fdatasync
  // makes that durable before the snapshot's rename is.
  std::string journal_path = JournalPathOf(network);
  UniqueFd journal(
      ::open(journal_path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC, kFileMode));
  if (!journal || ::fdatasync(journal.get()) != 0) {
    return Annotate(ErrnoToStatus(errno, absl::StrCat("create \"", journal_path, "\"")),
                    QuoteNetwork(network));
  }
  // WriteFileAtomically fsyncs the directory, which makes the journal's entry durable too.
  if (absl::Status written =
          WriteFileAtomically(SnapshotPathOf(network), PoolToJson(*pool, 0), kFileMode);
      !written.ok()) {
    // Best effort: an empty journal without a snapshot is removed at Open anyway.
    ::unlink(journal_path.c_str());
    return Annotate(written, QuoteNetwork(network));
  }
  pools_.emplace(std::string(network),
                 PoolState{.pool = *std::move(pool), .journal = std::move(journal)});
  return absl::OkStatus();
}

absl::Status Ipam::RemovePool(absl::string_view network) {
  MESH_RETURN_IF_ERROR(ValidateName(NameKind::kNetwork, network));
  absl::MutexLock lock(&mu_);
  // The snapshot goes first: if that fails the pool stays, in memory as on disk. Once it is
  // gone the pool is gone, whatever happens to the journal: Open deletes a journal without a
  // snapshot. The other order could leave a snapshot without its journal, an old state of
  // the pool that would load as if it were current.
  std::string snapshot_path = SnapshotPathOf(network);
  if (absl::Status removed = RemoveFile(snapshot_path); !removed.ok()) {
    return Annotate(removed, QuoteNetwork(network));
  }
  if (auto it = pools_.find(network); it != pools_.end()) pools_.erase(it);  // closes the fd
  absl::Status status = SyncDir(dir_);
  // Not synced: a journal that comes back after a crash is deleted at Open.
  if (absl::Status removed = RemoveFile(JournalPathOf(network)); !removed.ok()) {
    status.Update(absl::Status(
        removed.code(),
        absl::StrCat(removed.message(), " (the pool is removed; remove it again to retry)")));
  }
  return Annotate(status, QuoteNetwork(network));
}

absl::StatusOr<IpAddress> Ipam::Allocate(absl::string_view network, absl::string_view owner,
                                         std::optional<IpAddress> requested) {
  MESH_RETURN_IF_ERROR(ValidateName(NameKind::kNetwork, network));
  absl::MutexLock lock(&mu_);
  auto it = pools_.find(network);
  if (it == pools_.end()) {
    return absl::NotFoundError(absl::StrCat(QuoteNetwork(network), " has no address pool"));
  }
  PoolState& state = it->second;
  Pool& pool = state.pool;
  // An owner that already has what it asks for needs no write.
  if (std::optional<IpAddress> held = pool.Lookup(owner);
      held.has_value() && (!requested.has_value() || *requested == *held)) {
    return *held;
  }
  // Change the pool in place and undo the change if its record cannot be written: copying the
  // pool instead would cost O(n).
  const std::optional<IpAddress> previous_last = pool.last();
  absl::StatusOr<IpAddress> address =
      requested.has_value() ? pool.AllocateStatic(*requested, owner) : pool.Allocate(owner);
  if (!address.ok()) return Annotate(address.status(), QuoteNetwork(network));  // no change
  Record record{.seq = state.seq + 1,
                .allocate = true,
                .address = *address,
                .owner = std::string(owner),
                .last = requested.has_value() ? std::nullopt : pool.last()};
  if (absl::Status appended = Append(network, state, RecordToLine(record)); !appended.ok()) {
    pool.Release(owner);
    // Cannot fail: the pool held this cursor a moment ago.
    pool.SetLast(previous_last).IgnoreError();
    return Annotate(appended, QuoteNetwork(network));
  }
  state.seq = record.seq;
  MaybeCompact(network, state);
  return address;
}

absl::Status Ipam::Release(absl::string_view network, absl::string_view owner) {
  MESH_RETURN_IF_ERROR(ValidateName(NameKind::kNetwork, network));
  absl::MutexLock lock(&mu_);
  auto it = pools_.find(network);
  if (it == pools_.end()) return absl::OkStatus();
  PoolState& state = it->second;
  std::optional<IpAddress> address = state.pool.Release(owner);
  if (!address.has_value()) return absl::OkStatus();
  Record record{
      .seq = state.seq + 1, .allocate = false, .address = *address, .owner = std::string(owner)};
  if (absl::Status appended = Append(network, state, RecordToLine(record)); !appended.ok()) {
    // Cannot fail: the address and the owner were each other's a moment ago. Release does not
    // move the cursor, so this restores the pool exactly.
    state.pool.AllocateStatic(*address, owner).status().IgnoreError();
    return Annotate(appended, QuoteNetwork(network));
  }
  state.seq = record.seq;
  MaybeCompact(network, state);
  return absl::OkStatus();
}

std::optional<IpAddress> Ipam::Lookup(absl::string_view network, absl::string_view owner) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = pools_.find(network);
  if (it == pools_.end()) return std::nullopt;
  return it->second.pool.Lookup(owner);
}

absl::StatusOr<PoolSnapshot> Ipam::Get(absl::string_view network) const {
  MESH_RETURN_IF_ERROR(ValidateName(NameKind::kNetwork, network));
  absl::ReaderMutexLock lock(&mu_);
  auto it = pools_.find(network);
  if (it == pools_.end()) {
    return absl::NotFoundError(absl::StrCat(QuoteNetwork(network), " has no address pool"));
  }
  const Pool& pool = it->second.pool;
  return PoolSnapshot{pool.subnet(), pool.gateway(), pool.leases()};
}

std::vector<std::string> Ipam::Networks() const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<std::string> names;
  names.reserve(pools_.size());
  for (const auto& [name, state] : pools_) names.push_back(name);
  return names;
}

absl::StatusOr<IpPrefix> Ipam::ChooseSubnet(const IpPrefix& default_pool, int prefix_length,
                                            const std::vector<IpPrefix>& in_use) {
  int bits = default_pool.network().bit_length();
  if (prefix_length < default_pool.length() || prefix_length > bits) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot choose a /", prefix_length, " subnet from default pool ", default_pool.ToString(),
        ": the length must be from ", default_pool.length(), " to ", bits));
  }
  MESH_ASSIGN_OR_RETURN(IpPrefix candidate,
                        IpPrefix::Containing(default_pool.network(), prefix_length));
  // Each round either returns or moves past every prefix in `in_use` that overlaps the
  // candidate, so there are at most in_use.size() + 1 rounds however large the pool is.
  for (;;) {
    std::optional<IpAddress> clash_end;
    for (const IpPrefix& used : in_use) {
      if (used.Overlaps(candidate))
        clash_end = std::max(clash_end.value_or(used.Last()), used.Last());
    }
    if (!clash_end.has_value()) return candidate;
    // Prefixes nest, so this end is the end of an aligned block at least as large as the
    // candidate: the address after it starts the next candidate.
    std::optional<IpAddress> next = std::max(*clash_end, candidate.Last()).Add(1);
    if (!next.has_value() || !default_pool.Contains(*next)) break;
    MESH_ASSIGN_OR_RETURN(candidate, IpPrefix::Containing(*next, prefix_length));
  }
  int doubling = prefix_length - default_pool.length();
  std::string count =
      doubling < 64 ? absl::StrCat(uint64_t{1} << doubling) : absl::StrCat("2^", doubling);
  return absl::ResourceExhaustedError(absl::StrCat("default pool ", default_pool.ToString(),
                                                   " has no free /", prefix_length, " left (",
                                                   count, " in use or overlapping routes)"));
}

absl::StatusOr<IpPrefix> Ipam::ChooseFreeSubnet(const IpPrefix& default_pool, int prefix_length,
                                                std::vector<IpPrefix> host_routes) const {
  {
    absl::ReaderMutexLock lock(&mu_);
    for (const auto& [name, state] : pools_) host_routes.push_back(state.pool.subnet());
  }
  return ChooseSubnet(default_pool, prefix_length, host_routes);
}

}  // namespace mesh::netplane::ipam
