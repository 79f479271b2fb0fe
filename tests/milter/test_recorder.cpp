// test_recorder.cpp - the milter's recorder with a real SQLite store: batches,
// the bounded queue, a store that fails and comes back (a missing
// directory, a read-only remount), the flush at stop, the loop guards.
#include <catch2/catch.hpp>

#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>
#include <sys/mount.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "dmarc/adapters/sqlite_store.hpp"
#include "recorder.hpp"
#include "support/temp_dir.hpp"

using namespace dmarc;
using dmarc::test::slurp;
using dmarc::test::TempDir;
using namespace dmarc::milter;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {


AggregateRecord rec(int n) {
  AggregateRecord r;
  r.day = 20400;
  r.policy.domain = "example.com";
  r.policy.p = Policy::Reject;
  r.source_ip = "192.0.2." + std::to_string(n % 3);
  r.header_from = "example.com";
  r.result = DmarcResult::Pass;
  r.last_seen = 20400 * kSecondsPerDay + n;
  return r;
}

std::uint64_t stored_count(const std::string& db) {
  auto s = open_store("sqlite:" + db);
  REQUIRE(s);
  auto recs = s.value()->records("example.com", 0, 100000);
  REQUIRE(recs);
  std::uint64_t n = 0;
  for (const auto& r : recs.value()) n += r.count;
  return n;
}

// Wait until PRED holds (a functional deadline, not a speed claim).
template <class P>
bool eventually(P pred, std::chrono::milliseconds limit = 10s) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return pred();
}

// Captures what the recorder logs.
struct LogCapture {
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1000);
  std::shared_ptr<spdlog::logger> old = spdlog::default_logger();
  LogCapture() { spdlog::set_default_logger(std::make_shared<spdlog::logger>("test", sink)); }
  ~LogCapture() { spdlog::set_default_logger(old); }
  int count(const std::string& text) const {
    int n = 0;
    for (const auto& l : sink->last_formatted()) n += l.find(text) != std::string::npos;
    return n;
  }
  std::string all() const {
    std::string s;
    for (const auto& l : sink->last_formatted()) s += l;
    return s;
  }
};

}  // namespace

TEST_CASE("recorder: records reach the store in batches, aggregated", "[recorder]") {
  TempDir dir;
  std::string db = dir.file("r.db");
  Recorder r("sqlite:" + db, 10000);
  r.start();
  // One record is written within the flush interval, without more traffic.
  REQUIRE(r.submit({rec(0)}));
  CHECK(eventually([&] { return r.stats().written == 1; }));
  for (int i = 1; i < 1500; ++i) REQUIRE(r.submit({rec(i)}));
  r.stop();
  auto st = r.stats();
  CHECK(st.queued == 1500);
  CHECK(st.written == 1500);
  CHECK(st.dropped == 0);
  CHECK(st.lost == 0);
  CHECK(stored_count(db) == 1500);
  // Three source addresses: three rows, not 1500.
  auto s = open_store("sqlite:" + db);
  CHECK(s.value()->records("example.com", 0, 100000).value().size() == 3);
}

TEST_CASE("recorder: a full queue drops and counts instead of waiting", "[recorder]") {
  TempDir dir;
  LogCapture logs;
  Recorder r("sqlite:" + dir.file("q.db"), 100);
  // Not started: nothing drains the queue.
  std::vector<AggregateRecord> many;
  for (int i = 0; i < 150; ++i) many.push_back(rec(i));
  CHECK_FALSE(r.submit(many));
  CHECK(r.stats().queued == 100);
  CHECK(r.stats().dropped == 50);
  r.start();
  r.stop();
  CHECK(r.stats().written == 100);
  CHECK(logs.count("50 record(s) dropped") == 1);
  // After stop nothing is taken.
  CHECK_FALSE(r.submit({rec(1)}));
}

TEST_CASE("recorder: a store that cannot be opened is retried; nothing queued is lost", "[recorder]") {
  TempDir dir;
  LogCapture logs;
  std::string db = dir.file("later/r.db");  // the directory does not exist yet
  Recorder r("sqlite:" + db, 10000, {}, 100ms);
  r.start();
  for (int i = 0; i < 700; ++i) REQUIRE(r.submit({rec(i)}));
  CHECK(eventually([&] { return logs.count("recording stopped") == 1; }));
  std::this_thread::sleep_for(400ms);  // several retries
  CHECK(logs.count("recording stopped") == 1);  // logged once
  CHECK_THAT(logs.all(), Catch::Contains("sqlite:" + db));
  CHECK_FALSE(r.stats().store_ok);
  fs::create_directory(dir.file("later"));
  CHECK(eventually([&] { return r.stats().written == 700; }));
  CHECK(logs.count("recording resumed") == 1);
  r.stop();
  CHECK(stored_count(db) == 700);
}

