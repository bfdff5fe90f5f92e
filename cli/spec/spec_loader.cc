#include "cli/spec/spec_loader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/errno_status.h"
#include "base/quote.h"
#include "base/suggest.h"
#include "base/unique_fd.h"
#include "cli/spec/scalars.h"

namespace mesh::cli {
namespace {

using Kind = YamlNode::Kind;

constexpr uint64_t kMaxUint32 = std::numeric_limits<uint32_t>::max();
constexpr uint64_t kMaxInt64 = std::numeric_limits<int64_t>::max();
// Keys longer than this get no "did you mean" (the distance is quadratic in the length).
constexpr size_t kMaxSuggestedKeyLength = 64;

std::string At(absl::string_view path, size_t index) { return absl::StrCat(path, "[", index, "]"); }
std::string Dot(absl::string_view path, absl::string_view member) {
  return absl::StrCat(path, ".", member);
}
// How meshd names an entry of a Labels message at `path` (agent/api/convert.cc ValidateLabels).
std::string LabelPath(absl::string_view path, absl::string_view key) {
  return absl::StrCat(path, ".labels[", Quote(key), "]");
}

// Reads at most `max` bytes of `fd`; a longer file is refused without reading it whole.
absl::StatusOr<std::string> ReadBounded(int fd, size_t max, absl::string_view what) {
  std::string data;
  char buffer[65536];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(errno, absl::StrCat("read ", what));
    }
    if (n == 0) break;
    if (data.size() + static_cast<size_t>(n) > max) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, " is larger than ", max, " bytes, more than it may be; make it smaller"));
    }
    data.append(buffer, static_cast<size_t>(n));
  }
  return data;
}

// `regular_only`: refuse anything but a regular file (an env file that is a FIFO or a terminal
// would block the loader); opened non-blocking so that even the open does not wait.
absl::StatusOr<std::string> ReadFileBounded(const std::string& path, size_t max,
                                            bool regular_only) {
  const std::string what = Quote(path);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | (regular_only ? O_NONBLOCK : 0)));
  if (!fd.valid()) return ErrnoToStatus(errno, absl::StrCat("open ", what));
  if (regular_only) {
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return ErrnoToStatus(errno, absl::StrCat("stat ", what));
    if (!S_ISREG(st.st_mode)) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " is not a regular file; name a file of KEY=VALUE lines"));
    }
  }
  return ReadBounded(fd.get(), max, what);
}

// One key of a map and its value, as read by Loader::Entries.
struct Entry {
  std::string name;
  const YamlNode* key = nullptr;
  const YamlNode* value = nullptr;
};

// Which keys a map may hold. `known` empty: any key (a map of names).
struct KeySet {
  std::string what;  // for messages: "container \"web\""
  std::vector<std::string> known;
  // Keys people will try that have no API field: the key -> why, and what to do instead.
  std::map<std::string, std::string, std::less<>> unsupported;
};

const KeySet& TopKeys() {
  static const auto* keys =
      new KeySet{"the spec",
                 {"name", "labels", "networks", "containers", "links", "policy"},
                 {{"services",
                   "a group's members are listed under containers:, not services:; rename the key"},
                  {"version", "a spec has no version; remove the key"},
                  {"volumes",
                   "mesh has no named volumes; bind host directories in a container's volumes: "
                   "(./data:/data) or use its tmpfs:"}}};
  return *keys;
}

KeySet NetworkKeys(absl::string_view name) {
  return KeySet{
      absl::StrCat("network ", Quote(name)),
      {"subnet", "gateway", "nat", "internal", "mtu", "labels"},
      {{"external",
        "is not supported by this meshd API: a group's containers attach to networks of the "
        "group only; define the network here (it is created as <group>-<name>)"}}};
}

KeySet ContainerKeys(absl::string_view name) {
  return KeySet{
      absl::StrCat("container ", Quote(name)),
      {"image",
       "command",
       "entrypoint",
       "environment",
       "env_file",
       "working_dir",
       "user",
       "hostname",
       "networks",
       "network_mode",
       "ports",
       "volumes",
       "tmpfs",
       "resources",
       "restart",
       "healthcheck",
       "depends_on",
       "init",
       "privileged",
       "read_only",
       "tty",
       "cap_add",
       "cap_drop",
       "labels",
       "stop_grace_period",
       "logging",
       "userns_host_base",
       "sysctls",
       "routes"},
      {{"build", "mesh does not build images; import one with meshctl image import"},
       {"container_name", "a member runs as <group>-<key>; rename the key under containers:"}}};
}

// A problem, kept with the position that orders it among the others.
struct Problem {
  int line = 0;
  int column = 0;
  size_t sequence = 0;
  std::string text;
};

// A reference from one member to another member or a network, to check once every member is
// known.
struct Reference {
  std::string name;
  const YamlNode* node = nullptr;
  std::string key;  // the key or item that holds it, for messages: "depends_on[1]"
};

struct MemberRefs {
  std::string name;
  const YamlNode* key = nullptr;
  std::vector<Reference> networks;
  std::vector<Reference> depends_on;
  std::optional<Reference> network_from;
};

// One environment variable as it stands after env files and `environment`.
struct EnvValue {
  std::string value;
  SourcePosition position;
};

class Loader {
 public:
  Loader(std::string file, std::string base_dir, const SpecLimits& limits)
      : file_(std::move(file)), base_dir_(std::move(base_dir)), limits_(limits) {}

  absl::StatusOr<LoadedSpec> Run(absl::string_view text) {
    ParsedYaml parsed = ParseYaml(text, limits_.yaml);
    if (parsed.root == nullptr) {
      AddProblem(
          parsed.error.line, parsed.error.column,
          parsed.error.line == 0
              ? absl::StrCat(file_, ": ", parsed.error.message)
              : absl::StrCat(Where(parsed.error.line, parsed.error.column), parsed.error.message));
      return Finish();
    }
    root_ = parsed.root;
    ReadSpec(*root_);
    return Finish();
  }

 private:
  // --- Problems and positions ---

  std::string Where(int line, int column) const {
    return absl::StrCat(file_, ":", line, ":", column, ": ");
  }
  SourcePosition PositionOf(const YamlNode& node) const {
    return SourcePosition{file_, node.line, node.column};
  }
  void AddProblem(int line, int column, std::string text) {
    problems_.push_back(Problem{line, column, problems_.size(), std::move(text)});
  }
  void Error(const YamlNode& at, absl::string_view message) {
    AddProblem(at.line, at.column, absl::StrCat(Where(at.line, at.column), message));
  }
  void Record(std::string path, const YamlNode& node) {
    result_.sources.Add(std::move(path), PositionOf(node));
  }

  absl::StatusOr<LoadedSpec> Finish() {
    if (problems_.empty()) return std::move(result_);
    std::stable_sort(problems_.begin(), problems_.end(), [](const Problem& a, const Problem& b) {
      return std::tie(a.line, a.column, a.sequence) < std::tie(b.line, b.column, b.sequence);
    });
    // A problem inside a node that is used twice (an alias) is reported once.
    std::set<absl::string_view> seen;
    std::vector<absl::string_view> lines;
    for (const Problem& p : problems_) {
      if (seen.insert(p.text).second) lines.push_back(p.text);
    }
    std::string more;
    if (lines.size() > limits_.max_errors) {
      more = absl::StrCat("\n", file_, ": ... and ", lines.size() - limits_.max_errors,
                          " more problems");
      lines.resize(limits_.max_errors);
    }
    return absl::InvalidArgumentError(absl::StrCat(absl::StrJoin(lines, "\n"), more));
  }

  // --- Generic readers ---

