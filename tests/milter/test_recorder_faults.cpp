// test_recorder_faults.cpp - fault injection for the milter's recorder
// (issue 16 item 3) with a real SQLite store: the database file deleted
// while the writer has it open, and another process holding SQLite's write
// lock longer than the busy timeout (5 s). For each: submit() (the message
// path) never waits, the queue stays within ReportQueueSize plus the batch
// in hand, what is dropped is counted (stats and metrics), the rows
// committed before the fault are still there, and recording resumes when
// the fault goes away. (A read-only remount and a full file system are in
// test_recorder.cpp.)
#include <catch2/catch.hpp>

#include <signal.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "dmarc/adapters/sqlite_store.hpp"
#include "metrics.hpp"
#include "recorder.hpp"
#include "support/temp_dir.hpp"

using namespace dmarc;
using dmarc::test::TempDir;
using namespace dmarc::milter;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

AggregateRecord frec(int n) {
  AggregateRecord r;
  r.day = 20400;
  r.policy.domain = "example.com";
  r.policy.p = Policy::Reject;
  r.source_ip = "192.0.2." + std::to_string(n % 5);
  r.header_from = "example.com";
  r.result = DmarcResult::Pass;
  r.last_seen = 20400 * kSecondsPerDay + n;
  return r;
}

// The messages counted in the database at DB ("" -> -1: no database there).
std::int64_t counted(const std::string& db) {
  if (!fs::exists(db)) return -1;
  auto s = open_store("sqlite:" + db);
  REQUIRE(s);
  auto recs = s.value()->records("example.com", 0, 100000);
  REQUIRE(recs);
  std::int64_t n = 0;
  for (const auto& r : recs.value()) n += static_cast<std::int64_t>(r.count);
  return n;
}

template <class P>
bool eventually(P pred, std::chrono::milliseconds limit = 20s) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return pred();
}

struct Logs {
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1000);
  std::shared_ptr<spdlog::logger> old = spdlog::default_logger();
  Logs() { spdlog::set_default_logger(std::make_shared<spdlog::logger>("faults", sink)); }
  ~Logs() { spdlog::set_default_logger(old); }
  int count(const std::string& text) const {
    int n = 0;
    for (const auto& l : sink->last_formatted()) n += l.find(text) != std::string::npos;
    return n;
  }
  std::string all() const {
    std::string s;
    for (const auto& l : sink->last_formatted()) s += l + "\n";
    return s;
  }
};

// Locker - another process that takes SQLite's write lock on DB
// (BEGIN EXCLUSIVE) when told and holds it until it is killed. Forked
// before any thread of the test starts, so the child inherits no lock.
class Locker {
 public:
  explicit Locker(const std::string& db) {
    int to_child[2], to_parent[2];
    REQUIRE(::pipe(to_child) == 0);
    REQUIRE(::pipe(to_parent) == 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::close(to_child[1]);
      ::close(to_parent[0]);
      char c;
      if (::read(to_child[0], &c, 1) != 1) ::_exit(2);
      sqlite3* h = nullptr;
      char ok = 'n';
      if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK &&
          sqlite3_exec(h, "BEGIN EXCLUSIVE; INSERT INTO schema_version VALUES (0);", nullptr, nullptr, nullptr) ==
              SQLITE_OK)
        ok = 'y';
      if (::write(to_parent[1], &ok, 1) != 1) ::_exit(2);
      for (;;) ::pause();  // holds the lock until SIGKILL
    }
    ::close(to_child[0]);
    ::close(to_parent[1]);
    cmd_ = to_child[1];
    reply_ = to_parent[0];
  }
  ~Locker() {
    kill();
    ::close(cmd_);
    ::close(reply_);
  }
  bool lock() {
    char c = 'l';
    if (::write(cmd_, &c, 1) != 1) return false;
    return ::read(reply_, &c, 1) == 1 && c == 'y';
  }
  // kill - the holder dies in the middle of its transaction (SIGKILL).
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  int cmd_ = -1, reply_ = -1;
};

}  // namespace

