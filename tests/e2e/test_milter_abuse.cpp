// test_milter_abuse.cpp - milter protocol abuse against the built dmarc-milter
// (issue 16 item 3, the milter half of the fault table)
//
// An MTA that goes wrong, or a client that is not an MTA at all, talking to
// the real daemon over its inet socket: aborts and dropped connections in
// the middle of a message, a message that never ends, 10 000 header fields,
// huge fields, NUL, bare CR and LF, invalid UTF-8, and packets that are not
// the milter protocol. For each: the daemon does not crash, answers (or
// drops that one connection) within a bounded time, gives the documented
// verdict, and its descriptors and memory come back to where they were; the
// next connection is served normally (sane()). The MTA side is bench/'s
// MilterClient for well-formed traffic (protocol 6, as Postfix speaks it)
// and RawMilter below for bytes no MTA would send. DNS: NSD serving
// tests/data/e2e/zones.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../bench/src/milter_client.hpp"
#include "milter/eval.hpp"
#include "support/dkim_signer.hpp"
#include "support/fault_dns.hpp"
#include "support/milter_process.hpp"
#include "support/nsd_server.hpp"

using namespace dmarc::test;
using bench::MilterClient;
using bench::Reply;
using bench::Verdict;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

const std::string kZones = std::string(DMARC_TEST_DATA_DIR) + "/e2e/zones";
const std::string kKey = std::string(DMARC_TEST_DATA_DIR) + "/dkim/keys/rsa2048.pem";

NsdServer& nsd() {
  static NsdServer server([] {
    NsdServerOptions o;
    o.zone_dir = kZones;
    return o;
  }());
  return server;
}

std::string config(const std::string& extra = "") {
  return "Syslog no\nLogLevel info\nAuthservID mx.abuse.example\nNameservers " + nsd().address() +
         "\nDNSTimeout 2\nRejectFailures yes\n" + extra;
}

// --- the daemon's resources (/proc) ---------------------------------------------

std::size_t fd_count(pid_t pid) {
  std::size_t n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++n;
  return n;
}

// status_kb - a "Name:   123 kB" line of /proc/PID/status (VmRSS, VmHWM), or a count (Threads).
long status_value(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + ":", 0) == 0) return std::stol(line.substr(key.size() + 1));
  return -1;
}

// settle_fds - the daemon's descriptor count once closed connections are
// gone (libmilter closes a session's socket on its worker thread): waits
// up to 10 s for it to come down to BASELINE + SLACK.
std::size_t settle_fds(pid_t pid, std::size_t baseline, std::size_t slack = 4) {
  std::size_t n = fd_count(pid);
  for (int i = 0; i < 200 && n > baseline + slack; ++i) {
    std::this_thread::sleep_for(50ms);
    n = fd_count(pid);
  }
  return n;
}

// --- well-formed traffic ---------------------------------------------------------

struct Result {
  Verdict verdict = Verdict::Continue;
  std::string text;
  std::string auth_results;
};

std::unique_ptr<MilterClient> open_client(const MilterProcess& milter, const std::string& ip, const std::string& helo,
                                          int timeout_ms = 20000) {
  bench::ClientOptions o;
  o.timeout_ms = timeout_ms;
  auto c = std::make_unique<MilterClient>(bench::parse_endpoint("inet:" + std::to_string(milter.port()) + "@127.0.0.1"), o);
  c->open();
  c->connect({{"j", "mx.abuse.example"}}, "client.example", ip, 25);
  c->helo({}, helo);
  return c;
}

void envelope(MilterClient& c, const std::string& qid, const std::string& mail_from) {
  c.mail({{"i", qid}, {"{mail_addr}", mail_from}}, "<" + mail_from + ">", {});
  c.rcpt({{"{rcpt_addr}", "postmaster@mx.abuse.example"}}, "<postmaster@mx.abuse.example>");
  c.data({{"i", qid}});
}

// send - one message (fields as given, body in 65535-octet chunks) on an
// open connection; the end-of-message reply.
Result send(MilterClient& c, const std::string& qid, const std::string& mail_from,
            const std::vector<std::pair<std::string, std::string>>& fields, const std::string& body) {
  envelope(c, qid, mail_from);
  Result out;
  for (const auto& [name, value] : fields) {
    Reply r = c.header(name, value);
    if (r.verdict != Verdict::Continue) {
      out.verdict = r.verdict;
      return out;
    }
  }
  c.eoh({{"i", qid}});
  for (std::size_t i = 0; i < body.size(); i += 65535) {
    Reply r = c.body(std::string_view(body).substr(i, 65535));
    if (r.verdict == Verdict::Skip) break;
  }
  Reply r = c.end_of_body({{"i", qid}});
  out.verdict = r.verdict;
  out.text = r.text;
  for (const auto& mod : r.mods)
    if (mod.type == 'i' && mod.name == "Authentication-Results") out.auth_results = mod.value;
  return out;
}

Result send_text(MilterClient& c, const std::string& qid, const std::string& mail_from, const std::string& text) {
  const dmarc::milter::SplitMessage parts = dmarc::milter::split_message(text);
  return send(c, qid, mail_from, parts.headers, parts.body);
}

std::vector<std::pair<std::string, std::string>> fields_from(const std::string& from) {
  return {{"From", " " + from},
          {"To", " postmaster@mx.abuse.example"},
          {"Subject", " abuse"},
          {"Date", " Mon, 23 Nov 2026 10:00:00 +0000"},
          {"Message-ID", " <abuse@abuse.example>"}};
}