  // The entries of `map` (a kMap node) with their keys checked: strings, not repeated, known
  // (unless `keys.known` is empty). "<<" merges the entries of another map (YAML's merge key):
  // keys of the map itself win. Keys starting with "x-" are ignored in maps of known keys
  // (a place for anchors). Returns the entries to use, in document order.
  std::vector<Entry> Entries(const YamlNode& map, const KeySet& keys) {
    std::vector<Entry> out;
    std::map<std::string, int, std::less<>> own;  // key -> line, of the map's own keys
    for (const auto& [key, value] : map.entries) {
      if (key->kind != Kind::kScalar) {
        Error(*key, absl::StrCat("a key must be a string, not ", Article(*key)));
        continue;
      }
      if (key->value == "<<" && key->plain) continue;
      if (auto [it, added] = own.emplace(key->value, key->line); !added) {
        Error(*key, absl::StrCat("duplicate key ", Quote(key->value), " in ", keys.what,
                                 " (first at line ", it->second, "); remove one"));
        continue;
      }
    }
    std::set<std::string, std::less<>> taken;
    for (const auto& [key, value] : map.entries) {
      if (key->kind != Kind::kScalar) continue;
      if (key->value == "<<" && key->plain) {
        Merge(*value, keys, own, taken, out, 0);
        continue;
      }
      if (!taken.insert(key->value).second) continue;  // a duplicate, reported above
      if (Accept(*key, keys)) out.push_back(Entry{key->value, key.get(), value.get()});
    }
    return out;
  }

  // The entries of the map (or list of maps) `source` merged into a map whose own keys are
  // `own`.
  void Merge(const YamlNode& source, const KeySet& keys,
             const std::map<std::string, int, std::less<>>& own,
             std::set<std::string, std::less<>>& taken, std::vector<Entry>& out, int depth) {
    if (source.kind == Kind::kList && depth == 0) {
      for (const YamlNode::Ptr& item : source.items) Merge(*item, keys, own, taken, out, 1);
      return;
    }
    if (source.kind != Kind::kMap) {
      Error(source, absl::StrCat("<< (merge) takes a map or a list of maps, such as *defaults, "
                                 "not ",
                                 Article(source)));
      return;
    }
    for (const auto& [key, value] : source.entries) {
      if (key->kind != Kind::kScalar) {
        Error(*key, absl::StrCat("a key must be a string, not ", Article(*key)));
        continue;
      }
      if (key->value == "<<" && key->plain) {
        // Nested merges: bounded by the depth of the tree, which has no cycles.
        Merge(*value, keys, own, taken, out, 0);
        continue;
      }
      if (own.contains(key->value) || !taken.insert(key->value).second) continue;
      if (Accept(*key, keys)) out.push_back(Entry{key->value, key.get(), value.get()});
    }
  }

  // Whether `key` may be in a map of `keys`; reports it if not.
  bool Accept(const YamlNode& key, const KeySet& keys) {
    if (keys.known.empty()) return true;
    const std::string& name = key.value;
    if (std::find(keys.known.begin(), keys.known.end(), name) != keys.known.end()) return true;
    if (absl::StartsWith(name, "x-")) return false;
    if (auto it = keys.unsupported.find(name); it != keys.unsupported.end()) {
      Error(key, absl::StrCat("key ", Quote(name), " in ", keys.what, ": ", it->second));
      return false;
    }
    std::optional<std::string> near;
    if (name.size() <= kMaxSuggestedKeyLength) near = ClosestMatch(name, keys.known);
    if (near) {
      Error(key, absl::StrCat("unknown key ", Quote(name), " in ", keys.what, " (did you mean ",
                              Quote(*near), "?)"));
    } else {
      Error(key, absl::StrCat("unknown key ", Quote(name), " in ", keys.what,
                              "; known keys: ", absl::StrJoin(keys.known, ", ")));
    }
    return false;
  }

  static std::string Article(const YamlNode& node) {
    switch (node.kind) {
      case Kind::kMap:
        return "a map";
      case Kind::kList:
        return "a list";
      case Kind::kNull:
        return "nothing";
      case Kind::kScalar:
        break;
    }
    return absl::StrCat("the string ", Quote(node.value));
  }

  static const Entry* Find(const std::vector<Entry>& entries, absl::string_view name) {
    for (const Entry& e : entries) {
      if (e.name == name) return &e;
    }
    return nullptr;
  }

  // The text of a scalar value; reports any other kind. `hint` says what to write.
  std::optional<std::string> Text(const YamlNode& value, const YamlNode& key,
                                  absl::string_view name, absl::string_view hint) {
    if (value.kind == Kind::kScalar) return value.value;
    if (value.kind == Kind::kNull) {
      Error(key, absl::StrCat(name, ": has no value; ", hint));
    } else {
      Error(value,
            absl::StrCat(name, ": must be a single value, not ", Article(value), "; ", hint));
    }
    return std::nullopt;
  }
  std::optional<std::string> Text(const Entry& e, absl::string_view hint) {
    return Text(*e.value, *e.key, e.name, hint);
  }

  // A value parsed by one of scalars.h's functions; reports its error at the value.
  template <typename T>
  std::optional<T> Parsed(const Entry& e, absl::string_view hint,
                          const std::function<absl::StatusOr<T>(absl::string_view)>& parse) {
    std::optional<std::string> text = Text(e, hint);
    if (!text) return std::nullopt;
    absl::StatusOr<T> value = parse(*text);
    if (!value.ok()) {
      Error(*e.value, absl::StrCat(e.name, ": ", value.status().message()));
      return std::nullopt;
    }
    return *std::move(value);
  }

  std::optional<bool> Bool(const Entry& e) {
    return Parsed<bool>(e, "write true or false", ParseBool);
  }

  // A map value (nothing counts as an empty map); reports any other kind.
  const YamlNode* MapOf(const Entry& e, absl::string_view what) {
    if (e.value->kind == Kind::kMap) return e.value;
    if (e.value->kind != Kind::kNull) {
      Error(*e.value,
            absl::StrCat(e.name, ": must be a map of ", what, ", not ", Article(*e.value)));
    }
    return nullptr;
  }

  // The items of a list value (nothing: none); `scalar_ok`: a single value is a list of one.
  std::vector<const YamlNode*> ItemsOf(const Entry& e, absl::string_view what, bool scalar_ok) {
    std::vector<const YamlNode*> items;
    if (e.value->kind == Kind::kList) {
      for (const YamlNode::Ptr& item : e.value->items) items.push_back(item.get());
    } else if (e.value->kind == Kind::kScalar && scalar_ok) {
      items.push_back(e.value);
    } else if (e.value->kind != Kind::kNull) {
      Error(*e.value,
            absl::StrCat(e.name, ": must be a list of ", what, ", not ", Article(*e.value)));
    }
    return items;
  }

  // The items of a list of maps (`name` is the list's, for messages; `example` shows an item),
  // in order; an item that is not a map is reported and comes as nullptr.
  std::vector<const YamlNode*> MapItems(const Entry& e, absl::string_view name,
                                        absl::string_view what, absl::string_view example) {
    std::vector<const YamlNode*> items =
        ItemsOf(e, absl::StrCat(what, " such as ", example), false);
    for (size_t i = 0; i < items.size(); ++i) {
      if (items[i]->kind == Kind::kMap) continue;
      Error(*items[i], absl::StrCat(At(name, i), ": must be a map such as ", example, ", not ",
                                    Article(*items[i])));
      items[i] = nullptr;
    }
    return items;
  }

  // The items of a list of strings; reports items that are not.
  std::vector<std::pair<std::string, const YamlNode*>> Strings(const Entry& e,
                                                               absl::string_view what,
                                                               bool scalar_ok) {
    std::vector<std::pair<std::string, const YamlNode*>> out;
    std::vector<const YamlNode*> items = ItemsOf(e, what, scalar_ok);
    for (size_t i = 0; i < items.size(); ++i) {
      if (std::optional<std::string> text =
              Text(*items[i], *items[i], At(e.name, i), absl::StrCat("give ", what))) {
        out.emplace_back(*std::move(text), items[i]);
      }
    }
    return out;
  }

  // --- The spec ---

