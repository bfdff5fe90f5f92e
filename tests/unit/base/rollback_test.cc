#include "base/rollback.h"

#include <string>

#include "gtest/gtest.h"

namespace mesh {
namespace {

TEST(RollbackTest, UndoesInReverseOrderUnlessCommitted) {
  std::string log;
  {
    Rollback undo;
    undo.Push([&] { log += "1"; });
    undo.Push([&] { log += "2"; });
    undo.Push([&] { log += "3"; });
  }
  EXPECT_EQ(log, "321");

  log.clear();
  {
    Rollback undo;
    undo.Push([&] { log += "1"; });
    undo.Commit();
  }
  EXPECT_EQ(log, "");
}

TEST(RollbackTest, RunNowEmptiesTheStack) {
  int runs = 0;
  Rollback undo;
  undo.Push([&] { ++runs; });
  undo.Run();
  EXPECT_EQ(undo.size(), 0u);
  undo.Run();
  EXPECT_EQ(runs, 1);
}

}  // namespace
}  // namespace mesh