// sane - the daemon still serves a new connection correctly: an SPF-aligned
// message passes, a spoof of p=reject is rejected.
void sane(const MilterProcess& milter) {
  INFO("sanity check after the abuse");
  REQUIRE(milter.running());
  auto good = open_client(milter, "192.0.2.10", "mx.reject.example");
  Result g = send(*good, "SANE1", "alice@reject.example", fields_from("alice@reject.example"), "ok\r\n");
  CHECK(g.verdict == Verdict::Accept);
  CHECK(g.auth_results.find("dmarc=pass") != std::string::npos);
  good->close();
  auto bad = open_client(milter, "198.51.100.77", "spoofer.example");
  Result b = send(*bad, "SANE2", "ceo@spoofer.example", fields_from("ceo@reject.example"), "pay\r\n");
  CHECK(b.verdict == Verdict::Reject);
  CHECK(b.text.rfind("550 5.7.1", 0) == 0);
  bad->close();
}

// --- raw bytes ---------------------------------------------------------------------

std::string u32(std::uint32_t v) {
  std::string s(4, '\0');
  s[0] = static_cast<char>(v >> 24);
  s[1] = static_cast<char>(v >> 16);
  s[2] = static_cast<char>(v >> 8);
  s[3] = static_cast<char>(v);
  return s;
}

std::string packet(char cmd, const std::string& data) { return u32(static_cast<std::uint32_t>(data.size() + 1)) + cmd + data; }

// RawMilter - a TCP connection to the daemon that sends whatever it is told.
class RawMilter {
 public:
  explicit RawMilter(std::uint16_t port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  }
  ~RawMilter() { close(); }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  // write - false when the daemon has closed its end (EPIPE/ECONNRESET).
  bool write(const std::string& bytes) {
    std::size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<std::size_t>(n);
    }
    return true;
  }
  // negotiate - SMFIC_OPTNEG, version 6, every action, no protocol flags
  // (so every step is answered); true when the daemon answered 'O'.
  bool negotiate() {
    if (!write(packet('O', u32(6) + u32(0x1ff) + u32(0)))) return false;
    auto [cmd, data] = read_packet(5000ms);
    return cmd == 'O';
  }
  // read_packet - one reply packet; cmd 0 at EOF/error, '?' on timeout.
  std::pair<char, std::string> read_packet(std::chrono::milliseconds wait) {
    std::string head = read_n(5, wait);
    if (head.size() < 5) return {head == "?" ? '?' : '\0', {}};
    std::uint32_t len = (static_cast<std::uint32_t>(static_cast<unsigned char>(head[0])) << 24) |
                        (static_cast<std::uint32_t>(static_cast<unsigned char>(head[1])) << 16) |
                        (static_cast<std::uint32_t>(static_cast<unsigned char>(head[2])) << 8) |
                        static_cast<unsigned char>(head[3]);
    if (len == 0 || len > (1u << 20)) return {'\0', {}};
    std::string data = read_n(len - 1, wait);
    return {head[4], data};
  }
  // closed_by_peer - true once the daemon closes the connection (EOF or
  // reset) within WAIT, draining anything it still sends.
  bool closed_by_peer(std::chrono::milliseconds wait) {
    const auto end = Clock::now() + wait;
    char buf[4096];
    while (Clock::now() < end) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return true;
    }
    return false;
  }

 private:
  std::string read_n(std::size_t n, std::chrono::milliseconds wait) {
    std::string out;
    const auto end = Clock::now() + wait;
    while (out.size() < n) {
      if (Clock::now() > end) return "?";
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      char buf[4096];
      ssize_t k = ::recv(fd_, buf, std::min(sizeof buf, n - out.size()), 0);
      if (k <= 0) return out;
      out.append(buf, static_cast<std::size_t>(k));
    }
    return out;
  }
  int fd_ = -1;
};

// A connect packet for 192.0.2.10 (SMFIC_CONNECT: host, family '4', port, address).
std::string connect_packet() { return packet('C', std::string("client.example\0" "4\0\x19" "192.0.2.10\0", 29)); }

}  // namespace

// --- aborts and dropped connections ------------------------------------------------

TEST_CASE("milter abuse: abort mid-message, then the next message on the connection", "[e2e][abuse]") {
  MilterProcess milter(config());
  auto c = open_client(milter, "198.51.100.77", "spoofer.example");
  // A spoof aborted after half its header, then after half its body: no
  // verdict is owed for either, and nothing of them leaks into the next.
  envelope(*c, "AB1", "ceo@spoofer.example");
  c->header("From", " ceo@reject.example");
  c->abort();
  envelope(*c, "AB2", "ceo@spoofer.example");
  for (const auto& [n, v] : fields_from("ceo@reject.example")) c->header(n, v);
  c->eoh({{"i", "AB2"}});
  c->body("half a bo");
  c->abort();
  // The same connection, a message with no From: BadFromAction reject, not
  // the aborted message's From.
  envelope(*c, "AB3", "bounce@relay.example");
  c->header("Subject", " no from here");
  c->eoh({{"i", "AB3"}});
  Reply r = c->end_of_body({{"i", "AB3"}});
  CHECK(r.verdict == Verdict::Reject);
  CHECK(r.text.find("5.7.1") != std::string::npos);
  c->close();
  sane(milter);
  CHECK(milter.log().find("internal error") == std::string::npos);
  CHECK(milter.stop() == 0);
}