TEST_CASE("recorder fault: the database file deleted while the writer has it open: a new database at the path",
          "[recorder][faults]") {
  TempDir dir;
  std::string db = dir.file("d.db");
  Logs logs;
  Recorder r("sqlite:" + db, 1000, {}, 100ms);
  r.start();
  for (int i = 0; i < 10; ++i) REQUIRE(r.submit({frec(i)}));
  REQUIRE(eventually([&] { return r.stats().written == 10; }));
  REQUIRE(counted(db) == 10);
  // An operator (or a cleanup job) removes the database under the running
  // milter. Those 10 rows go with the file; what comes after must not
  // follow them into the unlinked inode.
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(db + suffix);
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) REQUIRE(r.submit({frec(i)}));
  CHECK(std::chrono::steady_clock::now() - t0 < 2s);  // the message path is not held
  CHECK(eventually([&] { return logs.count("recording stopped") == 1; }));
  CHECK_THAT(logs.all(), Catch::Contains("sqlite:" + db) && Catch::Contains("deleted or replaced"));
  CHECK(eventually([&] { return logs.count("recording resumed") == 1; }));
  CHECK(eventually([&] { return r.stats().written == 30; }));
  r.stop();
  INFO(logs.all());
  CHECK(r.stats().lost == 0);
  CHECK(r.stats().dropped == 0);
  // The 20 records after the deletion are in a fresh database at the path.
  CHECK(counted(db) == 20);
  CHECK(logs.count("recording stopped") == 1);
}

TEST_CASE("recorder fault: another process holds the write lock past the busy timeout; the queue stays bounded, "
          "drops are counted, recording resumes when the holder dies",
          "[recorder][faults]") {
  TempDir dir;
  std::string db = dir.file("l.db");
  {
    auto s = open_store("sqlite:" + db);
    REQUIRE(s);
    REQUIRE_FALSE(s.value()->add({frec(0)}));  // committed before the fault
  }
  Locker locker(db);  // forked before the writer thread exists
  Logs logs;
  constexpr std::size_t kCapacity = 300;
  Recorder r("sqlite:" + db, kCapacity, {}, 200ms);
  r.start();
  for (int i = 1; i <= 10; ++i) REQUIRE(r.submit({frec(i)}));
  REQUIRE(eventually([&] { return r.stats().written == 10; }));
  REQUIRE(locker.lock());
  std::uint64_t dropped_metric0 = metrics().store_dropped.load();
  REQUIRE(r.submit({frec(11)}));
  // The writer waits out SQLite's busy timeout (5 s) and gives up the try.
  REQUIRE(eventually([&] { return logs.count("recording stopped") == 1; }, 30s));
  CHECK_THAT(logs.all(), Catch::Contains("sqlite:" + db) && Catch::Contains("locked"));
  CHECK_FALSE(r.stats().store_ok);
  // Mail keeps coming: 2000 messages. submit() never waits for the lock
  // (a wait would take at least the 5 s busy timeout per batch).
  constexpr int kFlood = 2000;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kFlood; ++i) r.submit({frec(100 + i)});
  CHECK(std::chrono::steady_clock::now() - t0 < 4s);
  auto st = r.stats();
  CHECK(st.queued + st.dropped == 11 + kFlood);
  // In memory at most the queue (ReportQueueSize) and the batch in hand.
  CHECK(st.queued - st.written <= kCapacity + Recorder::kBatchSize);
  CHECK(st.dropped >= kFlood - kCapacity - Recorder::kBatchSize);
  CHECK(metrics().store_dropped.load() - dropped_metric0 == st.dropped);
  std::this_thread::sleep_for(1s);  // more retries, each one busy timeout long
  CHECK(logs.count("recording stopped") == 1);
  // The holder dies mid-transaction: the kernel drops its lock, SQLite
  // rolls its write back, the writer gets in at its next try.
  locker.kill();
  CHECK(eventually([&] { return r.stats().written == r.stats().queued; }, 30s));
  CHECK(eventually([&] { return logs.count("recording resumed") == 1; }));
  r.stop();
  st = r.stats();
  INFO(logs.all());
  CHECK(st.lost == 0);
  CHECK(st.store_ok);
  // Everything committed: the row from before the fault, the 10, and every
  // record the queue took; none of what was dropped.
  CHECK(counted(db) == static_cast<std::int64_t>(1 + st.written));
}
