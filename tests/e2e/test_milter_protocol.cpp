// test_milter_protocol.cpp - the built dmarc-milter at the milter protocol level
//
// The MTA side is bench/'s MilterClient (the load generator's), which
// offers what Postfix offers (protocol 6, every no-reply flag) or, with
// flags withheld, plays an MTA that waits for a reply to every command. The
// daemon runs with its read buffer (milter_io.hpp) and without it
// (DMARC_MILTER_NO_READ_BUFFER=1); DNS is NSD serving tests/data/e2e/zones.
// Every combination must give the same verdicts and header edits: an
// unexpected or missing reply would desynchronise the client, which then
// reads the wrong verdict (or times out).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../bench/src/milter_client.hpp"
#include "milter/eval.hpp"
#include "support/dkim_signer.hpp"
#include "support/milter_process.hpp"
#include "support/nsd_server.hpp"

using namespace dmarc::test;
using bench::Macros;
using bench::MilterClient;
using bench::Reply;
using bench::Verdict;

namespace {

const std::string kZones = std::string(DMARC_TEST_DATA_DIR) + "/e2e/zones";
const std::string kKey = std::string(DMARC_TEST_DATA_DIR) + "/dkim/keys/rsa2048.pem";

// Every SMFIP_NR_* flag and SMFIP_SKIP: an MTA before protocol 6 offers none.
constexpr std::uint32_t kNoReplyFlags =
    0x80 | 0x1000 | 0x2000 | 0x4000 | 0x8000 | 0x10000 | 0x20000 | 0x40000 | 0x80000 | 0x400;

std::string config(const NsdServer& nsd) {
  return "Syslog no\nLogLevel info\nAuthservID mx.proto.example\nNameservers " + nsd.address() +
         "\nDNSTimeout 2\nRejectFailures yes\n";
}

struct Message {
  std::string ip, helo, mail_from, text;
};

struct Result {
  Verdict verdict = Verdict::Continue;
  std::string text;
  std::string auth_results;  // the inserted Authentication-Results value
};

// one - a message on an open connection, as Postfix sends it; abort after.
Result one(MilterClient& c, const Message& m, int n) {
  std::string qid = "PROTO" + std::to_string(n);
  std::string addr = m.mail_from.substr(1, m.mail_from.size() - 2);
  Result out;
  auto stop = [&](const Reply& r) {
    if (r.verdict == Verdict::Continue || r.verdict == Verdict::Skip) return false;
    out.verdict = r.verdict;
    out.text = r.text;
    return true;
  };
  if (stop(c.mail({{"i", qid}, {"{mail_addr}", addr}}, m.mail_from, {}))) return out;
  if (stop(c.rcpt({{"{rcpt_addr}", "postmaster@mx.proto.example"}}, "<postmaster@mx.proto.example>"))) return out;
  if (stop(c.data({{"i", qid}}))) return out;
  const dmarc::milter::SplitMessage parts = dmarc::milter::split_message(m.text);
  for (const auto& [name, value] : parts.headers)
    if (stop(c.header(name, value))) return out;
  if (stop(c.eoh({{"i", qid}}))) return out;
  for (std::size_t i = 0; i < parts.body.size(); i += 65535) {
    Reply r = c.body(std::string_view(parts.body).substr(i, 65535));
    if (r.verdict == Verdict::Skip) break;
    if (stop(r)) return out;
  }
  Reply r = c.end_of_body({{"i", qid}});
  out.verdict = r.verdict;
  out.text = r.text;
  for (const auto& mod : r.mods)
    if (mod.type == 'i' && mod.name == "Authentication-Results") out.auth_results = mod.value;
  c.abort();
  return out;
}

std::unique_ptr<MilterClient> open_client(const MilterProcess& milter, std::uint32_t withhold, const std::string& ip,
                                          const std::string& helo) {
  bench::ClientOptions o;
  o.withhold_protocol = withhold;
  o.timeout_ms = 10000;
  auto c = std::make_unique<MilterClient>(bench::parse_endpoint("inet:" + std::to_string(milter.port()) + "@127.0.0.1"), o);
  c->open();
  c->connect({{"j", "mx.proto.example"}}, "client.example", ip, 25);
  c->helo({}, helo);
  return c;
}

std::string message(const std::string& from, const std::string& subject, const std::string& body) {
  return "From: " + from + "\r\nTo: postmaster@mx.proto.example\r\nSubject: " + subject +
         "\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <" + subject + "@proto.example>\r\n\r\n" + body;
}

}  // namespace