TEST_CASE("milter abuse: connections dropped mid-header and mid-body leak nothing", "[e2e][abuse][leak]") {
  MilterProcess milter(config());
  sane(milter);
  const std::size_t fds0 = settle_fds(milter.pid(), 0, 1000);
  const long rss0 = status_value(milter.pid(), "VmRSS");
  const long threads0 = status_value(milter.pid(), "Threads");
  for (int i = 0; i < 60; ++i) {
    RawMilter m(milter.port());
    REQUIRE(m.negotiate());
    REQUIRE(m.write(connect_packet()));
    CHECK(m.read_packet(5000ms).first == 'c');
    REQUIRE(m.write(packet('M', std::string("<ceo@spoofer.example>\0", 22))));
    CHECK(m.read_packet(5000ms).first == 'c');
    std::string hdr = packet('L', std::string("From\0 ceo@reject.example\0", 25));
    if (i % 2 == 0) {
      // Half a header packet (the length promises more), then gone.
      m.write(hdr.substr(0, hdr.size() / 2));
    } else {
      // A whole header and half a body chunk.
      m.write(hdr);
      m.read_packet(5000ms);
      std::string body = packet('B', std::string(30000, 'b'));
      m.write(body.substr(0, 12000));
    }
    m.close();
  }
  sane(milter);
  const std::size_t fds1 = settle_fds(milter.pid(), fds0);
  const long rss1 = status_value(milter.pid(), "VmRSS");
  INFO("fds " << fds0 << " -> " << fds1 << ", RSS " << rss0 << " -> " << rss1 << " kB, threads " << threads0 << " -> "
              << status_value(milter.pid(), "Threads"));
  CHECK(fds1 <= fds0 + 4);
  CHECK(rss1 - rss0 < 20 * 1024);  // 60 sessions gone: nowhere near 100 kB each kept
  CHECK(milter.log().find("internal error") == std::string::npos);
  CHECK(milter.stop() == 0);
}

TEST_CASE("milter abuse: a body with no end, the connection left open or closed", "[e2e][abuse][leak]") {
  MilterProcess milter(config());
  sane(milter);
  const std::size_t fds0 = settle_fds(milter.pid(), 0, 1000);
  const long rss0 = status_value(milter.pid(), "VmRSS");
  // 20 connections each send a DKIM-signed message's header and 2 MB of
  // body, and never end of message; they stay open while others are served.
  const std::string signed_text = dkim_sign_message(
      "From: news@reject.example\r\nTo: postmaster@mx.abuse.example\r\nSubject: endless\r\n"
      "Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <endless@abuse.example>\r\n\r\nstart\r\n",
      "reject.example", "e2e", kKey);
  const dmarc::milter::SplitMessage parts = dmarc::milter::split_message(signed_text);
  const std::string chunk(65535, 'z');
  long rss_round1 = 0, rss_open = 0;
  for (int round = 0; round < 3; ++round) {
    std::vector<std::unique_ptr<MilterClient>> open;
    for (int i = 0; i < 20; ++i) {
      auto c = open_client(milter, "198.51.100.77", "relay.example");
      envelope(*c, "ENDLESS" + std::to_string(i), "bounce@relay.example");
      for (const auto& [n, v] : parts.headers) c->header(n, v);
      c->eoh({{"i", "E"}});
      for (int k = 0; k < 32; ++k) c->body(chunk);
      c->send();
      open.push_back(std::move(c));
    }
    // While they hang, other mail is served.
    sane(milter);
    rss_open = std::max(rss_open, status_value(milter.pid(), "VmRSS"));
    // Then the MTA goes away without end of message or abort.
    open.clear();  // ~MilterClient sends SMFIC_QUIT in the middle of a body
    if (round == 0) {
      settle_fds(milter.pid(), fds0);
      rss_round1 = status_value(milter.pid(), "VmRSS");
    }
  }
  // Bounded: the memory 20 sessions in flight take (libmilter's 64 KiB
  // packet buffers in glibc's per-thread arenas) is reused, not added to
  // round after round.
  const long rss_round3 = status_value(milter.pid(), "VmRSS");
  INFO("RSS " << rss0 << " kB before, at most " << rss_open << " kB with 20 endless bodies open, " << rss_round1
              << " kB after round 1, " << rss_round3 << " kB after round 3");
  CHECK(rss_open - rss0 < 150 * 1024);
  CHECK(rss_round3 - rss0 < 150 * 1024);  // growth between rounds: see the fault table (open)
  for (int i = 0; i < 20; ++i) {
    RawMilter m(milter.port());
    REQUIRE(m.negotiate());
    m.write(connect_packet());
    m.write(packet('M', std::string("<bounce@relay.example>\0", 23)));
    m.write(packet('L', std::string("From\0 news@reject.example\0", 26)));
    m.write(packet('N', ""));
    m.write(packet('B', std::string(60000, 'y')));
    m.close();  // no QUIT: the connection just ends
  }
  sane(milter);
  const std::size_t fds1 = settle_fds(milter.pid(), fds0);
  const long rss1 = status_value(milter.pid(), "VmRSS");
  INFO("fds " << fds0 << " -> " << fds1 << "; RSS " << rss0 << " -> " << rss1 << " kB");
  CHECK(fds1 <= fds0 + 4);
  CHECK(rss1 - rss0 < 150 * 1024);
  // No message is left open: SIGTERM stops well before its 30 s drain.
  const auto t = Clock::now();
  CHECK(milter.stop() == 0);
  CHECK(Clock::now() - t < 15s);
  CHECK(milter.log().find("internal error") == std::string::npos);
}

// --- size -------------------------------------------------------------------------------