  void ReadSpec(const YamlNode& root) {
    if (root.kind == Kind::kNull) {
      Error(root,
            "the spec is empty; give at least the group's name (name: shop) and its "
            "containers (docs/spec.md)");
      return;
    }
    if (root.kind != Kind::kMap) {
      Error(root, absl::StrCat("a spec must be a map (name, labels, networks, containers), not ",
                               Article(root)));
      return;
    }
    std::vector<Entry> top = Entries(root, TopKeys());
    v1::GroupSpec& spec = result_.spec;
    if (const Entry* e = Find(top, "name")) {
      if (auto name = Text(*e, "give the group's name, such as \"shop\"")) {
        spec.set_name(*name);
        Record("spec.name", *e->value);
      }
    } else {
      Error(root, "the spec has no name; add the group's name at the top (name: shop)");
    }
    if (const Entry* e = Find(top, "labels")) ReadLabels(*e, "spec.labels", spec.mutable_labels());
    if (const Entry* e = Find(top, "networks")) {
      if (const YamlNode* map = MapOf(*e, "network names to networks")) {
        std::vector<Entry> networks = Entries(*map, KeySet{"networks", {}, {}});
        for (const Entry& n : networks) ReadNetwork(n, spec.add_networks());
      }
    }
    if (const Entry* e = Find(top, "containers")) {
      if (const YamlNode* map = MapOf(*e, "member names to containers")) {
        std::vector<Entry> containers = Entries(*map, KeySet{"containers", {}, {}});
        for (const Entry& c : containers) ReadContainer(c, spec.add_containers());
      }
    }
    if (const Entry* e = Find(top, "links")) ReadLinks(*e);
    if (const Entry* e = Find(top, "policy")) ReadPolicy(*e);
    CheckReferences();
  }

  // links: a list of {endpoints: [two ends], mtu}; an end is "member:interface" or a map
  // {container, interface, addresses, mtu, egress_rate, egress_burst}.
  void ReadLinks(const Entry& e) {
    Record("spec.links", *e.key);
    const std::vector<const YamlNode*> items =
        MapItems(e, "links", "links", "{endpoints: [r1:eth1, r2:eth1]}");
    for (size_t i = 0; i < items.size(); ++i) {
      if (items[i] == nullptr) continue;
      const YamlNode& item = *items[i];
      const std::string path = At("spec.links", i);
      const std::string name = At("links", i);
      Record(path, item);
      v1::Link* link = result_.spec.add_links();
      const KeySet keys{name, {"endpoints", "mtu"}, {}};
      std::vector<Entry> fields = Entries(item, keys);
      if (const Entry* mtu = Find(fields, "mtu")) {
        if (auto v = Mtu(*mtu)) {
          link->set_mtu(*v);
          Record(Dot(path, "mtu"), *mtu->value);
        }
      }
      const Entry* endpoints = Find(fields, "endpoints");
      if (endpoints == nullptr) {
        Error(item, absl::StrCat(name,
                                 ": has no endpoints; give the two ends (endpoints: "
                                 "[r1:eth1, r2:eth1])"));
        continue;
      }
      Record(Dot(path, "endpoints"), *endpoints->key);
      const std::vector<const YamlNode*> ends =
          ItemsOf(*endpoints, "two ends such as r1:eth1", false);
      for (size_t k = 0; k < ends.size(); ++k) {
        ReadLinkEnd(*ends[k], Dot(name, At("endpoints", k)), At(Dot(path, "endpoints"), k),
                    link->add_endpoints());
      }
    }
  }

  // "allow" (true) or "deny" (false); anything else is reported as not being `what`.
  std::optional<bool> AllowOrDeny(const Entry& e, absl::string_view name, absl::string_view what) {
    std::optional<std::string> text = Text(e, "write allow or deny");
    if (!text) return std::nullopt;
    if (*text == "allow" || *text == "deny") return *text == "allow";
    Error(*e.value,
          absl::StrCat(name, ": ", Quote(*text), " is not ", what, "; write allow or deny"));
    return std::nullopt;
  }

  // policy: {default: allow|deny, rules: [{action, from, to, ports, description}]}.
  void ReadPolicy(const Entry& e) {
    Record("spec.policy", *e.key);
    const YamlNode* map = MapOf(e, "default and rules");
    if (map == nullptr) return;
    v1::Policy* policy = result_.spec.mutable_policy();
    std::vector<Entry> fields = Entries(*map, KeySet{"policy", {"default", "rules"}, {}});
    if (const Entry* d = Find(fields, "default")) {
      if (std::optional<bool> allow = AllowOrDeny(*d, "policy.default", "a default")) {
        policy->set_default_action(*allow ? v1::Policy::DEFAULT_ALLOW : v1::Policy::DEFAULT_DENY);
        Record("spec.policy.default_action", *d->value);
      }
    }
    const Entry* rules = Find(fields, "rules");
    if (rules == nullptr) return;
    Record("spec.policy.rules", *rules->key);
    const std::vector<const YamlNode*> items = MapItems(
        *rules, "policy.rules", "rules", "{action: allow, from: web, to: app, ports: tcp/80}");
    for (size_t i = 0; i < items.size(); ++i) {
      if (items[i] == nullptr) continue;
      const YamlNode& item = *items[i];
      const std::string name = At("policy.rules", i);
      const std::string path = At("spec.policy.rules", i);
      Record(path, item);
      v1::PolicyRule* rule = policy->add_rules();
      std::vector<Entry> keys =
          Entries(item, KeySet{name, {"action", "from", "to", "ports", "description"}, {}});
      if (const Entry* a = Find(keys, "action")) {
        if (std::optional<bool> allow = AllowOrDeny(*a, Dot(name, "action"), "an action")) {
          rule->set_action(*allow ? v1::PolicyRule::ACTION_ALLOW : v1::PolicyRule::ACTION_DENY);
          Record(Dot(path, "action"), *a->value);
        }
      } else {
        Error(item, absl::StrCat(name, ": has no action; add action: allow (or deny)"));
      }
      for (const char* list : {"from", "to", "ports"}) {
        const Entry* f = Find(keys, list);
        if (f == nullptr) continue;
        Record(Dot(path, list), *f->key);
        auto* out = std::string(list) == "from" ? rule->mutable_from()
                    : std::string(list) == "to" ? rule->mutable_to()
                                                : rule->mutable_ports();
        for (const auto& [text, node] : Strings(*f, "names such as web, or a list of them", true)) {
          Record(At(Dot(path, list), out->size()), *node);
          *out->Add() = text;
        }
      }
      if (const Entry* d = Find(keys, "description")) {
        if (auto text = Text(*d, "give a short text")) {
          rule->set_description(*text);
          Record(Dot(path, "description"), *d->value);
        }
      }
    }
  }

  void ReadLinkEnd(const YamlNode& node, const std::string& name, const std::string& path,
                   v1::LinkEndpoint* end) {
    Record(path, node);
    if (node.kind == Kind::kScalar) {
      const size_t colon = node.value.find(':');
      if (colon == std::string::npos || colon == 0 || colon + 1 == node.value.size()) {
        Error(node, absl::StrCat(name, ": ", Quote(node.value),
                                 " is not member:interface; write it as r1:eth1"));
        return;
      }
      end->set_container(node.value.substr(0, colon));
      end->set_interface(node.value.substr(colon + 1));
      Record(Dot(path, "container"), node);
      Record(Dot(path, "interface"), node);
      link_refs_.push_back(Reference{end->container(), &node, name});
      return;
    }
    if (node.kind != Kind::kMap) {
      Error(node, absl::StrCat(name,
                               ": must be member:interface or a map (container, interface, "
                               "addresses, ...), not ",
                               Article(node)));
      return;
    }
    const KeySet keys{name,
                      {"container", "interface", "addresses", "mtu", "egress_rate", "egress_burst"},
                      {{"node", "is containerlab's name for it; write container:"}}};
    std::vector<Entry> fields = Entries(node, keys);
    if (const Entry* c = Find(fields, "container")) {
      if (auto text = Text(*c, "give the member's name, such as r1")) {
        end->set_container(*text);
        Record(Dot(path, "container"), *c->value);
        link_refs_.push_back(Reference{*text, c->value, c->name});
      }
    } else {
      Error(node, absl::StrCat(name, ": has no container; give the member (container: r1)"));
    }
    if (const Entry* i = Find(fields, "interface")) {
      if (auto text = Text(*i, "give the interface's name, such as eth1")) {
        end->set_interface(*text);
        Record(Dot(path, "interface"), *i->value);
      }
    } else {
      Error(node, absl::StrCat(name, ": has no interface; give its name inside (interface: eth1)"));
    }
    if (const Entry* a = Find(fields, "addresses")) {
      Record(Dot(path, "addresses"), *a->key);
      for (const auto& [text, at] : Strings(*a, "addresses such as 10.0.12.1/30", true)) {
        Record(At(Dot(path, "addresses"), end->addresses_size()), *at);
        end->add_addresses(text);
      }
    }
    if (const Entry* mtu = Find(fields, "mtu")) {
      if (auto v = Mtu(*mtu)) {
        end->set_mtu(*v);
        Record(Dot(path, "mtu"), *mtu->value);
      }
    }
    ReadEgress(fields, path, end);
  }

