#pragma once

#include <functional>
#include <utility>
#include <vector>

namespace mesh {

// An undo stack for multi-step operations (DESIGN.md decision 2). Each step that changed the
// world pushes how to take it back; unless Commit() is called, the destructor runs the undo
// actions in reverse order. Undo actions must not throw and should collect, not stop at,
// errors (they run on a path that is already failing).
//
//   Rollback undo;
//   MESH_RETURN_IF_ERROR(links.AddVeth(a, b));
//   undo.Push([&] { links.Remove(a).IgnoreError(); });  // best effort: already failing
//   MESH_RETURN_IF_ERROR(links.MoveToNetns(b, ns));
//   undo.Commit();
class Rollback {
 public:
  Rollback() = default;
  ~Rollback() { Run(); }
  Rollback(const Rollback&) = delete;
  Rollback& operator=(const Rollback&) = delete;

  void Push(std::function<void()> undo) { steps_.push_back(std::move(undo)); }
  // Keeps everything done so far: the destructor will undo nothing.
  void Commit() { steps_.clear(); }
  // Undoes everything pushed so far, newest first, now.
  void Run() {
    while (!steps_.empty()) {
      auto step = std::move(steps_.back());
      steps_.pop_back();
      step();
    }
  }
  size_t size() const { return steps_.size(); }

 private:
  std::vector<std::function<void()>> steps_;
};

}  // namespace mesh