TEST_CASE("milter abuse: 10 000 header fields", "[e2e][abuse][size]") {
  MilterProcess milter(config());
  const long rss0 = status_value(milter.pid(), "VmRSS");
  std::vector<std::pair<std::string, std::string>> many;
  for (int i = 0; i < 10000; ++i) many.emplace_back("X-Filler-" + std::to_string(i), " value number " + std::to_string(i));
  SECTION("a spoof is still rejected, an aligned message still passes") {
    auto f = fields_from("ceo@reject.example");
    f.insert(f.begin() + 2, many.begin(), many.end());
    auto c = open_client(milter, "198.51.100.77", "spoofer.example");
    const auto t = Clock::now();
    Result r = send(*c, "MANY1", "ceo@spoofer.example", f, "pay\r\n");
    CHECK(r.verdict == Verdict::Reject);
    CHECK(Clock::now() - t < 30s);  // a hang bound, not a speed test
    c->close();
    auto g = open_client(milter, "192.0.2.10", "mx.reject.example");
    auto fg = fields_from("alice@reject.example");
    fg.insert(fg.end(), many.begin(), many.end());
    Result rg = send(*g, "MANY2", "alice@reject.example", fg, "ok\r\n");
    CHECK(rg.verdict == Verdict::Accept);
    CHECK(rg.auth_results.find("dmarc=pass") != std::string::npos);
    g->close();
  }
  SECTION("and 10 000 From fields: several From, BadFromAction-free multi-From rule") {
    std::vector<std::pair<std::string, std::string>> froms;
    for (int i = 0; i < 10000; ++i) froms.emplace_back("From", " u" + std::to_string(i) + "@d" + std::to_string(i) + ".example");
    auto c = open_client(milter, "198.51.100.77", "spoofer.example");
    Result r = send(*c, "MANY3", "ceo@spoofer.example", froms, "x\r\n");
    // More than MaxFromDomains (4) From domains: BadFromAction (reject).
    CHECK(r.verdict == Verdict::Reject);
    c->close();
  }
  SECTION("a DKIM-signed message under 10 000 unsigned fields still verifies") {
    std::string text = dkim_sign_message(
        "From: news@reject.example\r\nTo: postmaster@mx.abuse.example\r\nSubject: signed\r\n"
        "Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <many@abuse.example>\r\n\r\nSigned.\r\n",
        "reject.example", "e2e", kKey);
    auto parts = dmarc::milter::split_message(text);
    auto f = parts.headers;
    f.insert(f.end(), many.begin(), many.end());  // after the signed ones
    auto c = open_client(milter, "198.51.100.77", "relay.example");
    Result r = send(*c, "MANY4", "bounce@relay.example", f, parts.body);
    CHECK(r.verdict == Verdict::Accept);
    INFO(r.auth_results);
    CHECK(r.auth_results.find("dkim=pass") != std::string::npos);
    CHECK(r.auth_results.find("dmarc=pass") != std::string::npos);
    c->close();
  }
  sane(milter);
  const long rss1 = status_value(milter.pid(), "VmRSS");
  INFO("RSS " << rss0 << " -> " << rss1 << " kB");
  CHECK(rss1 - rss0 < 50 * 1024);
  CHECK(milter.log().find("internal error") == std::string::npos);
  CHECK(milter.stop() == 0);
}

// Hidden ([.]): fails until dmarc-milter raises libmilter's packet limit
// (/tmp/faults-maxdatasize.patch, smfi_setmaxdatasize; not yet checked
// against Postfix's option negotiation). Run with '[known-bug]'.
TEST_CASE("milter abuse: a 100 KB header field (Postfix's header_size_limit) is handled", "[.][known-bug][e2e][abuse][size]") {
  // Postfix passes a header field of up to header_size_limit (102400
  // octets) to the milter in one SMFIC_HEADER packet; libmilter's default
  // packet limit is 65535 octets, beyond which it drops the connection and
  // the MTA applies milter_default_action (accept, as README.md
  // recommends): a spoof would go through unchecked.
  MilterProcess milter(config());
  for (std::size_t size : {std::size_t(70 * 1024), std::size_t(102400)}) {
    INFO("a field of " << size << " octets");
    auto f = fields_from("ceo@reject.example");
    f.insert(f.begin() + 1, {"X-Junk", " " + std::string(size, 'j')});
    auto c = open_client(milter, "198.51.100.77", "spoofer.example");
    Result r;
    try {
      r = send(*c, "HUGE", "ceo@spoofer.example", f, "pay\r\n");
    } catch (const std::exception& e) {
      FAIL("the milter dropped the connection: " << e.what());
    }
    CHECK(r.verdict == Verdict::Reject);
    c->close();
  }
  SECTION("the From field itself 100 KB long") {
    // Longer than the From parser reads (kMaxFromHeaderLength): BadFromAction.
    auto f = fields_from("ceo@reject.example");
    f[0].second = " " + std::string(100 * 1024, 'x') + " <ceo@reject.example>";
    auto c = open_client(milter, "198.51.100.77", "spoofer.example");
    Result r = send(*c, "HUGEFROM", "ceo@spoofer.example", f, "pay\r\n");
    CHECK(r.verdict == Verdict::Reject);
    c->close();
  }
  sane(milter);
  CHECK(milter.stop() == 0);
}