  // egress_rate and egress_burst among `fields`, into the attachment or link end at `path`.
  template <typename M>
  void ReadEgress(const std::vector<Entry>& fields, const std::string& path, M* m) {
    if (const Entry* rate = Find(fields, "egress_rate")) {
      if (auto bps =
              Parsed<uint64_t>(*rate, "write a rate such as 10mbit",
                               [](absl::string_view t) { return ParseRate(t, kMaxInt64); })) {
        m->set_egress_rate_bps(*bps);
        Record(Dot(path, "egress_rate_bps"), *rate->value);
      }
    }
    if (const Entry* burst = Find(fields, "egress_burst")) {
      if (auto bytes =
              Parsed<uint64_t>(*burst, "write a size such as 64k",
                               [](absl::string_view t) { return ParseSize(t, kMaxInt64); })) {
        m->set_egress_burst_bytes(*bytes);
        Record(Dot(path, "egress_burst_bytes"), *burst->value);
      }
    }
  }

  // An MTU in bytes (the API checks the range).
  std::optional<uint32_t> Mtu(const Entry& e) {
    std::optional<uint64_t> mtu =
        Parsed<uint64_t>(e, "give the MTU in bytes, such as 1500",
                         [](absl::string_view t) { return ParseWholeNumber(t, kMaxUint32); });
    if (!mtu) return std::nullopt;
    return static_cast<uint32_t>(*mtu);
  }

  void ReadLabels(const Entry& e, const std::string& path, v1::Labels* labels) {
    Record(path, *e.key);
    auto add = [&](const std::string& key, const std::string& value, const YamlNode& at) {
      if (!labels->mutable_labels()->emplace(key, value).second) {
        Error(at, absl::StrCat(e.name, ": label ", Quote(key), " is set twice; keep one"));
        return;
      }
      Record(LabelPath(path, key), at);
    };
    if (e.value->kind == Kind::kList) {
      for (const auto& [text, node] : Strings(e, "labels as key=value", false)) {
        const size_t eq = text.find('=');
        if (eq == std::string::npos) {
          Error(*node, absl::StrCat(e.name, ": ", Quote(text),
                                    " is not key=value; write it as app=web, or make labels a "
                                    "map"));
          continue;
        }
        add(text.substr(0, eq), text.substr(eq + 1), *node);
      }
      return;
    }
    const YamlNode* map = MapOf(e, "label keys to values, or a list of key=value");
    if (map == nullptr) return;
    for (const Entry& label : Entries(*map, KeySet{absl::StrCat(e.name), {}, {}})) {
      std::string value;
      if (label.value->kind != Kind::kNull) {
        std::optional<std::string> text = Text(label, "give the label's value as a string");
        if (!text) continue;
        value = *std::move(text);
      }
      add(label.name, value, *label.key);
    }
  }

  // --- Networks ---

  void ReadNetwork(const Entry& e, v1::NetworkSpec* network) {
    const int index = result_.spec.networks_size() - 1;
    const std::string path = At("spec.networks", index);
    network->set_name(e.name);
    network_names_.push_back(e.name);
    Record(path, *e.key);
    Record(Dot(path, "name"), *e.key);
    if (e.value->kind == Kind::kNull) return;  // every default
    if (e.value->kind != Kind::kMap) {
      Error(*e.value, absl::StrCat("network ", Quote(e.name),
                                   " must be a map (subnet, gateway, nat, internal, mtu, "
                                   "labels) or empty, not ",
                                   Article(*e.value)));
      return;
    }
    for (const Entry& f : Entries(*e.value, NetworkKeys(e.name))) {
      if (f.name == "subnet") {
        if (auto text = Text(f, "give an IPv4 CIDR such as 10.89.0.0/24")) {
          network->set_subnet(*text);
          Record(Dot(path, "subnet"), *f.value);
        }
      } else if (f.name == "gateway") {
        if (auto text = Text(f, "give an IPv4 address of the subnet")) {
          network->set_gateway(*text);
          Record(Dot(path, "gateway"), *f.value);
        }
      } else if (f.name == "nat") {
        if (auto nat = Bool(f)) {
          network->set_disable_nat(!*nat);
          Record(Dot(path, "disable_nat"), *f.value);
        }
      } else if (f.name == "internal") {
        if (auto internal = Bool(f)) {
          network->set_internal(*internal);
          Record(Dot(path, "internal"), *f.value);
        }
      } else if (f.name == "mtu") {
        if (auto mtu = Mtu(f)) {
          network->set_mtu(*mtu);
          Record(Dot(path, "mtu"), *f.value);
        }
      } else if (f.name == "labels") {
        ReadLabels(f, Dot(path, "labels"), network->mutable_labels());
      }
    }
  }

  // --- Containers ---

  void ReadContainer(const Entry& e, v1::GroupContainer* member) {
    const int index = result_.spec.containers_size() - 1;
    const std::string at = At("spec.containers", index);
    const std::string path = Dot(at, "spec");
    v1::ContainerSpec* c = member->mutable_spec();
    c->set_name(e.name);
    Record(at, *e.key);
    Record(path, *e.key);
    Record(Dot(path, "name"), *e.key);
    MemberRefs& refs = members_.emplace_back();
    refs.name = e.name;
    refs.key = e.key;
    const std::string what = absl::StrCat("container ", Quote(e.name));
    if (e.value->kind != Kind::kMap) {
      if (e.value->kind == Kind::kNull) {
        Error(*e.key, absl::StrCat(what, " is empty; give it at least an image (image: busybox)"));
      } else {
        Error(*e.value,
              absl::StrCat(what, " must be a map (image, command, ...), not ", Article(*e.value)));
      }
      return;
    }
    std::vector<Entry> fields = Entries(*e.value, ContainerKeys(e.name));
    if (Find(fields, "image") == nullptr) {
      Error(*e.key, absl::StrCat(what, " has no image; add one (image: busybox)"));
    }
    std::map<std::string, EnvValue> env;  // after env files, then environment
    std::vector<std::string> env_order;
    const YamlNode* env_key = nullptr;
    // env_file first: environment overrides it, wherever the two keys are.
    if (const Entry* f = Find(fields, "env_file")) {
      env_key = f->key;
      ReadEnvFiles(*f, env, env_order);
    }
    for (const Entry& f : fields) {
      const std::string& k = f.name;
      if (k == "image") {
        if (auto text = Text(f, "name an image of the store, such as busybox")) {
          c->set_image(*text);
          Record(Dot(path, "image"), *f.value);
        }
      } else if (k == "command") {
        ReadCommand(f, Dot(path, "args"), c->mutable_args());
      } else if (k == "entrypoint") {
        ReadCommand(f, Dot(path, "entrypoint"), c->mutable_entrypoint());
      } else if (k == "environment") {
        if (env_key == nullptr || f.key->line < env_key->line) env_key = f.key;
        ReadEnvironment(f, env, env_order);
      } else if (k == "working_dir") {
        if (auto text = Text(f, "give an absolute path such as /app")) {
          c->set_working_dir(*text);
          Record(Dot(path, "working_dir"), *f.value);
        }
      } else if (k == "user") {
        if (auto text = Text(f, "give uid[:gid] or name[:group], such as 1000:1000")) {
          c->set_user(*text);
          Record(Dot(path, "user"), *f.value);
        }
      } else if (k == "hostname") {
        if (auto text = Text(f, "give a host name, or leave the key out for the member's")) {
          c->set_hostname(*text);
          Record(Dot(path, "hostname"), *f.value);
        }
      } else if (k == "networks") {
        ReadAttachments(f, path, c, refs);
      } else if (k == "network_mode") {
        ReadNetworkMode(f, path, c, refs);
      } else if (k == "ports") {
        ReadPorts(f, path, c);
      } else if (k == "volumes") {
        ReadVolumes(f, path, c);
      } else if (k == "sysctls") {
        ReadSysctls(f, path, c);
      } else if (k == "routes") {
        ReadRoutes(f, path, c);
      } else if (k == "tmpfs") {
        ReadTmpfs(f, path, c);
      } else if (k == "resources") {
        ReadResources(f, Dot(path, "resources"), c->mutable_resources());
      } else if (k == "restart") {
        if (auto policy = Parsed<v1::RestartPolicy>(
                f, "write no, on-failure[:N], always or unless-stopped", ParseRestartPolicy)) {
          *c->mutable_restart() = *policy;
          Record(Dot(path, "restart"), *f.value);
          Record(Dot(path, "restart.mode"), *f.value);
          Record(Dot(path, "restart.max_retries"), *f.value);
        }
      } else if (k == "healthcheck") {
        ReadHealthCheck(f, Dot(path, "health_check"), c);
      } else if (k == "depends_on") {
        ReadDependsOn(f, at, member, refs);
      } else if (k == "init" || k == "privileged" || k == "read_only" || k == "tty") {
        if (auto value = Bool(f)) {
          if (k == "init") c->set_init(*value);
          if (k == "privileged") c->set_privileged(*value);
          if (k == "read_only") c->set_read_only_root(*value);
          if (k == "tty") c->set_tty(*value);
          Record(Dot(path, k == "read_only" ? "read_only_root" : k), *f.value);
        }
      } else if (k == "cap_add" || k == "cap_drop") {
        auto* caps = k == "cap_add" ? c->mutable_cap_add() : c->mutable_cap_drop();
        Record(Dot(path, k), *f.key);
        for (const auto& [name, node] : Strings(f, "capability names such as NET_ADMIN", false)) {
          Record(At(Dot(path, k), caps->size()), *node);
          caps->Add(std::string(name));
        }
      } else if (k == "labels") {
        ReadLabels(f, Dot(path, "labels"), c->mutable_labels());
      } else if (k == "stop_grace_period") {
        if (auto d = Parsed<absl::Duration>(f, "give a duration such as 10s", ParseDurationText)) {
          *c->mutable_stop_timeout() = ToProtoDuration(*d);
          Record(Dot(path, "stop_timeout"), *f.value);
        }
      } else if (k == "logging") {
        ReadLogging(f, path, c);
      } else if (k == "userns_host_base") {
        if (auto base = Parsed<uint64_t>(
                f, "give the first host uid of the mapping",
                [](absl::string_view t) { return ParseWholeNumber(t, kMaxUint32); })) {
          c->set_userns_host_base(static_cast<uint32_t>(*base));
          Record(Dot(path, "userns_host_base"), *f.value);
        }
      }
    }
    if (env_key != nullptr) {
      const std::string env_path = Dot(path, "env");
      Record(env_path, *env_key);
      for (const std::string& name : env_order) {
        const EnvValue& v = env[name];
        result_.sources.Add(At(env_path, c->env_size()), v.position);
        c->add_env(absl::StrCat(name, "=", v.value));
      }
    }
  }