TEST_CASE("milter protocol: same verdicts with and without no-reply steps and the read buffer",
          "[e2e][protocol]") {
  NsdServerOptions no;
  no.zone_dir = kZones;
  NsdServer nsd(no);

  // A 200 KB body in 65535-octet chunks, DKIM-signed by reject.example.
  std::string big_body;
  for (int i = 0; big_body.size() < 200 * 1024; ++i) big_body += "line " + std::to_string(i) + " of a long message body\r\n";
  const std::vector<Message> msgs = {
      {"192.0.2.10", "mx.reject.example", "<alice@reject.example>",
       message("alice@reject.example", "aligned", "SPF-aligned.\r\n")},
      {"198.51.100.77", "spoofer.example", "<ceo@spoofer.example>",
       message("ceo@reject.example", "spoof", "Pay this invoice.\r\n")},
      {"198.51.100.77", "relay.example", "<bounce@relay.example>",
       dkim_sign_message(message("news@reject.example", "signed", big_body), "reject.example", "e2e", kKey)},
  };
  struct Mode {
    const char* name;
    std::uint32_t withhold;
    bool buffer;
  };
  for (const Mode& mode : {Mode{"protocol 6 (Postfix), read buffer", 0, true},
                           Mode{"protocol 6 (Postfix), no read buffer", 0, false},
                           Mode{"replies to every step, read buffer", kNoReplyFlags, true},
                           Mode{"replies to every step, no read buffer", kNoReplyFlags, false}}) {
    INFO(mode.name);
    std::vector<std::string> env;
    if (!mode.buffer) env.push_back("DMARC_MILTER_NO_READ_BUFFER=1");
    MilterProcess milter(config(nsd), 0, env);
    // All three on one connection, twice over, as an MTA reuses it.
    auto c = open_client(milter, mode.withhold, "192.0.2.10", "mx.reject.example");
    for (int round = 0; round < 2; ++round) {
      for (std::size_t k = 0; k < msgs.size(); ++k) {
        INFO("message " << k << " round " << round);
        // The client address is per connection; messages 1 and 2 come from
        // 198.51.100.77 on connections of their own.
        if (k == 0) {
          Result r = one(*c, msgs[k], round * 10 + static_cast<int>(k));
          CHECK(r.verdict == Verdict::Accept);
          CHECK(r.auth_results.find("dmarc=pass") != std::string::npos);
          CHECK(r.auth_results.find("spf=pass") != std::string::npos);
          continue;
        }
        auto d = open_client(milter, mode.withhold, msgs[k].ip, msgs[k].helo);
        Result r = one(*d, msgs[k], round * 10 + static_cast<int>(k));
        if (k == 1) {
          CHECK(r.verdict == Verdict::Reject);
          CHECK(r.text.rfind("550 5.7.1", 0) == 0);
        } else {
          CHECK(r.verdict == Verdict::Accept);
          CHECK(r.auth_results.find("dkim=pass") != std::string::npos);
          CHECK(r.auth_results.find("dmarc=pass") != std::string::npos);
        }
        d->close();
      }
    }
    c->close();
    CHECK(milter.stop() == 0);
    CHECK(milter.log().find("claimed not to reply") == std::string::npos);
    CHECK(milter.log().find("internal error") == std::string::npos);
  }
}