TEST_CASE("milter abuse: a 1 MB header field", "[e2e][abuse][size]") {
  // Beyond any packet size libmilter accepts: it drops that connection (no
  // reply); the MTA applies its milter_default_action. No MTA sends one
  // (Postfix's header_size_limit is 100 KiB, Sendmail's MaxHeadersLength
  // 32 KiB): the point is that the daemon survives and stays bounded.
  MilterProcess milter(config());
  const long rss0 = status_value(milter.pid(), "VmRSS");
  const std::size_t fds0 = settle_fds(milter.pid(), 0, 1000);
  for (int i = 0; i < 5; ++i) {
    RawMilter m(milter.port());
    REQUIRE(m.negotiate());
    m.write(connect_packet());
    m.read_packet(5000ms);
    m.write(packet('M', std::string("<ceo@spoofer.example>\0", 22)));
    m.read_packet(5000ms);
    std::string value(1024 * 1024, 'h');
    m.write(packet('L', "X-Huge" + std::string(1, '\0') + value + std::string(1, '\0')));
    // Either a reply or the connection dropped, within a bound; never a hang.
    auto [cmd, data] = m.read_packet(10000ms);
    CHECK(cmd != '?');
    if (cmd != '\0') CHECK(m.closed_by_peer(10000ms));
  }
  sane(milter);
  CHECK(settle_fds(milter.pid(), fds0) <= fds0 + 4);
  CHECK(status_value(milter.pid(), "VmRSS") - rss0 < 30 * 1024);
  CHECK(milter.stop() == 0);
}

// --- odd bytes ----------------------------------------------------------------------------

TEST_CASE("milter abuse: NUL bytes in header values and the body", "[e2e][abuse][bytes]") {
  MilterProcess milter(config());
  SECTION("NUL inside From cuts the value where libmilter cuts it, and the spoof is still caught") {
    // SMFIC_HEADER is "name\0value\0": libmilter hands the value up to its
    // first NUL. "ceo@reject.example\0@spoofer.example" is read as
    // ceo@reject.example, which is what a reader of the C string sees too.
    auto f = fields_from("x");
    f[0].second = std::string(" ceo@reject.example\0@spoofer.example", 36);
    auto c = open_client(milter, "198.51.100.77", "spoofer.example");
    Result r = send(*c, "NUL1", "ceo@spoofer.example", f, "x\r\n");
    CHECK(r.verdict == Verdict::Reject);
    c->close();
  }
  SECTION("a From that is only a NUL has no domain: BadFromAction reject") {
    auto f = fields_from("x");
    f[0].second = std::string("\0ceo@reject.example", 19);
    auto c = open_client(milter, "198.51.100.77", "spoofer.example");
    Result r = send(*c, "NUL2", "ceo@spoofer.example", f, "x\r\n");
    CHECK(r.verdict == Verdict::Reject);
    c->close();
  }
  SECTION("NUL bytes in a signed body are hashed like any octet") {
    std::string body = std::string("before\0after\r\n", 14) + std::string(1000, '\0') + "\r\n";
    std::string text = dkim_sign_message(
        "From: news@reject.example\r\nTo: postmaster@mx.abuse.example\r\nSubject: nul\r\n"
        "Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <nul@abuse.example>\r\n\r\n" + body,
        "reject.example", "e2e", kKey);
    auto c = open_client(milter, "198.51.100.77", "relay.example");
    Result r = send_text(*c, "NUL3", "bounce@relay.example", text);
    CHECK(r.verdict == Verdict::Accept);
    INFO(r.auth_results);
    CHECK(r.auth_results.find("dkim=pass") != std::string::npos);
    c->close();
    // And altered by one NUL: the body hash fails, the spoof-by-replay is not a pass.
    std::string altered = text;
    altered[altered.size() - 3] = 'X';
    auto d = open_client(milter, "198.51.100.77", "relay.example");
    Result ra = send_text(*d, "NUL4", "bounce@relay.example", altered);
    CHECK(ra.verdict == Verdict::Reject);
    CHECK(ra.auth_results.find("dkim=pass") == std::string::npos);
    d->close();
  }
  sane(milter);
  CHECK(milter.log().find("internal error") == std::string::npos);
  CHECK(milter.stop() == 0);
}

TEST_CASE("milter abuse: bare LF and bare CR in header values and the body", "[e2e][abuse][bytes]") {
  MilterProcess milter(config());
  SECTION("a From folded with bare LF or bare CR names the same author") {
    for (const char* fold : {"\n", "\r", "\r\n", "\n\r"}) {
      INFO("fold " << (fold[0] == '\n' ? "LF" : "CR") << (fold[1] ? "+" : ""));
      auto f = fields_from("x");
      f[0].second = std::string(" Chief Executive") + fold + " <ceo@reject.example>";
      auto c = open_client(milter, "198.51.100.77", "spoofer.example");
      Result r = send(*c, "BARE1", "ceo@spoofer.example", f, "x\r\n");
      CHECK(r.verdict == Verdict::Reject);
      c->close();
    }
  }
  SECTION("a bare CR or LF inside the address does not hide the domain") {
    for (const char* v : {" ceo@reject.example\r", " ceo@reject.example\n", " ceo@\rreject.example", " ceo@reject.\nexample"}) {
      auto f = fields_from("x");
      f[0].second = v;
      auto c = open_client(milter, "198.51.100.77", "spoofer.example");
      Result r = send(*c, "BARE2", "ceo@spoofer.example", f, "x\r\n");
      INFO("From value [" << v << "]");
      // Either reject.example's policy or BadFromAction: both reject; never accepted.
      CHECK(r.verdict == Verdict::Reject);
      c->close();
    }
  }
  SECTION("a signed body whose CRLFs became bare LF or bare CR: no pass, the policy applies") {
    // RFC 6376 3.4: only CRLF ends a line; a body re-ended with bare LF or
    // CR is another body, its hash fails, and the p=reject of the signer's
    // (author's) domain applies. The unaltered message passes.
    const std::string text = dkim_sign_message(
        "From: news@reject.example\r\nTo: postmaster@mx.abuse.example\r\nSubject: bare\r\n"
        "Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <bare@abuse.example>\r\n\r\n"
        "line one\r\nline two\r\nline three\r\n",
        "reject.example", "e2e", kKey);
    const dmarc::milter::SplitMessage parts = dmarc::milter::split_message(text);
    for (const char* end : {"\r\n", "\n", "\r"}) {
      INFO("line end " << (std::string(end) == "\r\n" ? "CRLF" : std::string(end) == "\n" ? "LF" : "CR"));
      std::string body;
      for (std::size_t i = 0; i < parts.body.size(); ++i) {
        if (parts.body.compare(i, 2, "\r\n") == 0) {
          body += end;
          ++i;
        } else {
          body += parts.body[i];
        }
      }
      auto c = open_client(milter, "198.51.100.77", "relay.example");
      Result r = send(*c, "BARE3", "bounce@relay.example", parts.headers, body);
      INFO(r.auth_results);
      if (std::string(end) == "\r\n") {
        CHECK(r.verdict == Verdict::Accept);
        CHECK(r.auth_results.find("dkim=pass") != std::string::npos);
      } else {
        CHECK(r.verdict == Verdict::Reject);
        CHECK(r.auth_results.find("dkim=pass") == std::string::npos);
      }
      c->close();
    }
  }
  // Our own Authentication-Results never carries a CR or LF from the input.
  sane(milter);
  CHECK(milter.log().find("internal error") == std::string::npos);
  CHECK(milter.stop() == 0);
}