  void ReadCommand(const Entry& f, const std::string& path,
                   google::protobuf::RepeatedPtrField<std::string>* argv) {
    Record(path, *f.value);
    if (f.value->kind == Kind::kScalar) {
      absl::StatusOr<std::vector<std::string>> words = SplitCommandLine(f.value->value);
      if (!words.ok()) {
        Error(*f.value, absl::StrCat(f.name, ": ", words.status().message()));
        return;
      }
      if (words->empty()) {
        Error(*f.value, absl::StrCat(f.name,
                                     ": is empty; give the program and its arguments, "
                                     "or leave the key out for the image's"));
        return;
      }
      for (std::string& word : *words) {
        Record(At(path, argv->size()), *f.value);
        argv->Add(std::move(word));
      }
      return;
    }
    for (const auto& [word, node] :
         Strings(f, "the program and its arguments, such as [sleep, \"60\"]", false)) {
      Record(At(path, argv->size()), *node);
      argv->Add(std::string(word));
    }
  }

  void SetEnv(const std::string& name, std::string value, SourcePosition position,
              std::map<std::string, EnvValue>& env, std::vector<std::string>& order) {
    auto [it, added] = env.try_emplace(name);
    if (added) order.push_back(name);
    it->second = EnvValue{std::move(value), std::move(position)};
  }

  void ReadEnvironment(const Entry& f, std::map<std::string, EnvValue>& env,
                       std::vector<std::string>& order) {
    std::map<std::string, int> here;  // name -> line, within this key
    auto set = [&](const std::string& name, std::string value, const YamlNode& at) {
      if (auto [it, added] = here.emplace(name, at.line); !added) {
        Error(at, absl::StrCat(f.name, ": ", Quote(name), " is set twice (first at line ",
                               it->second, "); keep one"));
        return;
      }
      SetEnv(name, std::move(value), PositionOf(at), env, order);
    };
    if (f.value->kind == Kind::kList) {
      for (const auto& [text, node] : Strings(f, "KEY=VALUE strings", false)) {
        const size_t eq = text.find('=');
        if (eq == std::string::npos || eq == 0) {
          Error(*node, absl::StrCat(f.name, ": ", Quote(text),
                                    " is not KEY=VALUE; write it as NAME=value (NAME= for an "
                                    "empty value)"));
          continue;
        }
        set(text.substr(0, eq), text.substr(eq + 1), *node);
      }
      return;
    }
    const YamlNode* map = MapOf(f, "names to values, or a list of KEY=VALUE");
    if (map == nullptr) return;
    for (const Entry& v : Entries(*map, KeySet{"environment", {}, {}})) {
      if (v.name.empty()) {
        Error(*v.key, absl::StrCat(f.name, ": a variable needs a name"));
        continue;
      }
      if (v.value->kind == Kind::kNull) {
        Error(*v.key, absl::StrCat(f.name, ": ", Quote(v.name),
                                   " has no value; write \"\" for an empty one (values are "
                                   "not taken from meshctl's environment)"));
        continue;
      }
      if (auto text = Text(v, "give the value as a string")) set(v.name, *text, *v.key);
    }
  }