TEST_CASE("milter protocol: a message begun while stopping is refused at end of message", "[e2e][protocol]") {
  NsdServerOptions no;
  no.zone_dir = kZones;
  NsdServer nsd(no);
  MilterProcess milter(config(nsd));
  const std::string text = message("alice@reject.example", "drain", "Hello.\r\n");
  Message m{"192.0.2.10", "mx.reject.example", "<alice@reject.example>", text};

  // A: a message under way when SIGTERM comes. MAIL FROM has no reply to
  // wait for; a second is ample for libmilter to take it (microseconds),
  // and the log line below proves it did.
  auto a = open_client(milter, 0, m.ip, m.helo);
  a->mail({{"i", "OPEN1"}, {"{mail_addr}", "alice@reject.example"}}, m.mail_from, {});
  a->rcpt({{"{rcpt_addr}", "postmaster@mx.proto.example"}}, "<postmaster@mx.proto.example>");
  a->send();
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  REQUIRE(kill(milter.pid(), SIGTERM) == 0);
  REQUIRE(milter.wait_log("letting 1 open message(s) finish"));

  // B: MAIL FROM now gets no reply of its own under protocol 6; the refusal
  // (451 4.3.2, the MTA retries) comes at end of message.
  auto b = open_client(milter, 0, m.ip, m.helo);
  Result rb = one(*b, m, 2);
  CHECK(rb.verdict == Verdict::TempFail);
  CHECK(rb.text.rfind("451 4.3.2", 0) == 0);

  // A's message is finished normally, then the milter stops.
  a->header("From", " alice@reject.example");
  a->eoh({{"i", "OPEN1"}});
  a->body(dmarc::milter::split_message(text).body);
  Reply ra = a->end_of_body({{"i", "OPEN1"}});
  CHECK(ra.verdict == Verdict::Accept);
  CHECK(milter.wait_log("dmarc-milter stopped"));
  CHECK(milter.stop() == 0);
}