namespace {
struct Tmpfs {
  std::string path;
  bool ok = false;
  Tmpfs(const std::string& p, const char* opts) : path(p) {
    fs::create_directory(path);
    ok = ::mount("tmpfs", path.c_str(), "tmpfs", 0, opts) == 0;
  }
  ~Tmpfs() {
    if (ok) ::umount2(path.c_str(), MNT_DETACH);
  }
};
}  // namespace

TEST_CASE("recorder: a read-only disk, a full disk: one error each, mail is not held, recording resumes",
          "[recorder]") {
  if (::geteuid() != 0) {
    WARN("not root: needs mount(2)");
    return;
  }
  TempDir dir;
  Tmpfs t(dir.file("mnt"), "size=2m");
  if (!t.ok) {
    WARN("cannot mount a tmpfs: skipped");
    return;
  }
  std::string db = t.path + "/r.db";
  {
    auto s = open_store("sqlite:" + db);
    REQUIRE(s);
    REQUIRE_FALSE(s.value()->add({rec(0)}));
  }
  SECTION("read-only") {
    REQUIRE(::mount(nullptr, t.path.c_str(), nullptr, MS_REMOUNT | MS_RDONLY, nullptr) == 0);
    LogCapture logs;
    Recorder r("sqlite:" + db, 10000, {}, 100ms);
    r.start();
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 1; i < 300; ++i) REQUIRE(r.submit({rec(i)}));
    CHECK(std::chrono::steady_clock::now() - t0 < 2s);  // submit() does not wait for the store
    CHECK(eventually([&] { return logs.count("recording stopped") == 1; }));
    CHECK_THAT(logs.all(), Catch::Contains("sqlite:" + db));
    std::this_thread::sleep_for(300ms);
    CHECK(logs.count("recording stopped") == 1);
    REQUIRE(::mount(nullptr, t.path.c_str(), nullptr, MS_REMOUNT, "size=2m") == 0);
    CHECK(eventually([&] { return r.stats().written == 299; }));
    r.stop();
    CHECK(logs.count("recording resumed") == 1);
    CHECK(stored_count(db) == 300);  // what was stored before the fault is kept
  }
  SECTION("full") {
    LogCapture logs;
    Recorder r("sqlite:" + db, 100000, {}, 100ms);
    r.start();
    REQUIRE(r.submit({rec(1)}));
    REQUIRE(eventually([&] { return r.stats().written == 1; }));
    {
      std::ofstream filler(t.path + "/filler", std::ios::binary);
      std::string block(4096, 'f');
      while (filler.write(block.data(), static_cast<std::streamsize>(block.size()))) {
      }
    }
    for (int i = 0; i < 3000; ++i) {
      AggregateRecord big = rec(i);
      big.source_ip = "203.0.113." + std::to_string(i);  // distinct rows: the file must grow
      REQUIRE(r.submit({big}));
    }
    CHECK(eventually([&] { return logs.count("recording stopped") == 1; }));
    fs::remove(t.path + "/filler");
    CHECK(eventually([&] { return r.stats().written == 3001; }));
    r.stop();
    CHECK(logs.count("recording resumed") == 1);
    CHECK(stored_count(db) == 3002);
  }
}

TEST_CASE("recorder: stop flushes everything queued; a dead store at stop says what was lost", "[recorder]") {
  TempDir dir;
  std::string db = dir.file("s.db");
  {
    Recorder r("sqlite:" + db, 100000);
    r.start();
    for (int i = 0; i < 5000; ++i) r.submit({rec(i)});
    r.stop();
    CHECK(r.stats().written == 5000);
  }
  CHECK(stored_count(db) == 5000);
  LogCapture logs;
  Recorder dead("sqlite:/nonexistent-dmarc-dir/x.db", 1000, {}, 50ms);
  dead.start();
  for (int i = 0; i < 10; ++i) dead.submit({rec(i)});
  auto t0 = std::chrono::steady_clock::now();
  dead.stop(2s);
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
  CHECK(dead.stats().lost == 10);
  CHECK(logs.count("10 record(s) could not be written") == 1);
}

