#pragma once

// A pure value describing one atomic nftables transaction (STYLE.md rule 6): desired state ->
// Transaction -> one libnftnl batch (batch.h). Nothing here talks to the kernel, so tests can
// build, compare and print transactions without root.
//
// The objects mirror what nf_tables stores, with enough detail to serialize them exactly the
// way nft(8) does, so that `nft list ruleset` renders mesh's table like a hand-written one:
// set key and data types use nft's datatype numbers, rules are the low-level expressions nft
// itself generates (`nft --debug=netlink` prints them in the same notation as ToString()).

// glibc's <netinet/in.h> first: the kernel headers below pull in <linux/in.h>, and the two
// only coexist in this order (linux/libc-compat.h).
#include <netinet/in.h>
// Kernel headers.
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace mesh::netplane::nft {

// Address family of a table (the kernel's NFPROTO_* numbers).
enum class Family : uint8_t {
  kInet = NFPROTO_INET,
  kIp = NFPROTO_IPV4,
  kIp6 = NFPROTO_IPV6,
  kBridge = NFPROTO_BRIDGE,
};
absl::string_view FamilyName(Family family);  // "inet", "ip", "ip6", "bridge"

enum class ChainType : uint8_t { kFilter, kNat, kRoute };
absl::string_view ChainTypeName(ChainType type);  // "filter", "nat", "route"

// Netfilter hooks (NF_INET_* numbers; the bridge family's NF_BR_* hooks have the same numbers
// and names).
enum class Hook : uint8_t {
  kPrerouting = NF_INET_PRE_ROUTING,
  kInput = NF_INET_LOCAL_IN,
  kForward = NF_INET_FORWARD,
  kOutput = NF_INET_LOCAL_OUT,
  kPostrouting = NF_INET_POST_ROUTING,
};
absl::string_view HookName(Hook hook);  // "prerouting", ...

enum class Policy : uint8_t { kAccept, kDrop };

// Types of set keys and map values, numbered as nft(8) numbers its datatypes (TYPE_* in
// nftables' datatype.h). The kernel stores the number opaquely in NFTA_SET_KEY_TYPE; nft uses
// it to print elements, so a wrong number makes `nft list` print garbage.
enum class DataType : uint32_t {
  kIpv4Addr = 7,
  kIpv6Addr = 8,
  kInetProto = 12,
  kInetService = 13,
  kMark = 19,
  kIfname = 41,
};
absl::string_view DataTypeName(DataType type);  // "ipv4_addr", "ifname", ...
// Bytes a value of `type` takes in a register (IFNAMSIZ for interface names).
uint32_t DataTypeSize(DataType type);

// One field of a set key or map value, in the kernel's byte layout: addresses and ports in
// network byte order, interface names NUL-padded to IFNAMSIZ (16) bytes.
struct Datum {
  DataType type = DataType::kIfname;
  std::string bytes;

  // Names longer than 15 bytes are kept as given so that Validate() rejects them.
  static Datum Ifname(absl::string_view name);
  static Datum Ipv4Addr(in_addr address);
  static Datum InetProto(uint8_t proto);    // IPPROTO_TCP, IPPROTO_UDP, ...
  static Datum InetService(uint16_t port);  // host byte order in
  static Datum Mark(uint32_t mark);

  // As nft prints it: "br-front" (quoted), 10.88.0.1, tcp, 8080.
  std::string ToString() const;
  friend bool operator==(const Datum&, const Datum&) = default;
};

// The bytes of a key or value as the kernel stores them: a single field as is, each field of a
// concatenation padded to 4 bytes (one NFT_REG32 register each).
std::string PackFields(const std::vector<Datum>& fields);

// One set or map element. Interval sets (ranges of addresses) store a range [first, last] as
// two elements, as the kernel's rbtree backend expects: `first`, and last+1 with
// `interval_end`. A range running to the end of the address space has no end element; its
// start carries `interval_open` (NFTNL_SET_ELEM_F_INTERVAL_OPEN in the element's user data,
// which is how nft marks it so that it lists the range as a prefix).
struct Element {
  std::vector<Datum> key;   // one Datum per field of the set's key
  std::vector<Datum> data;  // maps only: one Datum per field of the value
  bool interval_end = false;
  bool interval_open = false;
  std::string comment;  // shown by `nft list`; at most kMaxCommentLength bytes

  std::string ToString() const;  // tcp . 8080 : 10.88.0.2 . 80 comment "web-1"
  friend bool operator==(const Element&, const Element&) = default;
};

// ---- Rule expressions: the kernel's expressions, one struct each (NFTA_*_ attributes). ----
// Registers are the kernel's numbers: NFT_REG_VERDICT (0), the 16-byte NFT_REG_1..4 (1-4) and
// the 4-byte NFT_REG32_00..15 (8-23), as `nft --debug=netlink` shows them ("reg 9").

struct MetaLoad {    // [ meta load iifname => reg 1 ]
  uint32_t key = 0;  // NFT_META_*
  uint32_t dreg = NFT_REG_1;
  friend bool operator==(const MetaLoad&, const MetaLoad&) = default;
};
struct PayloadLoad {  // [ payload load 4b @ network header + 12 => reg 1 ]
  uint32_t base = NFT_PAYLOAD_NETWORK_HEADER;
  uint32_t offset = 0;
  uint32_t len = 0;
  uint32_t dreg = NFT_REG_1;
  friend bool operator==(const PayloadLoad&, const PayloadLoad&) = default;
};
struct CtLoad {      // [ ct load state => reg 1 ]
  uint32_t key = 0;  // NFT_CT_*
  uint32_t dreg = NFT_REG_1;
  friend bool operator==(const CtLoad&, const CtLoad&) = default;
};
struct Cmp {  // [ cmp eq reg 1 0x00000002 ]
  uint32_t sreg = NFT_REG_1;
  uint32_t op = NFT_CMP_EQ;
  std::string data;  // compared bytes, in register byte order
  friend bool operator==(const Cmp&, const Cmp&) = default;
};
struct Bitwise {  // [ bitwise reg 1 = ( reg 1 & 0x00000006 ) ^ 0x00000000 ]
  uint32_t sreg = NFT_REG_1;
  uint32_t dreg = NFT_REG_1;
  std::string mask;  // same length as xor_value: the operand length
  std::string xor_value;
  friend bool operator==(const Bitwise&, const Bitwise&) = default;
};
struct Lookup {  // [ lookup reg 1 set bridges ], map: [ lookup reg 1 set m dreg 1 ]
  uint32_t sreg = NFT_REG_1;
  std::string set;               // in the rule's table
  std::optional<uint32_t> dreg;  // maps: where the value goes
  bool invert = false;           // NFT_LOOKUP_F_INV: "not in set"
  friend bool operator==(const Lookup&, const Lookup&) = default;
};
struct Fib {                          // [ fib daddr type => reg 1 ]
  uint32_t flags = NFTA_FIB_F_DADDR;  // NFTA_FIB_F_*
  uint32_t result = NFT_FIB_RESULT_ADDRTYPE;
  uint32_t dreg = NFT_REG_1;
  friend bool operator==(const Fib&, const Fib&) = default;
};
struct Nat {  // [ nat dnat ip addr_min reg 1 proto_min reg 9 ]
  uint32_t type = NFT_NAT_DNAT;
  Family family = Family::kIp;
  uint32_t reg_addr_min = NFT_REG_1;
  std::optional<uint32_t> reg_proto_min;
  friend bool operator==(const Nat&, const Nat&) = default;
};
struct Masquerade {  // [ masq ]
  friend bool operator==(const Masquerade&, const Masquerade&) = default;
};
struct Immediate {  // [ immediate reg 1 0x00000001 ]
  uint32_t dreg = NFT_REG_1;
  std::string data;  // loaded bytes, in register byte order
  friend bool operator==(const Immediate&, const Immediate&) = default;
};
struct MetaSet {     // [ meta set nftrace with reg 1 ]
  uint32_t key = 0;  // NFT_META_*
  uint32_t sreg = NFT_REG_1;
  friend bool operator==(const MetaSet&, const MetaSet&) = default;
};
struct Verdict {             // [ immediate reg 0 accept ]
  int32_t code = NF_ACCEPT;  // NF_ACCEPT, NF_DROP, NFT_CONTINUE, NFT_RETURN
  friend bool operator==(const Verdict&, const Verdict&) = default;
};

using Expr = std::variant<MetaLoad, PayloadLoad, CtLoad, Cmp, Bitwise, Lookup, Fib, Nat, Masquerade,
                          Immediate, MetaSet, Verdict>;

// In libnftnl's debug notation, which `nft --debug=netlink` prints: "[ meta load iifname =>
// reg 1 ]". Byte strings print as 32-bit words in host order, as libnftnl does.
std::string ExprToString(const Expr& expr);

// ---- Objects ----

inline constexpr size_t kMaxNameLength = NFT_NAME_MAXLEN - 1;  // table, chain and set names
inline constexpr size_t kMaxCommentLength = 128;  // NFTNL_UDATA_COMMENT_MAXLEN; nft enforces it
inline constexpr size_t kMaxRuleExprs = 64;

struct Table {
  Family family = Family::kInet;
  std::string name;
  std::string comment;
};

struct BaseChain {
  ChainType type = ChainType::kFilter;
  Hook hook = Hook::kForward;
  int32_t priority = 0;
  Policy policy = Policy::kAccept;
};

struct Chain {
  Family family = Family::kInet;
  std::string table;
  std::string name;
  std::optional<BaseChain> base;  // unset: a regular chain (jump target)
  std::string comment;
};

struct Set {
  Family family = Family::kInet;
  std::string table;
  std::string name;
  std::vector<DataType> key;   // more than one: a concatenation (`type a . b`)
  std::vector<DataType> data;  // non-empty: a map
  bool interval = false;       // NFT_SET_INTERVAL; single-field keys only
  std::string comment;

  bool is_map() const { return !data.empty(); }
  // Bytes of a key/value: a single field takes its size, each field of a concatenation is
  // padded to 4 bytes (one NFT_REG32 register each), as the kernel lays them out.
  uint32_t key_len() const;
  uint32_t data_len() const;
};

struct Rule {
  Family family = Family::kInet;
  std::string table;
  std::string chain;
  std::vector<Expr> exprs;
  std::string comment;
  uint64_t handle = 0;  // Delete only: the kernel's rule handle
};

// Elements of one set or map, to add or delete.
struct Elements {
  Family family = Family::kInet;
  std::string table;
  std::string set;
  bool map = false;  // only for messages: "element ... to map"
  std::vector<Element> elements;
};

using Object = std::variant<Table, Chain, Set, Rule, Elements>;

enum class Verb : uint8_t {
  kAdd,     // create; AlreadyExists if it exists (NLM_F_CREATE | NLM_F_EXCL)
  kEnsure,  // create unless it exists, identical (NLM_F_CREATE): a no-op when present
  kDelete,  // NotFound if absent
  kFlush,   // chain: delete all its rules; set or map: delete all its elements
};

struct Command {
  Verb verb = Verb::kAdd;
  Object object;

  // What the command does, for error messages: `add element to map "published4" in table
  // inet mesh (tcp . 8080 : 10.88.0.2 . 80)`; "ensure element in map ...", "delete element
  // from map ...". Up to three elements are named.
  std::string Describe() const;
  // One line in nft-like notation, for tests and logs.
  std::string ToString() const;
};

// How both NftTable implementations report a command failing with errno `err`:
// `nftables: <description>: File exists (EEXIST)`, with the errno's status code, and a hint
// when an ensure finds the object with different contents (a map element with another value).
absl::Status CommandError(Verb verb, absl::string_view description, int err);

// An ordered list of commands the kernel applies atomically: all of them or none.
class Transaction {
 public:
  Transaction& Add(Object object) { return Push(Verb::kAdd, std::move(object)); }
  Transaction& Ensure(Object object) { return Push(Verb::kEnsure, std::move(object)); }
  Transaction& Delete(Object object) { return Push(Verb::kDelete, std::move(object)); }
  Transaction& Flush(Object object) { return Push(Verb::kFlush, std::move(object)); }
  // Appends the commands of `other`.
  Transaction& Append(const Transaction& other);

  const std::vector<Command>& commands() const { return commands_; }
  bool empty() const { return commands_.empty(); }
  size_t size() const { return commands_.size(); }

  // Checks what the kernel would reject for the shape of the request (names, lengths, which
  // verbs apply to which objects, interface names of at most 15 bytes), before anything is
  // sent. InvalidArgument naming the command. Both NftTable implementations call it first.
  absl::Status Validate() const;

  // One line per command (Command::ToString), ending in '\n'.
  std::string ToString() const;

 private:
  Transaction& Push(Verb verb, Object object);
  std::vector<Command> commands_;
};

}  // namespace mesh::netplane::nft