TEST_CASE("milter abuse: invalid UTF-8 in From", "[e2e][abuse][bytes]") {
  MilterProcess milter(config());
  struct Case {
    std::string value;
    Verdict verdict;
    const char* why;
  };
  const std::vector<Case> cases = {
      // Bad bytes in the display name: the address is still read.
      {" \xC3\x28\xFF\xFE Boss <ceo@reject.example>", Verdict::Reject, "display name"},
      // Overlong and truncated sequences in the local part.
      {" \xC0\xAF\xE2\x82@reject.example", Verdict::Reject, "local part"},
      // In the domain: not a domain name; BadFromAction (reject).
      {" ceo@reject\xFF.example", Verdict::Reject, "domain"},
      {" ceo@\xED\xA0\x80.example", Verdict::Reject, "surrogate in the domain"},
  };
  for (const auto& k : cases) {
    INFO(k.why);
    auto f = fields_from("x");
    f[0].second = k.value;
    auto c = open_client(milter, "198.51.100.77", "spoofer.example");
    Result r = send(*c, "UTF8", "ceo@spoofer.example", f, "x\r\n");
    CHECK(r.verdict == k.verdict);
    // The reply text is printable ASCII (message_policy.cpp fill_reply_text).
    for (unsigned char ch : r.text) CHECK((ch >= 0x20 && ch < 0x7f));
    c->close();
  }
  // The log line is printable too: no raw byte of the From reaches it.
  const std::string log = milter.log();
  CHECK(log.find('\xFF') == std::string::npos);
  CHECK(log.find('\xC0') == std::string::npos);
  sane(milter);
  CHECK(milter.log().find("internal error") == std::string::npos);
  CHECK(milter.stop() == 0);
}

// --- not the milter protocol -------------------------------------------------------------------

TEST_CASE("milter abuse: garbage packets end that connection only", "[e2e][abuse][garbage]") {
  MilterProcess milter(config());
  sane(milter);
  const std::size_t fds0 = settle_fds(milter.pid(), 0, 1000);
  struct Case {
    const char* name;
    bool negotiate;  // send a proper SMFIC_OPTNEG first
    std::string bytes;
  };
  const std::vector<Case> cases = {
      {"length 0", true, u32(0) + "C"},
      {"length 2^31", true, u32(0x80000000u) + "L"},
      {"length 2^32-1", true, u32(0xffffffffu) + "B"},
      {"length 2^31 before negotiation", false, u32(0x80000000u) + "O"},
      {"unknown command", true, packet('Z', "what is this")},
      {"unknown command before negotiation", false, packet('Z', "")},
      {"negotiation too short", false, packet('O', std::string("\0\0\0\x06", 4))},
      {"negotiation version 1", false, packet('O', u32(1) + u32(0) + u32(0))},
      {"header without NULs", true, connect_packet() + packet('M', std::string("<a@b.example>\0", 14)) + packet('L', "From")},
      {"macro packet without NULs", true, packet('D', "Cjmx")},
      {"macro for an unknown command", true, packet('D', std::string("\x01j\0x\0", 5))},
      {"end of message before any message", true, packet('E', "")},
      {"body before connect", true, packet('B', "body")},
      {"connect with family '6' and an IPv4 address", true, packet('C', std::string("h\0" "6\0\x19" "192.0.2.1\0", 15))},
      {"connect with unknown family", true, packet('C', std::string("h\0" "X\0\x19" "x\0", 7))},
      {"mail with no argument", true, connect_packet() + packet('M', "")},
      {"a length longer than what follows, then EOF", true, u32(5000) + "L" + "From"},
  };
  for (const auto& k : cases) {
    INFO(k.name);
    RawMilter m(milter.port());
    if (k.negotiate) REQUIRE(m.negotiate());
    m.write(k.bytes);
    if (std::string(k.name).find("then EOF") != std::string::npos) {
      m.close();
      continue;
    }
    // The daemon may answer (continue, tempfail) but must end or keep the
    // connection sanely: we give it 10 s to either close it or answer
    // every packet; then we hang up ourselves.
    const auto t = Clock::now();
    bool closed = m.closed_by_peer(3000ms);
    INFO("closed by the daemon: " << closed);
    CHECK(Clock::now() - t < 10s);
    m.close();
    REQUIRE(milter.running());
  }
  sane(milter);
  CHECK(settle_fds(milter.pid(), fds0) <= fds0 + 4);
  CHECK(milter.stop() == 0);
}