TEST_CASE("should_record: mail to IgnoreMailTo or from our ReportSender is not recorded", "[recorder]") {
  MessageFacts f;
  f.mail_from = "someone@example.org";
  f.rcpt_to = {"user@example.net"};
  std::vector<std::string> ignore = {"rua@example.net", "reports.example.com"};
  CHECK(should_record(ignore, "dmarc-reports@mx.example.net", f));
  f.rcpt_to = {"user@example.net", "RUA@example.net"};
  CHECK_FALSE(should_record(ignore, "dmarc-reports@mx.example.net", f));
  f.rcpt_to = {"x@sub.reports.example.com"};
  CHECK_FALSE(should_record(ignore, "dmarc-reports@mx.example.net", f));
  f.rcpt_to = {"x@example.net"};
  f.mail_from = "DMARC-Reports@mx.example.net";
  CHECK_FALSE(should_record(ignore, "dmarc-reports@mx.example.net", f));
  f.mail_from = "";
  CHECK(should_record(ignore, "dmarc-reports@mx.example.net", f));
}

TEST_CASE("recorder: a corrupt database file at start is one clear error naming the file", "[recorder]") {
  TempDir dir;
  std::string db = dir.file("corrupt.db");
  {
    std::ofstream f(db, std::ios::binary);
    for (int i = 0; i < 8192; ++i) f.put(static_cast<char>((i * 131) & 0xff));
  }
  LogCapture logs;
  Recorder r("sqlite:" + db, 1000, {}, 50ms);
  r.start();
  for (int i = 0; i < 5; ++i) REQUIRE(r.submit({rec(i)}));  // mail keeps flowing
  CHECK(eventually([&] { return logs.count("recording stopped") == 1; }));
  CHECK_THAT(logs.all(), Catch::Contains("sqlite:" + db) && Catch::Contains("not a database"));
  std::this_thread::sleep_for(200ms);
  CHECK(logs.count("recording stopped") == 1);
  r.stop(500ms);
  CHECK(r.stats().lost == 5);
  CHECK(r.stats().written == 0);
}

TEST_CASE("recorder: a failing store with a full queue leaves the writer idle until the retry", "[recorder]") {
  LogCapture logs;
  Recorder r("sqlite:/nonexistent-dmarc-dir/x.db", 5000, {}, std::chrono::seconds(30));
  r.start();
  std::vector<AggregateRecord> many;
  for (int i = 0; i < 2000; ++i) many.push_back(rec(i));
  REQUIRE(r.submit(many));  // a batch of 500 in hand, 1500 waiting: more than a batch
  REQUIRE(eventually([&] { return logs.count("recording stopped") == 1; }));
  // Process CPU over one second: a writer spinning on the full queue would
  // use all of it; waiting for the retry uses next to none.
  std::clock_t c0 = std::clock();
  std::this_thread::sleep_for(1s);
  double cpu = static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC;
  CHECK(cpu < 0.3);
  r.stop(200ms);
  CHECK(r.stats().lost == 2000);
}

TEST_CASE("FailureJobGate: a flood of failure jobs is cut at the limits before it reaches the store", "[recorder]") {
  FailureJobGate gate(5, 8, 3);
  std::vector<FailureJob> flood;
  for (int i = 0; i < 1000; ++i) {
    FailureJob j;
    j.reported_domain = i % 2 ? "example.com" : "example.org";
    j.kind = i % 10 == 0 ? FailureJobKind::Local : FailureJobKind::Ruf;
    flood.push_back(j);
  }
  std::uint64_t dropped = 0;
  auto kept = gate.admit(flood, 1796637600, &dropped);
  std::size_t ruf = 0, local = 0;
  for (const auto& j : kept) (j.kind == FailureJobKind::Local ? local : ruf)++;
  CHECK(ruf == 8);    // 5 for one domain, then the total of 8
  CHECK(local == 3);  // ForensicMaxPerDay for example.org (every tenth job is one of its)
  CHECK(dropped == 1000 - kept.size());
  // The next hour: ruf jobs again; the day's forensic limit still holds.
  auto later = gate.admit(flood, 1796637600 + 3600, nullptr);
  std::size_t local_later = 0;
  for (const auto& j : later) local_later += j.kind == FailureJobKind::Local;
  CHECK(later.size() == 8);
  CHECK(local_later == 0);
}
