// test_store_faults.cpp - the store read-only for the user the milter runs
// as (issue 16 item 3): the database file chmod 0444, its directory chmod
// 0555 (SQLite cannot make its -wal and -shm files). Root ignores modes, so
// each open runs in a child process as nobody (65534). Opening fails with an
// error naming the file; with the mode put back it opens and the rows
// committed before are there. (A read-only mount: tests/milter/test_recorder.cpp.)
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "dmarc/adapters/sqlite_store.hpp"
#include "support/temp_dir.hpp"

using namespace dmarc;
using dmarc::test::TempDir;

namespace {

constexpr uid_t kNobody = 65534;

AggregateRecord srec(int n) {
  AggregateRecord r;
  r.day = 20400;
  r.policy.domain = "example.com";
  r.policy.p = Policy::Reject;
  r.source_ip = "192.0.2." + std::to_string(n);
  r.header_from = "example.com";
  r.result = DmarcResult::Pass;
  r.last_seen = 20400 * kSecondsPerDay + n;
  return r;
}

// as_nobody - in a child running as nobody: open DB, add one record, count
// the messages stored. "ok N" or the error text.
std::string as_nobody(const std::string& db, int n) {
  int p[2];
  REQUIRE(::pipe(p) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(p[0]);
    std::string out;
    if (::setgid(kNobody) != 0 || ::setuid(kNobody) != 0) {
      out = "setuid failed";
    } else if (auto s = open_store("sqlite:" + db); !s) {
      out = s.error();
    } else if (auto e = s.value()->add({srec(n)})) {
      out = e->message;
    } else {
      auto recs = s.value()->records("example.com", 0, 100000);
      std::uint64_t total = 0;
      if (recs)
        for (const auto& r : recs.value()) total += r.count;
      out = recs ? "ok " + std::to_string(total) : recs.error().message;
    }
    if (::write(p[1], out.data(), out.size()) < 0) ::_exit(2);
    ::_exit(0);
  }
  ::close(p[1]);
  std::string out;
  char buf[512];
  ssize_t r;
  while ((r = ::read(p[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(r));
  ::close(p[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return out;
}

}  // namespace

TEST_CASE("store fault: read-only for the milter's user (file 0444, directory 0555): an error naming the file; "
          "writable again, the rows are there",
          "[store][faults]") {
  if (::geteuid() != 0) {
    WARN("not root: cannot run as another user");
    return;
  }
  TempDir top;
  std::string dir = top.file("store");
  REQUIRE(::mkdir(dir.c_str(), 0755) == 0);
  REQUIRE(::chmod(top.path().c_str(), 0755) == 0);
  REQUIRE(::chown(dir.c_str(), kNobody, kNobody) == 0);
  std::string db = dir + "/r.db";
  REQUIRE(as_nobody(db, 1) == "ok 1");  // committed before the fault
  REQUIRE(as_nobody(db, 2) == "ok 2");

  const bool file_case = GENERATE(true, false);
  INFO((file_case ? "file 0444" : "directory 0555"));
  const std::string target = file_case ? db : dir;
  const mode_t ro = file_case ? 0444 : 0555, rw = file_case ? 0640 : 0755;
  REQUIRE(::chmod(target.c_str(), ro) == 0);
  std::string err = as_nobody(db, 3);
  CHECK_THAT(err, Catch::StartsWith("sqlite:" + db + ": "));
  if (file_case) CHECK_THAT(err, Catch::Contains("Permission denied"));
  CHECK(err.rfind("ok", 0) != 0);
  REQUIRE(::chmod(target.c_str(), rw) == 0);
  CHECK(as_nobody(db, 4) == "ok 3");  // the two from before and this one; the failed one is not there
}