  // KEY=VALUE lines; blank lines and lines starting with '#' are skipped; a value in matching
  // single or double quotes loses them (nothing else is interpreted).
  void ReadEnvFiles(const Entry& f, std::map<std::string, EnvValue>& env,
                    std::vector<std::string>& order) {
    for (const auto& item : Strings(f, "env file paths", true)) {
      // Not a structured binding: the lambda below uses it (clang 14 cannot capture those).
      const std::string& name = item.first;
      const YamlNode* node = item.second;
      const std::string path = Resolve(name);
      absl::StatusOr<std::string> text =
          ReadFileBounded(path, limits_.max_env_file_bytes, /*regular_only=*/true);
      if (!text.ok()) {
        Error(*node, absl::StrCat(f.name, ": ", text.status().message()));
        continue;
      }
      int line_number = 0;
      for (absl::string_view line : absl::StrSplit(*text, '\n')) {
        ++line_number;
        absl::ConsumeSuffix(&line, "\r");
        absl::string_view content = absl::StripLeadingAsciiWhitespace(line);
        if (content.empty() || content[0] == '#') continue;
        auto problem = [&](absl::string_view message) {
          AddProblem(node->line, node->column,
                     absl::StrCat(path, ":", line_number, ":", line.size() - content.size() + 1,
                                  ": ", message, " (read for env_file at ", file_, ":", node->line,
                                  ":", node->column, ")"));
        };
        const size_t eq = content.find('=');
        const absl::string_view key = content.substr(0, std::min(eq, content.size()));
        if (eq == absl::string_view::npos || key.empty() ||
            key.find_first_of(" \t") != absl::string_view::npos) {
          problem(absl::StrCat(Quote(content),
                               " is not KEY=VALUE; write NAME=value, or start the line with # "
                               "for a comment"));
          continue;
        }
        absl::string_view value = content.substr(eq + 1);
        if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
            value.back() == value.front()) {
          value = value.substr(1, value.size() - 2);
        }
        SetEnv(
            std::string(key), std::string(value),
            SourcePosition{path, line_number, static_cast<int>(line.size() - content.size()) + 1},
            env, order);
      }
    }
  }

  // A path of the spec's machine: absolute as given, relative against the spec's directory.
  std::string Resolve(absl::string_view path) const {  // env files
    if (!path.empty() && path[0] == '/') return std::string(path);
    std::string out =
        (std::filesystem::path(base_dir_) / std::string(path)).lexically_normal().string();
    if (out.size() > 1 && out.back() == '/') out.pop_back();
    return out;
  }

  void ReadAttachments(const Entry& f, const std::string& path, v1::ContainerSpec* c,
                       MemberRefs& refs) {
    const std::string list = Dot(path, "networks");
    Record(list, *f.key);
    auto attach = [&](const std::string& name, const YamlNode& at) -> v1::NetworkAttachment* {
      for (const Reference& r : refs.networks) {
        if (r.name == name) {
          Error(at, absl::StrCat(f.name, ": network ", Quote(name),
                                 " is listed twice (first "
                                 "at line ",
                                 r.node->line, "); list each network once"));
          return nullptr;
        }
      }
      const std::string item = At(list, c->networks_size());
      Record(item, at);
      Record(Dot(item, "network"), at);
      refs.networks.push_back(Reference{name, &at, f.name});
      v1::NetworkAttachment* a = c->add_networks();
      a->set_network(name);
      return a;
    };
    if (f.value->kind == Kind::kList) {
      for (const auto& [name, node] : Strings(f, "network names", false)) attach(name, *node);
      return;
    }
    const YamlNode* map = MapOf(f, "network names to {ipv4_address, aliases}, or a list of names");
    if (map == nullptr) return;
    for (const Entry& n : Entries(*map, KeySet{"networks", {}, {}})) {
      v1::NetworkAttachment* a = attach(n.name, *n.key);
      if (a == nullptr || n.value->kind == Kind::kNull) continue;
      if (n.value->kind != Kind::kMap) {
        Error(*n.value, absl::StrCat("network ", Quote(n.name), " of ", refs.name,
                                     " must be a map (ipv4_address, aliases) or empty, not ",
                                     Article(*n.value)));
        continue;
      }
      const std::string item = At(list, c->networks_size() - 1);
      const KeySet keys{absl::StrCat("network ", Quote(n.name), " of container ", Quote(refs.name)),
                        {"ipv4_address", "address", "aliases", "egress_rate", "egress_burst"},
                        {}};
      std::vector<Entry> fields = Entries(*n.value, keys);
      const Entry* v4 = Find(fields, "ipv4_address");
      const Entry* address = Find(fields, "address");
      if (v4 != nullptr && address != nullptr) {
        Error(*address->key,
              "address: is another name of ipv4_address, which is set too; keep "
              "one");
      }
      if (const Entry* ip = v4 != nullptr ? v4 : address) {
        if (auto text = Text(*ip, "give an IPv4 address of the network's subnet")) {
          a->set_ip(*text);
          Record(Dot(item, "ip"), *ip->value);
        }
      }
      ReadEgress(fields, item, a);
      if (const Entry* aliases = Find(fields, "aliases")) {
        Record(Dot(item, "aliases"), *aliases->key);
        for (const auto& [alias, node] : Strings(*aliases, "DNS names", false)) {
          Record(At(Dot(item, "aliases"), a->aliases_size()), *node);
          a->add_aliases(alias);
        }
      }
    }
  }

  void ReadNetworkMode(const Entry& f, const std::string& path, v1::ContainerSpec* c,
                       MemberRefs& refs) {
    auto text = Text(f, "write container:<member> to share a member's network namespace");
    if (!text) return;
    absl::string_view target = *text;
    if (!absl::ConsumePrefix(&target, "container:") || target.empty()) {
      Error(*f.value, absl::StrCat(f.name, ": ", Quote(*text),
                                   " is not supported; write container:<member> to share the "
                                   "network namespace of another member, or list networks "
                                   "under networks:"));
      return;
    }
    c->set_network_from(std::string(target));
    Record(Dot(path, "network_from"), *f.value);
    refs.network_from = Reference{std::string(target), f.value, f.name};
  }

  void ReadPorts(const Entry& f, const std::string& path, v1::ContainerSpec* c) {
    const std::string list = Dot(path, "ports");
    Record(list, *f.key);
    const auto items = Strings(f, "port mappings such as \"8080:80\"", false);
    for (size_t i = 0; i < items.size(); ++i) {
      const auto& [text, node] = items[i];
      absl::StatusOr<v1::PortMapping> port = ParsePortMapping(text);
      if (!port.ok()) {
        Error(*node, absl::StrCat(f.name, ": ", port.status().message()));
        continue;
      }
      const std::string item = At(list, c->ports_size());
      for (const char* field : {"", ".protocol", ".host_ip", ".host_port", ".container_port"}) {
        Record(absl::StrCat(item, field), *node);
      }
      *c->add_ports() = *std::move(port);
    }
  }

  void ReadRoutes(const Entry& f, const std::string& path, v1::ContainerSpec* c) {
    const std::string list = Dot(path, "routes");
    Record(list, *f.key);
    const auto items = Strings(f, "routes such as \"10.77.2.0/24 via 10.77.1.254\"", false);
    for (const auto& [text, node] : items) {
      absl::StatusOr<v1::Route> route = ParseRoute(text);
      if (!route.ok()) {
        Error(*node, absl::StrCat(f.name, ": ", route.status().message()));
        continue;
      }
      const std::string item = At(list, c->routes_size());
      for (const char* field : {"", ".destination", ".via"}) {
        Record(absl::StrCat(item, field), *node);
      }
      *c->add_routes() = *std::move(route);
    }
  }

  void RecordMount(const std::string& path, int index, const YamlNode& at) {
    const std::string item = At(Dot(path, "mounts"), index);
    for (const char* field : {"", ".type", ".source", ".destination", ".read_only"}) {
      Record(absl::StrCat(item, field), at);
    }
  }

  void ReadVolumes(const Entry& f, const std::string& path, v1::ContainerSpec* c) {
    Record(Dot(path, "mounts"), *f.key);
    for (const auto& item : Strings(f, "bind mounts such as ./data:/data", false)) {
      absl::StatusOr<v1::Mount> mount = ParseBindMount(item.first, base_dir_);
      if (!mount.ok()) {
        Error(*item.second, absl::StrCat(f.name, ": ", mount.status().message()));
        continue;
      }
      RecordMount(path, c->mounts_size(), *item.second);
      *c->add_mounts() = *std::move(mount);
    }
  }

  void ReadTmpfs(const Entry& f, const std::string& path, v1::ContainerSpec* c) {
    if (!result_.sources.Find(Dot(path, "mounts"))) Record(Dot(path, "mounts"), *f.key);
    auto add = [&](const std::string& destination, const YamlNode& at) -> v1::Mount* {
      if (destination.find(':') != std::string::npos) {
        Error(at, absl::StrCat(f.name, ": ", Quote(destination),
                               " has a ':'; give only the destination, and a size in the map "
                               "form (tmpfs: {/run: {size: 64m}})"));
        return nullptr;
      }
      RecordMount(path, c->mounts_size(), at);
      v1::Mount* m = c->add_mounts();
      m->set_type(v1::Mount::TYPE_TMPFS);
      m->set_destination(destination);
      return m;
    };
    if (f.value->kind == Kind::kList) {
      for (const auto& [destination, node] : Strings(f, "destinations such as /run", false)) {
        add(destination, *node);
      }
      return;
    }
    const YamlNode* map = MapOf(f, "destinations to {size}, or a list of destinations");
    if (map == nullptr) return;
    for (const Entry& t : Entries(*map, KeySet{"tmpfs", {}, {}})) {
      v1::Mount* m = add(t.name, *t.key);
      if (m == nullptr || t.value->kind == Kind::kNull) continue;
      if (t.value->kind != Kind::kMap) {
        Error(*t.value, absl::StrCat("tmpfs ", Quote(t.name),
                                     " must be a map (size) or "
                                     "empty, not ",
                                     Article(*t.value)));
        continue;
      }
      const KeySet keys{absl::StrCat("tmpfs ", Quote(t.name)), {"size"}, {}};
      for (const Entry& s : Entries(*t.value, keys)) {
        if (auto size = Parsed<uint64_t>(s, "give a size such as 64m", [](absl::string_view x) {
              return ParseSize(x, std::numeric_limits<uint64_t>::max());
            })) {
          m->set_tmpfs_size_bytes(*size);
          Record(At(Dot(path, "mounts"), c->mounts_size() - 1) + ".tmpfs_size_bytes", *s.value);
        }
      }
    }
  }

  void ReadResources(const Entry& f, const std::string& path, v1::Resources* r) {
    const YamlNode* map = MapOf(f, "limits (memory, cpus, pids)");
    if (map == nullptr) return;
    Record(path, *f.key);
    const KeySet keys{"resources", {"memory", "cpus", "pids"}, {}};
    for (const Entry& e : Entries(*map, keys)) {
      if (e.name == "memory") {
        if (auto bytes = Parsed<uint64_t>(e, "give a size such as 512m", [](absl::string_view t) {
              return ParseSize(t, kMaxInt64);
            })) {
          r->set_memory_bytes(static_cast<int64_t>(*bytes));
          Record(Dot(path, "memory_bytes"), *e.value);
        }
      } else if (e.name == "cpus") {
        if (auto cpus = Parsed<double>(e, "give a number of CPUs such as 0.5", ParseCpus)) {
          r->set_cpus(*cpus);
          Record(Dot(path, "cpus"), *e.value);
        }
      } else if (e.name == "pids") {
        if (auto pids = Parsed<uint64_t>(
                e, "give the most processes, such as 100",
                [](absl::string_view t) { return ParseWholeNumber(t, kMaxInt64); })) {
          r->set_pids(static_cast<int64_t>(*pids));
          Record(Dot(path, "pids"), *e.value);
        }
      }
    }
  }

  void ReadHealthCheck(const Entry& f, const std::string& path, v1::ContainerSpec* c) {
    const YamlNode* map = MapOf(f, "test, interval, timeout, retries and start_period");
    if (map == nullptr) return;
    const KeySet keys{absl::StrCat("healthcheck of ", Quote(c->name())),
                      {"test", "interval", "timeout", "retries", "start_period"},
                      {}};
    std::vector<Entry> fields = Entries(*map, keys);
    v1::HealthCheck check;
    bool disabled = false;
    const Entry* test = Find(fields, "test");
    if (test == nullptr) {
      Error(*f.key,
            "healthcheck: has no test; give the command to run, such as test: [CMD, "
            "wget, -q, -O-, http://localhost/] (exit code 0 is healthy)");
    } else {
      disabled = ReadHealthTest(*test, Dot(path, "command"), check);
    }
    for (const Entry& e : fields) {
      google::protobuf::Duration* d = nullptr;
      if (e.name == "interval") d = check.mutable_interval();
      if (e.name == "timeout") d = check.mutable_timeout();
      if (e.name == "start_period") d = check.mutable_start_period();
      if (d != nullptr) {
        if (auto value =
                Parsed<absl::Duration>(e, "give a duration such as 30s", ParseDurationText)) {
          *d = ToProtoDuration(*value);
          Record(Dot(path, e.name), *e.value);
        }
      } else if (e.name == "retries") {
        if (auto n = Parsed<uint64_t>(
                e, "give a number of failures such as 3",
                [](absl::string_view t) { return ParseWholeNumber(t, kMaxUint32); })) {
          check.set_retries(static_cast<uint32_t>(*n));
          Record(Dot(path, "retries"), *e.value);
        }
      }
    }
    if (disabled) return;
    Record(path, *f.key);
    *c->mutable_health_check() = std::move(check);
  }

  // A health check's test: a string runs in a shell (Compose's CMD-SHELL); a list is [CMD,
  // program, args...], [CMD-SHELL, "command line"], [NONE] (no health check: returns true) or
  // the program and its arguments.
  bool ReadHealthTest(const Entry& test, const std::string& command, v1::HealthCheck& check) {
    constexpr absl::string_view kHint =
        "give the command as a list ([CMD, program, args...]) or a shell command line";
    Record(command, *test.value);
    auto shell = [&](const std::string& line) {
      for (std::string word : {"/bin/sh", "-c"}) check.add_command(std::move(word));
      check.add_command(line);
      for (int k = 0; k < 3; ++k) Record(At(command, k), *test.value);
    };
    if (test.value->kind == Kind::kScalar) {
      shell(test.value->value);
      return false;
    }
    if (test.value->kind != Kind::kList) {
      Text(test, kHint);  // reports the kind
      return false;
    }
    const auto words = Strings(test, "the command and its arguments", false);
    if (words.size() != test.value->items.size()) return false;  // reported
    absl::string_view first = words.empty() ? absl::string_view() : words[0].first;
    if (first == "NONE") return true;
    const size_t skip = first == "CMD" || first == "CMD-SHELL" ? 1 : 0;
    if (words.size() == skip) {
      Error(*test.value, absl::StrCat(test.name, ": has no command; ", kHint,
                                      ", or [NONE] for no health check"));
      return false;
    }
    if (first == "CMD-SHELL") {
      std::vector<absl::string_view> rest;
      for (size_t k = 1; k < words.size(); ++k) rest.push_back(words[k].first);
      shell(absl::StrJoin(rest, " "));
      return false;
    }
    for (size_t k = skip; k < words.size(); ++k) {
      Record(At(command, check.command_size()), *words[k].second);
      check.add_command(words[k].first);
    }
    return false;
  }

  void ReadDependsOn(const Entry& f, const std::string& at, v1::GroupContainer* member,
                     MemberRefs& refs) {
    const std::string list = Dot(at, "depends_on");
    Record(list, *f.key);
    auto add = [&](const std::string& name, const YamlNode& node) -> v1::Dependency* {
      for (const Reference& r : refs.depends_on) {
        if (r.name == name) {
          Error(node, absl::StrCat(f.name, ": ", Quote(name),
                                   " is listed twice (first at "
                                   "line ",
                                   r.node->line, "); list each dependency once"));
          return nullptr;
        }
      }
      const std::string item = At(list, member->depends_on_size());
      Record(item, node);
      Record(Dot(item, "container"), node);
      refs.depends_on.push_back(Reference{name, &node, At(f.name, member->depends_on_size())});
      v1::Dependency* d = member->add_depends_on();
      d->set_container(name);
      d->set_condition(v1::Dependency::CONDITION_STARTED);
      return d;
    };
    if (f.value->kind == Kind::kList) {
      for (const auto& [name, node] : Strings(f, "member names", false)) add(name, *node);
      return;
    }
    const YamlNode* map = MapOf(f, "member names to {condition}, or a list of member names");
    if (map == nullptr) return;
    for (const Entry& d : Entries(*map, KeySet{"depends_on", {}, {}})) {
      v1::Dependency* dependency = add(d.name, *d.key);
      if (dependency == nullptr || d.value->kind == Kind::kNull) continue;
      if (d.value->kind != Kind::kMap) {
        Error(*d.value,
              absl::StrCat("depends_on ", Quote(d.name),
                           " must be a map (condition) or empty, not ", Article(*d.value)));
        continue;
      }
      const KeySet keys{absl::StrCat("depends_on ", Quote(d.name)), {"condition"}, {}};
      for (const Entry& e : Entries(*d.value, keys)) {
        auto text = Text(e, "write started, healthy or completed_successfully");
        if (!text) continue;
        absl::string_view condition = *text;
        // Compose's spellings: service_started, service_healthy, ...
        absl::ConsumePrefix(&condition, "service_");
        if (condition == "started") {
          dependency->set_condition(v1::Dependency::CONDITION_STARTED);
        } else if (condition == "healthy") {
          dependency->set_condition(v1::Dependency::CONDITION_HEALTHY);
        } else if (condition == "completed_successfully") {
          dependency->set_condition(v1::Dependency::CONDITION_EXITED_OK);
        } else {
          std::string hint = "use started, healthy or completed_successfully";
          if (auto near =
                  ClosestMatch(condition, {"started", "healthy", "completed_successfully"})) {
            hint = absl::StrCat("did you mean ", Quote(*near), "? (", hint, ")");
          }
          Error(*e.value, absl::StrCat(e.name, ": ", Quote(*text), " is not a condition; ", hint));
          continue;
        }
        Record(Dot(At(list, member->depends_on_size() - 1), "condition"), *e.value);
      }
    }
  }

  void ReadLogging(const Entry& f, const std::string& path, v1::ContainerSpec* c) {
    const YamlNode* map = MapOf(f, "log rotation (max_size, max_files)");
    if (map == nullptr) return;
    const KeySet keys{"logging", {"max_size", "max_files"}, {}};
    for (const Entry& e : Entries(*map, keys)) {
      if (e.name == "max_size") {
        if (auto bytes = Parsed<uint64_t>(e, "give a size such as 10m", [](absl::string_view t) {
              return ParseSize(t, std::numeric_limits<uint64_t>::max());
            })) {
          c->set_log_max_bytes(*bytes);
          Record(Dot(path, "log_max_bytes"), *e.value);
        }
      } else if (e.name == "max_files") {
        if (auto n = Parsed<uint64_t>(
                e, "give a number of files such as 3",
                [](absl::string_view t) { return ParseWholeNumber(t, kMaxUint32); })) {
          c->set_log_max_files(static_cast<uint32_t>(*n));
          Record(Dot(path, "log_max_files"), *e.value);
        }
      }
    }
  }

  // sysctls: a map of names to values, or a list of name=value. Names and values are meshd's
  // to judge (which namespaces they belong to); here only their form.
  void ReadSysctls(const Entry& f, const std::string& path, v1::ContainerSpec* c) {
    const std::string field = Dot(path, "sysctls");
    Record(field, *f.key);
    auto set = [&](const std::string& name, const std::string& value, const YamlNode& at) {
      (*c->mutable_sysctls())[name] = value;
      Record(absl::StrCat(field, "[", Quote(name), "]"), at);
    };
    if (f.value->kind == Kind::kList) {
      for (const auto& item : Strings(f, "name=value strings", false)) {
        const std::string& text = item.first;
        const size_t eq = text.find('=');
        if (eq == std::string::npos) {
          Error(*item.second, absl::StrCat(f.name, ": ", Quote(text),
                                           " is not name=value; write net.ipv4.ip_forward=1"));
          continue;
        }
        set(text.substr(0, eq), text.substr(eq + 1), *item.second);
      }
      return;
    }
    const YamlNode* map = MapOf(f, "sysctl names to values");
    if (map == nullptr) return;
    for (const Entry& s : Entries(*map, KeySet{"sysctls", {}, {}})) {
      if (std::optional<std::string> value = Text(s, "give the value, such as 1")) {
        set(s.name, *value, *s.key);
      }
    }
  }

  // --- References between members ---

  std::string DidYouMean(absl::string_view name, const std::vector<std::string>& known) {
    if (name.size() > kMaxSuggestedKeyLength) return "";
    if (auto near = ClosestMatch(name, known)) {
      return absl::StrCat(" (did you mean ", Quote(*near), "?)");
    }
    return "";
  }

  void CheckReferences() {
    std::vector<std::string> members;
    std::map<std::string, size_t> index;
    for (const MemberRefs& m : members_) {
      index.emplace(m.name, members.size());
      members.push_back(m.name);
    }
    // Edges of the dependency graph: member -> (member it waits for, where that is written).
    std::vector<std::vector<std::pair<size_t, const Reference*>>> edges(members_.size());
    for (size_t i = 0; i < members_.size(); ++i) {
      const MemberRefs& m = members_[i];
      for (const Reference& n : m.networks) {
        if (std::find(network_names_.begin(), network_names_.end(), n.name) ==
            network_names_.end()) {
          Error(*n.node, absl::StrCat(n.key, ": network ", Quote(n.name),
                                      " is not defined in this spec; add it under networks: at "
                                      "the top",
                                      DidYouMean(n.name, network_names_)));
        }
      }
      auto target = [&](const Reference& r,
                        absl::string_view self_message) -> std::optional<size_t> {
        if (r.name == m.name) {
          Error(*r.node, absl::StrCat(r.key, ": ", Quote(r.name), self_message));
          return std::nullopt;
        }
        auto it = index.find(r.name);
        if (it == index.end()) {
          Error(*r.node,
                absl::StrCat(r.key, ": ", Quote(r.name), " is not a container of this spec",
                             DidYouMean(r.name, members)));
          return std::nullopt;
        }
        return it->second;
      };
      for (const Reference& d : m.depends_on) {
        if (auto j = target(d, " is the container itself; a container cannot wait for itself")) {
          edges[i].emplace_back(*j, &d);
        }
      }
      if (m.network_from) {
        if (auto j = target(*m.network_from,
                            " is the container itself; name another member whose network "
                            "namespace to share")) {
          edges[i].emplace_back(*j, &*m.network_from);
        }
      }
    }
    for (const Reference& r : link_refs_) {
      if (!index.contains(r.name)) {
        Error(*r.node, absl::StrCat(r.key, ": ", Quote(r.name), " is not a container of this spec",
                                    DidYouMean(r.name, members)));
      }
    }
    ReportCycles(edges);
  }

  // Every cycle closed by a back edge of a depth-first search, reported at that edge.
  void ReportCycles(const std::vector<std::vector<std::pair<size_t, const Reference*>>>& edges) {
    enum class State { kNew, kOpen, kDone };
    std::vector<State> state(edges.size(), State::kNew);
    for (size_t root = 0; root < edges.size(); ++root) {
      if (state[root] != State::kNew) continue;
      std::vector<std::pair<size_t, size_t>> stack = {{root, 0}};  // node, next edge
      state[root] = State::kOpen;
      while (!stack.empty()) {
        auto& [node, next] = stack.back();
        if (next == edges[node].size()) {
          state[node] = State::kDone;
          stack.pop_back();
          continue;
        }
        const auto [to, reference] = edges[node][next++];
        if (state[to] == State::kNew) {
          state[to] = State::kOpen;
          stack.emplace_back(to, 0);
        } else if (state[to] == State::kOpen) {
          auto start = std::find_if(stack.begin(), stack.end(),
                                    [to = to](const auto& frame) { return frame.first == to; });
          std::vector<absl::string_view> names;
          constexpr size_t kMaxShown = 16;
          const size_t length = static_cast<size_t>(stack.end() - start);
          for (auto it = start; it != stack.end(); ++it) {
            const size_t k = static_cast<size_t>(it - start);
            if (length > kMaxShown && k == kMaxShown - 2) {
              names.push_back("...");
              it = stack.end() - 2;
              continue;
            }
            names.push_back(members_[it->first].name);
          }
          names.push_back(members_[to].name);
          Error(*reference->node,
                absl::StrCat(reference->key, ": dependency cycle ", absl::StrJoin(names, " -> "),
                             " (depends_on and network_mode); remove one of these dependencies"));
        }
      }
    }
  }

  const std::string file_;
  const std::string base_dir_;
  const SpecLimits& limits_;
  YamlNode::Ptr root_;
  LoadedSpec result_;
  std::vector<Problem> problems_;
  std::vector<std::string> network_names_;
  std::vector<MemberRefs> members_;
  std::vector<Reference> link_refs_;  // the members links name
};