TEST_CASE("milter abuse: random bytes after negotiation, 300 connections", "[e2e][abuse][garbage]") {
  MilterProcess milter(config());
  sane(milter);
  const std::size_t fds0 = settle_fds(milter.pid(), 0, 1000);
  const long rss0 = status_value(milter.pid(), "VmRSS");
  std::mt19937 rng(20261207);  // fixed: a failure replays
  const std::string cmds = "ABCDEHKLMNOQRTUZ\x01\xff";
  for (int i = 0; i < 300; ++i) {
    RawMilter m(milter.port());
    if (i % 3 != 0) REQUIRE(m.negotiate());
    std::string bytes;
    if (i % 2 == 0) {
      // Well-framed packets of random commands and contents.
      for (int k = 0; k < 8; ++k) {
        std::string data(rng() % 64, '\0');
        for (char& ch : data) ch = static_cast<char>(rng() % 4 == 0 ? 0 : rng());
        bytes += packet(cmds[rng() % cmds.size()], data);
      }
    } else {
      bytes.resize(rng() % 256);
      for (char& ch : bytes) ch = static_cast<char>(rng());
    }
    m.write(bytes);
    m.closed_by_peer(100ms);
    m.close();
  }
  REQUIRE(milter.running());
  sane(milter);
  const std::size_t fds1 = settle_fds(milter.pid(), fds0);
  INFO("fds " << fds0 << " -> " << fds1);
  CHECK(fds1 <= fds0 + 4);
  CHECK(status_value(milter.pid(), "VmRSS") - rss0 < 30 * 1024);
  CHECK(milter.stop() == 0);
}

// --- DNS faults at the message level ----------------------------------------------------
//
// What the milter answers when its DNS fails (the resolver's side is in
// tests/adapters/test_dns_faults.cpp): a lookup that cannot be completed
// is dmarc=temperror, and DNSFailureAction says accept (the default; our
// Authentication-Results says dmarc=temperror) or 451 4.7.1. Everything
// within DNSMessageTimeout (one TCP wait more at most), never the MTA's
// milter timeouts.

namespace {

// dns_config - the daemon on NAMESERVER, short timeouts, ACTION on failure.
std::string dns_config(const std::string& nameserver, const std::string& action) {
  return "Syslog no\nLogLevel info\nAuthservID mx.abuse.example\nNameservers " + nameserver +
         "\nDNSTimeout 1\nDNSRetries 1\nDNSMessageTimeout 3\nRejectFailures yes\nDNSFailureAction " + action + "\n";
}

// timed - one message on a new connection, with how long end of message took to answer.
Result timed(const MilterProcess& milter, const std::string& ip, const std::string& mail_from, const std::string& from,
             Clock::duration* took) {
  auto c = open_client(milter, ip, "client.example", 60000);
  const auto t = Clock::now();
  Result r = send(*c, "DNSF", mail_from, fields_from(from), "x\r\n");
  *took = Clock::now() - t;
  c->close();
  return r;
}

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

// dnsfault.example: p=reject; an oversized DMARC record at big.; a CNAME
// loop at _dmarc.loop.; an SPF record of 64 KB at bigspf.
std::string dnsfault_zone() {
  std::ostringstream z;
  z << "$ORIGIN dnsfault.example.\n$TTL 300\n"
       "@ IN SOA ns.dnsfault.example. hostmaster.dnsfault.example. 1 3600 600 86400 60\n"
       "@ IN NS ns\nns IN A 192.0.2.53\n"
       "@ IN TXT \"v=spf1 ip4:192.0.2.0/24 -all\"\n"
       "_dmarc IN TXT \"v=DMARC1; p=reject\"\n"
       "_dmarc.loop IN CNAME _dmarc.loop2\n_dmarc.loop2 IN CNAME _dmarc.loop\n"
       "loop IN A 192.0.2.25\n";
  // 63 KB of DMARC record: a p=none start and unknown tags (ignored).
  z << "_dmarc.big IN TXT \"v=DMARC1; p=none;\"";
  for (int i = 0; i < 249; ++i) {
    std::string s = "x" + std::to_string(i) + "=";
    s.resize(254, 'q');
    z << " " << quoted(s + ";");
  }
  z << "\nbig IN A 192.0.2.25\n";
  // 64 KB of SPF record: 3000 ip4 mechanisms that never match, then the
  // one that does.
  z << "bigspf IN TXT \"v=spf1\"";
  std::string cur;
  for (int i = 0; i < 3000; ++i) {
    std::string mech = " ip4:198.18." + std::to_string(i / 250) + "." + std::to_string(i % 250);
    if (cur.size() + mech.size() > 255) {
      z << " " << quoted(cur);
      cur.clear();
    }
    cur += mech;
  }
  z << " " << quoted(cur) << " \" ip4:192.0.2.0/24 -all\"\n";
  z << "_dmarc.bigspf IN TXT \"v=DMARC1; p=reject\"\n";
  return z.str();
}

NsdServerOptions fault_zones() {
  NsdServerOptions o;
  o.zone_dir = kZones;
  o.extra_zones["dnsfault.example"] = dnsfault_zone();
  return o;
}

}  // namespace