TEST_CASE("milter protocol: SIGHUP reloads in a loop while messages flow", "[e2e][protocol][reload]") {
  // spdlog::set_default_logger is not safe while other threads log; the
  // logger is set once and a reload swaps only its sink and level
  // (src/milter/log.cpp). Four connections send messages without a pause
  // while the configuration is rewritten and reloaded 60 times, switching
  // the log level and a setting that changes verdicts' text; every message
  // must get its right verdict, the daemon must stay up, log each reload
  // and exit 0. (Run under ASan/UBSan with SANITIZE=1 tests/run-all.sh.)
  NsdServerOptions no;
  no.zone_dir = kZones;
  NsdServer nsd(no);
  MilterProcess milter(config(nsd));
  const Message spoof{"198.51.100.77", "spoofer.example", "<ceo@spoofer.example>",
                      message("ceo@reject.example", "spoof", "Pay this invoice.\r\n")};
  const Message good{"192.0.2.10", "mx.reject.example", "<alice@reject.example>",
                     message("alice@reject.example", "aligned", "SPF-aligned.\r\n")};
  std::atomic<bool> stop{false};
  std::atomic<int> sent{0}, wrong{0};
  std::vector<std::thread> senders;
  for (int t = 0; t < 4; ++t) {
    senders.emplace_back([&, t] {
      const Message& m = t % 2 ? spoof : good;
      auto c = open_client(milter, 0, m.ip, m.helo);
      for (int n = 0; !stop; ++n) {
        Result r = one(*c, m, t * 100000 + n);
        bool ok = t % 2 ? r.verdict == Verdict::Reject : r.verdict == Verdict::Accept;
        if (!ok) ++wrong;
        ++sent;
      }
      c->close();
    });
  }
  for (int i = 0; i < 60; ++i) {
    milter.rewrite_config(config(nsd) + (i % 2 ? "LogLevel debug\nRejectText Reload " + std::to_string(i) + " {domain}\n"
                                                : "LogLevel info\n"));
    milter.reload();
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  REQUIRE(milter.wait_log("configuration reloaded"));
  stop = true;
  for (auto& t : senders) t.join();
  CHECK(wrong == 0);
  CHECK(sent > 100);
  CHECK(milter.running());
  CHECK(milter.stop() == 0);
  std::size_t reloads = 0;
  const std::string log = milter.log();
  for (std::size_t p = log.find("configuration reloaded"); p != std::string::npos; p = log.find("configuration reloaded", p + 1))
    ++reloads;
  CHECK(reloads >= 50);  // SIGHUPs that arrive together may be merged by the kernel
  CHECK(log.find("internal error") == std::string::npos);
}

TEST_CASE("milter protocol: RCPT TO is asked for, without a reply under protocol 6", "[e2e][protocol]") {
  // dmarc-milter asks for RCPT TO (for the report records) with
  // SMFIP_NR_RCPT: a Postfix-like MTA waits for no reply; an MTA that
  // waits for every reply gets CONTINUE.
  NsdServerOptions no;
  no.zone_dir = kZones;
  NsdServer nsd(no);
  MilterProcess milter(config(nsd) + "LogLevel debug\n");
  const Message good{"192.0.2.10", "mx.reject.example", "<alice@reject.example>",
                     message("alice@reject.example", "rcpt", "Hello.\r\n")};
  for (std::uint32_t withhold : {0u, kNoReplyFlags}) {
    auto c = open_client(milter, withhold, good.ip, good.helo);
    for (int n = 0; n < 3; ++n) {
      Result r = one(*c, good, n);
      CHECK(r.verdict == Verdict::Accept);
    }
    c->close();
  }
  CHECK(milter.stop() == 0);
}

// --- metrics (MetricsListen, issue 15) ----------------------------------------

namespace {

// bound_loopback - a socket of TYPE bound to a free port on 127.0.0.1; the
// port, the socket in *FD.
std::uint16_t bound_loopback(int type, int* fd) {
  *fd = socket(AF_INET, type, 0);
  REQUIRE(*fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(*fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  getsockname(*fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

// A TCP port on 127.0.0.1 that was free a moment ago.
std::uint16_t free_tcp_port() {
  int fd = -1;
  std::uint16_t port = bound_loopback(SOCK_STREAM, &fd);
  close(fd);
  return port;
}

// http - one HTTP/1.0 request to 127.0.0.1:PORT; the whole response.
std::string http(std::uint16_t port, const std::string& request) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size()));
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  close(fd);
  return out;
}

// status_of - the status code of an HTTP response ("HTTP/1.1 200 OK"), or 0.
int status_of(const std::string& resp) {
  if (resp.rfind("HTTP/1.", 0) != 0 || resp.size() < 12) return 0;
  return std::atoi(resp.c_str() + 9);
}

// Scrape - /metrics parsed as the Prometheus text format 0.0.4: every
// line a "# HELP", a "# TYPE" or a sample "name{labels} value"; each
// sample's family has HELP and TYPE before it.
struct Scrape {
  std::map<std::string, double> samples;  // "name{labels}" -> value
  std::map<std::string, std::string> types;
  double at(const std::string& key) const {
    auto it = samples.find(key);
    if (it == samples.end()) FAIL("no sample " << key);
    return it->second;
  }
};

Scrape scrape(std::uint16_t port) {
  std::string resp = http(port, "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
  INFO(resp.substr(0, 300));
  REQUIRE(status_of(resp) == 200);
  REQUIRE(resp.find("Content-Type: text/plain; version=0.0.4") != std::string::npos);
  std::string body = resp.substr(resp.find("\r\n\r\n") + 4);
  Scrape s;
  std::set<std::string> helped;
  std::istringstream in(body);
  std::string line;
  const std::regex sample_re(R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-z_]+="[^"\\\n]*"(,[a-z_]+="[^"\\\n]*")*\})? (\S+)$)");
  while (std::getline(in, line)) {
    INFO(line);
    if (line.rfind("# HELP ", 0) == 0) {
      std::string name = line.substr(7, line.find(' ', 7) - 7);
      CHECK(helped.insert(name).second);  // one HELP per family
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream t(line.substr(7));
      std::string name, type;
      t >> name >> type;
      CHECK((type == "counter" || type == "gauge" || type == "histogram"));
      CHECK(helped.count(name) == 1);
      s.types[name] = type;
      continue;
    }
    std::smatch m;
    REQUIRE(std::regex_match(line, m, sample_re));
    std::string family = m[1];
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      std::string sfx = suffix;
      if (!s.types.count(family) && family.size() > sfx.size() &&
          family.compare(family.size() - sfx.size(), sfx.size(), sfx) == 0)
        family.resize(family.size() - sfx.size());
    }
    CHECK(s.types.count(family) == 1);
    CHECK(s.samples.emplace(std::string(m[1]) + std::string(m[2]), std::stod(m[4])).second);
  }
  return s;
}

}  // namespace

