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
#include <signal.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
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