TEST_CASE("milter dns fault: nameserver timeout, SERVFAIL, TC with TCP refused, per DNSFailureAction",
          "[e2e][abuse][dns]") {
  struct Fault {
    const char* name;
    std::function<std::string(const std::string&, bool)> handler;
  };
  const std::vector<Fault> faults = {
      {"timeout", [](const std::string&, bool) { return std::string(); }},
      {"SERVFAIL", [](const std::string& q, bool) { return dns_reply(q, 2); }},
      {"TC, TCP refused", [](const std::string& q, bool) { return dns_reply(q, 0, 0x0200); }},
  };
  for (const auto& fault : faults) {
    for (const std::string action : {"accept", "tempfail"}) {
      INFO(fault.name << ", DNSFailureAction " << action);
      FaultDnsServer dns(fault.handler, TcpMode::Refuse);
      MilterProcess milter(dns_config(dns.address(), action));
      Clock::duration took{};
      Result r = timed(milter, "198.51.100.77", "ceo@spoofer.example", "ceo@reject.example", &took);
      if (action == "accept") {
        CHECK(r.verdict == Verdict::Accept);
        CHECK(r.auth_results.find("dmarc=temperror") != std::string::npos);
      } else {
        CHECK(r.verdict == Verdict::TempFail);
        CHECK(r.text.rfind("451 4.7.1", 0) == 0);
      }
      // DNSMessageTimeout 3: at most twice that, with slack for the machine.
      CHECK(took < 8s);
      CHECK(milter.wait_log("dmarc=temperror"));
      CHECK(milter.log().find("internal error") == std::string::npos);
      CHECK(milter.stop() == 0);
    }
  }
}

TEST_CASE("milter dns fault: oversized records and a CNAME loop at _dmarc", "[e2e][abuse][dns]") {
  NsdServer zones(fault_zones());
  MilterProcess milter(dns_config(zones.address(), "tempfail"));
  Clock::duration took{};
  SECTION("a 63 KB DMARC record (over TCP) is invalid (over 8192 octets): the walk goes on to p=reject") {
    // Its own p=none is never read: an oversized record cannot be used to
    // step out of the organizational domain's policy.
    Result r = timed(milter, "198.51.100.77", "ceo@spoofer.example", "ceo@big.dnsfault.example", &took);
    CHECK(r.verdict == Verdict::Reject);
    CHECK(r.text.rfind("550 5.7.1", 0) == 0);
  }
  SECTION("a 64 KB SPF record of 3001 mechanisms never passes: the p=reject applies") {
    Result r = timed(milter, "192.0.2.10", "alice@bigspf.dnsfault.example", "alice@bigspf.dnsfault.example", &took);
    INFO(r.auth_results);
    CHECK(r.verdict == Verdict::Reject);
    CHECK(r.text.rfind("550 5.7.1", 0) == 0);
  }
  SECTION("a CNAME loop at _dmarc.<domain>: no record there, the organizational domain's p=reject applies") {
    Result r = timed(milter, "198.51.100.77", "ceo@spoofer.example", "ceo@loop.dnsfault.example", &took);
    CHECK(r.verdict == Verdict::Reject);
    CHECK(r.text.rfind("550 5.7.1", 0) == 0);
  }
  CHECK(took < 8s);
  CHECK(milter.log().find("internal error") == std::string::npos);
  CHECK(milter.stop() == 0);
}

TEST_CASE("milter dns fault: NSD killed between messages and during one, then back", "[e2e][abuse][dns][kill]") {
  NsdServer zones(fault_zones());
  NsdKiller killer(zones);
  MilterProcess milter(dns_config(zones.address(), "tempfail"));
  Clock::duration took{};
  // Up: a spoof of reject.example is rejected (and its answers cached).
  Result r1 = timed(milter, "198.51.100.77", "ceo@spoofer.example", "ceo@reject.example", &took);
  CHECK(r1.verdict == Verdict::Reject);

  REQUIRE(killer.kill());
  // Down, between messages: the cached policy still decides...
  Result r2 = timed(milter, "198.51.100.77", "ceo@spoofer.example", "ceo@reject.example", &took);
  CHECK(r2.verdict == Verdict::Reject);
  // ...a domain not yet looked up is a temporary failure (DNSFailureAction tempfail).
  Result r3 = timed(milter, "198.51.100.77", "ceo@spoofer.example", "ceo@quarantine.example", &took);
  CHECK(r3.verdict == Verdict::TempFail);
  CHECK(r3.text.rfind("451 4.7.1", 0) == 0);
  CHECK(took < 8s);

  // Back: the failure was not cached; the same message gets its verdict.
  REQUIRE(killer.restart());
  Result r4 = timed(milter, "198.51.100.77", "ceo@spoofer.example", "ceo@quarantine.example", &took);
  CHECK(r4.verdict == Verdict::Accept);  // p=quarantine, QuarantineAction header
  CHECK(r4.auth_results.find("dmarc=fail") != std::string::npos);

  SECTION("killed while a message's lookups wait") {
    killer.stop_process();  // hung: queries are queued, unanswered
    Result during;
    Clock::duration during_took{};
    std::thread mta([&] {
      during = timed(milter, "198.51.100.77", "ceo@spoofer.example", "ceo@testing.example", &during_took);
    });
    std::this_thread::sleep_for(500ms);
    REQUIRE(killer.kill());
    mta.join();
    CHECK(during.verdict == Verdict::TempFail);
    CHECK(during_took < 8s);
    REQUIRE(killer.restart());
    Result after = timed(milter, "192.0.2.10", "alice@reject.example", "alice@reject.example", &took);
    CHECK(after.verdict == Verdict::Accept);
    CHECK(after.auth_results.find("dmarc=pass") != std::string::npos);
  }
  CHECK(milter.log().find("internal error") == std::string::npos);
  CHECK(milter.stop() == 0);
}
