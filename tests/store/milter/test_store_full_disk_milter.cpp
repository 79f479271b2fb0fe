// test_store_full_disk_milter.cpp - the report store on a full disk
// through the real dmarc-milter (issue 16 item 3): the daemon's ReportStore
// on a small tmpfs mounted in a private mount namespace (unshare(2); the
// mount dies with this process whatever happens), messages sent with
// bench/'s milter client, DNS from NSD. While the disk is full every message
// is still answered, the queue stays bounded, drops are counted in the
// metrics, the rows committed before are kept, and recording resumes when
// space comes back. Needs root.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <thread>

#include "../../../bench/src/milter_client.hpp"
#include "dmarc/adapters/sqlite_store.hpp"
#include "support/milter_process.hpp"
#include "support/nsd_server.hpp"
#include "support/temp_dir.hpp"

using namespace dmarc;
using dmarc::test::MilterProcess;
using dmarc::test::NsdServer;
using dmarc::test::NsdServerOptions;
using dmarc::test::TempDir;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

struct Mount {
  std::string path;
  bool ok = false;
  Mount(const std::string& p, const char* opts) : path(p) {
    fs::create_directory(path);
    ok = ::mount("tmpfs", path.c_str(), "tmpfs", 0, opts) == 0;
  }
  ~Mount() {
    if (ok) ::umount2(path.c_str(), MNT_DETACH);
  }
};

std::uint16_t free_port() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(s);
  return ntohs(a.sin_port);
}

// metric - the value of NAME in the daemon's /metrics (-1: unreadable).
double metric(std::uint16_t port, const std::string& name) {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(s);
    return -1;
  }
  std::string req = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (::write(s, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    ::close(s);
    return -1;
  }
  std::string body;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(s, buf, sizeof buf)) > 0) body.append(buf, static_cast<std::size_t>(n));
  ::close(s);
  std::smatch m;
  if (!std::regex_search(body, m, std::regex("\n" + name + " ([0-9.e+]+)"))) return -1;
  return std::stod(m[1]);
}

template <class P>
bool eventually(P pred, std::chrono::milliseconds limit) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(100ms);
  }
  return pred();
}

// One message from none.example (p=none) through CLIENT from IP; the verdict.
bench::Verdict message(bench::MilterClient& c, const std::string& ip, int n) {
  std::string qid = "FULL" + std::to_string(n);
  c.connect({{"j", "mx.full.example"}}, "client.example", ip, 25);
  c.helo({}, "mx.none.example");
  c.mail({{"i", qid}, {"{mail_addr}", "alice@none.example"}}, "<alice@none.example>", {});
  c.rcpt({{"{rcpt_addr}", "postmaster@mx.full.example"}}, "<postmaster@mx.full.example>");
  c.data({{"i", qid}});
  c.header("From", " alice@none.example");
  c.header("To", " postmaster@mx.full.example");
  c.header("Subject", " full disk " + std::to_string(n));
  c.header("Message-ID", " <full" + std::to_string(n) + "@none.example>");
  c.eoh({{"i", qid}});
  c.body("hello\r\n");
  bench::Reply r = c.end_of_body({{"i", qid}});
  c.abort();
  return r.verdict;
}

std::int64_t stored(const std::string& db) {
  auto s = open_store("sqlite:" + db);
  REQUIRE(s);
  auto recs = s.value()->records("none.example", 0, 1000000);
  REQUIRE(recs);
  std::int64_t n = 0;
  for (const auto& r : recs.value()) n += static_cast<std::int64_t>(r.count);
  return n;
}

}  // namespace

TEST_CASE("store fault: a full disk under the running milter: mail answered, drops counted, rows kept, "
          "recording resumes",
          "[store][faults][milter]") {
  if (::geteuid() != 0) {
    WARN("not root: needs unshare(2) and mount(2)");
    return;
  }
  // A private mount namespace for this process (and the daemon it starts).
  REQUIRE(::unshare(CLONE_NEWNS) == 0);
  REQUIRE(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0);
  TempDir dir;
  Mount mnt(dir.file("mnt"), "size=1m");
  REQUIRE(mnt.ok);
  std::string db = mnt.path + "/reports.db";
  NsdServerOptions no;
  no.zone_dir = std::string(DMARC_TEST_DATA_DIR) + "/e2e/zones";
  NsdServer nsd(no);
  std::uint16_t mport = free_port();
  MilterProcess milter("Syslog no\nLogLevel info\nAuthservID mx.full.example\nNameservers " + nsd.address() +
                       "\nDNSTimeout 2\nReportStore sqlite:" + db + "\nReportQueueSize 100\nMetricsListen 127.0.0.1:" +
                       std::to_string(mport) + "\n");
  bench::ClientOptions o;
  o.timeout_ms = 20000;
  bench::MilterClient c(bench::parse_endpoint("inet:" + std::to_string(milter.port()) + "@127.0.0.1"), o);
  c.open();
  int n = 0;
  for (; n < 5; ++n) REQUIRE(message(c, "192.0.2.10", n) == bench::Verdict::Accept);
  REQUIRE(eventually([&] { return metric(mport, "dmarc_milter_store_records_written_total") == 5; }, 20s));
  REQUIRE(stored(db) == 5);
  {
    std::ofstream filler(mnt.path + "/filler", std::ios::binary);
    std::string block(4096, 'f');
    while (filler.write(block.data(), static_cast<std::streamsize>(block.size()))) {
    }
  }
  // Distinct sources: each is a row, so the database must grow.
  constexpr int kFlood = 1500;
  int answered = 0;
  for (int i = 0; i < kFlood; ++i, ++n) {
    std::string ip = "198.51." + std::to_string(100 + i / 250) + "." + std::to_string(i % 250 + 1);
    bench::Verdict v = message(c, ip, n);
    answered += v == bench::Verdict::Accept;
  }
  CHECK(answered == kFlood);  // p=none: every message accepted, none held
  INFO(milter.log());
  CHECK(milter.wait_log("recording stopped", 30s));
  double queued = metric(mport, "dmarc_milter_store_records_queued_total");
  double dropped = metric(mport, "dmarc_milter_store_records_dropped_total");
  double length = metric(mport, "dmarc_milter_store_queue_length");
  CHECK(queued + dropped == 5 + kFlood);
  CHECK(dropped > 0);
  CHECK(length <= 100);  // ReportQueueSize
  fs::remove(mnt.path + "/filler");
  // The daemon retries every 10 s.
  CHECK(milter.wait_log("recording resumed", 40s));
  CHECK(eventually([&] { return metric(mport, "dmarc_milter_store_records_written_total") == queued; }, 40s));
  c.close();
  CHECK(milter.stop() == 0);
  CHECK(stored(db) == static_cast<std::int64_t>(queued));  // the 5 from before and every record taken
}