std::string DirectoryOf(absl::string_view file_name) {
  std::error_code ec;
  std::filesystem::path dir = std::filesystem::path(std::string(file_name)).parent_path();
  if (dir.empty() || dir.is_relative()) {
    std::filesystem::path cwd = std::filesystem::current_path(ec);
    if (!ec) dir = cwd / dir;
  }
  std::string out = dir.lexically_normal().string();
  if (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

}  // namespace

absl::StatusOr<LoadedSpec> ParseSpec(absl::string_view yaml, absl::string_view file_name,
                                     const SpecOptions& options) {
  Loader loader(std::string(file_name),
                options.base_dir.empty() ? DirectoryOf(file_name) : options.base_dir,
                options.limits);
  return loader.Run(yaml);
}

absl::StatusOr<LoadedSpec> LoadSpecFile(const std::string& path, const SpecLimits& limits) {
  const size_t max = limits.yaml.max_bytes;
  absl::StatusOr<std::string> text = path == "-"
                                         ? ReadBounded(STDIN_FILENO, max, "standard input")
                                         : ReadFileBounded(path, max, /*regular_only=*/false);
  if (!text.ok()) return Annotate(text.status(), "load spec");
  SpecOptions options;
  options.limits = limits;
  return ParseSpec(*text, path == "-" ? "<stdin>" : path, options);
}

}  // namespace mesh::cli