TEST_CASE("metrics: /metrics counts messages, results, actions, DNS and latency", "[e2e][protocol][metrics]") {
  NsdServerOptions no;
  no.zone_dir = kZones;
  NsdServer nsd(no);
  const std::uint16_t port = free_tcp_port();
  MilterProcess milter(config(nsd) + "MetricsListen 127.0.0.1:" + std::to_string(port) + "\n");
  REQUIRE(milter.wait_log("metrics at http://127.0.0.1:" + std::to_string(port) + "/metrics"));

  Scrape before = scrape(port);
  CHECK(before.at("dmarc_milter_messages_total") == 0);
  CHECK(before.types.at("dmarc_milter_message_seconds") == "histogram");

  const Message aligned{"192.0.2.10", "mx.reject.example", "<alice@reject.example>",
                        message("alice@reject.example", "aligned", "SPF-aligned.\r\n")};
  // Both carry a forged Authentication-Results with our authserv-id: only
  // the delivered one has it removed.
  const std::string forged = "Authentication-Results: mx.proto.example; dmarc=pass\r\n";
  const Message spoof{"198.51.100.77", "spoofer.example", "<ceo@spoofer.example>",
                      forged + message("ceo@reject.example", "spoof", "Pay this invoice.\r\n")};
  const Message forged_ok{"192.0.2.10", "mx.reject.example", "<alice@reject.example>",
                          forged + message("alice@reject.example", "forged-ok", "SPF-aligned.\r\n")};
  const Message signed_msg{"198.51.100.77", "relay.example", "<bounce@relay.example>",
                           dkim_sign_message(message("news@reject.example", "signed", "Signed.\r\n"), "reject.example",
                                             "e2e", kKey)};
  int n = 0;
  for (const Message* m : {&forged_ok, &spoof, &signed_msg, &aligned}) {
    auto c = open_client(milter, 0, m->ip, m->helo);
    one(*c, *m, ++n);
    c->close();
  }
  // Local (IgnoreHosts 127.0.0.1): counted, not checked.
  {
    auto c = open_client(milter, 0, "127.0.0.1", "localhost");
    Result r = one(*c, aligned, ++n);
    CHECK(r.verdict == Verdict::Accept);
    c->close();
  }

  Scrape s = scrape(port);
  CHECK(s.at("dmarc_milter_messages_total") == 5);
  CHECK(s.at("dmarc_milter_messages_unchecked_total") == 1);
  CHECK(s.at("dmarc_milter_forged_ar_removed_total") == 1);
  CHECK(s.at("dmarc_milter_internal_errors_total") == 0);
  CHECK(s.at("dmarc_milter_actions_total{action=\"reject\"}") == 1);
  CHECK(s.at("dmarc_milter_actions_total{action=\"accept\"}") == 4);
  CHECK(s.at("dmarc_milter_actions_total{action=\"quarantine\"}") == 0);
  CHECK(s.at("dmarc_milter_dmarc_results_total{result=\"pass\"}") == 3);
  CHECK(s.at("dmarc_milter_dmarc_results_total{result=\"fail\"}") == 1);
  CHECK(s.at("dmarc_milter_dispositions_total{disposition=\"reject\"}") == 1);
  CHECK(s.at("dmarc_milter_dispositions_total{disposition=\"none\"}") == 3);
  CHECK(s.at("dmarc_milter_dkim_results_total{result=\"pass\"}") == 1);
  double spf = 0;
  for (const char* r : {"pass", "fail", "softfail", "neutral", "none", "temperror", "permerror", "policy"})
    spf += s.at(std::string("dmarc_milter_spf_results_total{result=\"") + r + "\"}");
  CHECK(spf == 4);
  CHECK(s.at("dmarc_milter_spf_results_total{result=\"pass\"}") == 2);
  // DNS: the first messages went upstream; the repeat of the first came
  // from the cache.
  CHECK(s.at("dmarc_milter_dns_queries_total") > 0);
  CHECK(s.at("dmarc_milter_dns_cache_misses_total") == s.at("dmarc_milter_dns_queries_total"));
  CHECK(s.at("dmarc_milter_dns_cache_hits_total") > 0);
  CHECK(s.at("dmarc_milter_dns_timeouts_total") == 0);
  // The store: four records (unchecked mail is not recorded).
  CHECK(s.at("dmarc_milter_store_records_queued_total") == 4);
  CHECK(s.at("dmarc_milter_store_records_dropped_total") == 0);
  // The latency histogram: five observations, cumulative buckets.
  CHECK(s.at("dmarc_milter_message_seconds_count") == 5);
  CHECK(s.at("dmarc_milter_message_seconds_bucket{le=\"+Inf\"}") == 5);
  CHECK(s.at("dmarc_milter_message_seconds_sum") > 0);
  double prev = 0;
  for (const char* le : {"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1",
                         "2.5", "5", "10", "+Inf"}) {
    double v = s.at(std::string("dmarc_milter_message_seconds_bucket{le=\"") + le + "\"}");
    CHECK(v >= prev);
    prev = v;
  }

  // Only GET /metrics.
  CHECK(status_of(http(port, "GET / HTTP/1.0\r\n\r\n")) == 404);
  CHECK(status_of(http(port, "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n")) == 405);
  // SIGHUP keeps the counters (one process-wide set).
  milter.reload();
  REQUIRE(milter.wait_log("configuration reloaded"));
  CHECK(scrape(port).at("dmarc_milter_messages_total") == 5);
  CHECK(milter.stop() == 0);
}

TEST_CASE("metrics: DNS timeouts are counted; a busy MetricsListen stops the start", "[e2e][protocol][metrics]") {
  // A nameserver that never answers: a bound UDP socket nobody reads.
  int silent = -1;
  const std::string ns = "127.0.0.1:" + std::to_string(bound_loopback(SOCK_DGRAM, &silent));
  const std::uint16_t port = free_tcp_port();
  {
    MilterProcess milter("Syslog no\nAuthservID mx.proto.example\nNameservers " + ns +
                         "\nDNSTimeout 1\nDNSRetries 1\nMetricsListen 127.0.0.1:" + std::to_string(port) + "\n");
    auto c = open_client(milter, 0, "192.0.2.10", "mx.reject.example");
    Result r = one(*c, Message{"192.0.2.10", "mx.reject.example", "<alice@reject.example>",
                               message("alice@reject.example", "timeout", "x\r\n")}, 1);
    CHECK(r.verdict == Verdict::Accept);  // DNSFailureAction accept
    c->close();
    Scrape s = scrape(port);
    CHECK(s.at("dmarc_milter_dns_timeouts_total") > 0);
    CHECK(s.at("dmarc_milter_dns_errors_total") == 0);
    CHECK(s.at("dmarc_milter_dmarc_results_total{result=\"temperror\"}") == 1);

    // A second milter on the same MetricsListen cannot start, and says why.
    const std::string cfg = "Syslog no\nBackground no\nSocket inet:" + std::to_string(free_tcp_port()) +
                            "@127.0.0.1\nMetricsListen 127.0.0.1:" + std::to_string(port) + "\n";
    const std::string path = milter.config_path() + ".second";
    {
      std::ofstream(path) << cfg << "ReportStore none\n";
    }
    std::string cmd = std::string(DMARC_BINARY_DIR) + "/dmarc-milter -f -c " + path + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    REQUIRE(p);
    std::string out;
    char buf[512];
    while (fgets(buf, sizeof buf, p)) out += buf;
    int rc = pclose(p);
    INFO(out);
    CHECK(WEXITSTATUS(rc) != 0);
    CHECK(out.find("cannot listen on 127.0.0.1:" + std::to_string(port) + ": Address already in use") !=
          std::string::npos);
    CHECK(milter.stop() == 0);
  }
  close(silent);
}
