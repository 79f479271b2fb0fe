// test_sendmail_e2e.cpp - dmarc-milter in a real Sendmail, end to end
//
// World: the test binary first moves into a network namespace of its own
// (enter_private_network) where lo carries, besides 127.0.0.1, the RFC 5737
// client addresses the cases need: Sendmail has no XCLIENT, so the SMTP
// client binds to one of them (SmtpMessage::source) and Sendmail sees that
// address as the client's. NSD serves tests/data/e2e/zones (the Postfix
// end-to-end zones) on 127.0.0.1; the built dmarc-milter runs as a daemon
// (-f) resolving through it; a private Sendmail
// (tests/support/sendmail_instance: the unpacked Debian sendmail-bin, its
// own mount namespace, delivery into files) has the INPUT_MAIL_FILTER line
// of conf/sendmail.mc, pointed at the milter's port. Two such pairs:
// QuarantineAction hold (Sendmail's quarantine, smfi_quarantine) and
// QuarantineAction header. Messages go in over SMTP (real AUTH PLAIN
// through Cyrus SASL for the authenticated case). Each case asserts the
// SMTP reply, Sendmail's queue (sendmail -bp / -bp -qQ), the headers of the
// delivered message and the milter's log line (which carries Sendmail's
// queue id). Runs as root.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/dkim_signer.hpp"
#include "support/milter_process.hpp"
#include "support/nsd_server.hpp"
#include "support/postfix_instance.hpp"  // header_values
#include "support/sendmail_instance.hpp"
#include "support/smtp_client.hpp"

using namespace dmarc::test;

namespace {

const std::string kZones = std::string(DMARC_TEST_DATA_DIR) + "/e2e/zones";
const std::string kKey = std::string(DMARC_TEST_DATA_DIR) + "/dkim/keys/rsa2048.pem";
const std::string kSource = std::string(DMARC_TEST_DATA_DIR) + "/../..";

std::string slurp_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The .mc lines an admin adds (conf/sendmail.mc), dnl comments dropped,
// the milter's default port replaced by PORT.
std::vector<std::string> shipped_mc_lines(std::uint16_t port) {
  std::vector<std::string> out;
  std::istringstream in(slurp_file(kSource + "/conf/sendmail.mc"));
  for (std::string l; std::getline(in, l);) {
    if (l.empty() || l.rfind("dnl", 0) == 0) continue;
    const std::string from = "inet:8895@127.0.0.1";
    if (auto at = l.find(from); at != std::string::npos) l.replace(at, from.size(), "inet:" + std::to_string(port) + "@127.0.0.1");
    out.push_back(l);
  }
  return out;
}

std::string config(std::uint16_t dns_port, const std::string& extra) {
  return "Syslog no\n"
         "LogLevel info\n"
         "AuthservID mx.e2e.example\n"
         "Nameservers 127.0.0.1:" + std::to_string(dns_port) + "\n"
         "DNSTimeout 1\n"
         "DNSRetries 1\n"
         "IgnoreHosts 127.0.0.1\n" + extra;
}

NsdServer& nsd() {
  static std::unique_ptr<NsdServer> n = [] {
    // Before any server starts, so that all of them live in the namespace.
    enter_private_network({"192.0.2.10", "203.0.113.9", "198.51.100.30"});
    NsdServerOptions o;
    o.zone_dir = kZones;
    return std::make_unique<NsdServer>(o);
  }();
  return *n;
}

// One milter and one Sendmail; EXTRA config lines select the mode.
struct World {
  explicit World(const std::string& extra) : milter(config(nsd().port(), extra)), sendmail(options(milter)) {}

  static SendmailOptions options(const MilterProcess& m) {
    SendmailOptions o;
    o.mc_lines = shipped_mc_lines(m.port());
    o.hostname = "mx.sm.example";
    o.relay_domains = {"rcpt.example"};
    // A domain of Sendmail's own (class w): its addresses reach milters
    // without their domain in {mail_addr} / {rcpt_addr}.
    o.local_domains = {"sampled.example"};
    o.aliases = {{"postmaster", "bob@rcpt.example"}};
    o.sasl_users = {{"alice", "alice-secret"}};
    return o;
  }

  MilterProcess milter;
  SendmailInstance sendmail;
};

World& hold_world() {
  nsd();
  static std::unique_ptr<World> w = std::make_unique<World>("QuarantineAction hold\n");
  return *w;
}
World& header_world() {
  nsd();
  static std::unique_ptr<World> w = std::make_unique<World>("QuarantineAction header\n");
  return *w;
}

int g_serial = 0;

struct Case {
  std::string ip = "192.0.2.10";
  std::string helo = "mail.reject.example";
  std::string mail_from = "alice@reject.example";
  std::string from = "Alice <alice@reject.example>";
  std::vector<std::string> rcpt = {"bob@rcpt.example"};
  std::string extra_headers;
  bool sign = false;
  std::optional<SmtpCredentials> auth;
};

struct Sent {
  SmtpOutcome out;
  std::string subject;
  // Sendmail's queue id, from "250 2.0.0 6B7HVCfT014286 Message accepted for delivery".
  std::string queue_id() const {
    if (out.final_reply.lines.empty()) return {};
    std::istringstream in(out.final_reply.lines[0]);
    std::string code, id;
    in >> code >> id;
    return id;
  }
};

Sent send(World& w, const Case& c, const std::string& tag) {
  Sent s;
  s.subject = tag + "-" + std::to_string(++g_serial);
  std::string m = "From: " + c.from + "\nTo: bob@rcpt.example\nSubject: " + s.subject +
                  "\nDate: Sun, 22 Nov 2026 10:00:00 +0000\nMessage-ID: <" + s.subject + "@e2e.example>\n" +
                  c.extra_headers + "\nHello Bob.\nThis is " + s.subject + ".\n";
  if (c.sign) m = dkim_sign_message(m, "reject.example", "e2e", kKey);
  SmtpMessage msg;
  msg.source = c.ip;
  msg.helo = c.helo;
  msg.auth = c.auth;
  msg.mail_from = c.mail_from;
  msg.rcpt_to = c.rcpt;
  msg.data = m;
  s.out = send_mail(w.sendmail.port(), msg);
  return s;
}

// The delivered messages whose Subject is SUBJECT (one per recipient);
// waits up to TIMEOUT for at least N.
std::vector<std::string> delivered(World& w, const std::string& subject, std::size_t n = 1,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto end = std::chrono::steady_clock::now() + timeout;
  std::vector<std::string> got;
  for (;;) {
    got.clear();
    for (const auto& m : w.sendmail.delivered()) {
      for (const auto& s : header_values(m, "Subject")) {
        if (s == subject) got.push_back(m);
      }
    }
    if (got.size() >= n || std::chrono::steady_clock::now() > end) return got;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::string one_delivered(World& w, const std::string& subject) {
  auto got = delivered(w, subject);
  if (got.empty()) FAIL("not delivered: " << subject << "\n" << w.sendmail.log() << "\n" << w.milter.log());
  return got.front();
}

// Our Authentication-Results field (unfolded, tabs as spaces), or "".
std::string our_ar(const std::string& message) {
  for (const auto& v : header_values(message, "Authentication-Results")) {
    std::string flat;
    for (char ch : v) {
      if (ch == '\r' || ch == '\n') continue;
      flat += ch == '\t' ? ' ' : ch;
    }
    if (flat.find("mx.e2e.example;") != std::string::npos) return flat;
  }
  return {};
}

// The report store's rows for HEADER_FROM: "envelope_from|envelope_to" lines.
std::string store_rows(World& w, const std::string& header_from) {
  const std::string db = std::filesystem::path(w.milter.config_path()).parent_path().string() + "/reports.db";
  const std::string cmd = "sqlite3 -cmd '.timeout 3000' " + db + " \"select envelope_from, envelope_to from agg_rows where header_from = '" +
                          header_from + "'\" 2>&1";
  std::string out;
  for (int i = 0; i < 50; ++i) {  // the writer commits every second
    out.clear();
    FILE* p = popen(cmd.c_str(), "r");
    char buf[4096];
    std::size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    pclose(p);
    if (!out.empty() && out.find("Error") == std::string::npos) return out;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return out;
}

bool log_has(World& w, const std::string& text) { return w.milter.wait_log(text); }

#define REQUIRE_ACCEPTED(s) \
  do { INFO((s).out.transcript_text() << "\n" << w.sendmail.log()); REQUIRE((s).out.accepted()); } while (0)

}  // namespace

TEST_CASE("sendmail: aligned SPF and DKIM pass is delivered with our Authentication-Results", "[e2e][sendmail]") {
  World& w = header_world();
  Case c;
  c.sign = true;
  c.rcpt = {"bob@rcpt.example", "carol@rcpt.example"};
  Sent s = send(w, c, "pass");
  REQUIRE_ACCEPTED(s);
  auto mail = delivered(w, s.subject, 2);
  REQUIRE(mail.size() == 2);
  const std::string& m = mail[0];
  INFO(m);
  std::string ar = our_ar(m);
  CHECK_THAT(ar, Catch::Matchers::Contains("spf=pass smtp.mailfrom=reject.example"));
  CHECK_THAT(ar, Catch::Matchers::Contains("dkim=pass (2048-bit key) header.d=reject.example header.s=e2e header.b="));
  CHECK_THAT(ar, Catch::Matchers::Contains("dmarc=pass"));
  CHECK_THAT(ar, Catch::Matchers::Contains("header.from=reject.example policy.dmarc=reject"));
  CHECK(header_values(m, "Authentication-Results").size() == 1);
  // Inserted at index 0: above Sendmail's own Received field, which shows
  // the client address the test connected from.
  auto names = header_names(m);
  REQUIRE(names.size() >= 2);
  CHECK(names[0] == "Authentication-Results");
  CHECK(names[1] == "Received");
  CHECK_THAT(header_values(m, "Received")[0], Catch::Matchers::Contains("[192.0.2.10]"));
  CHECK_THAT(header_values(m, "Received")[0], Catch::Matchers::Contains("by mx.sm.example"));
  // One log line per message, with Sendmail's queue id ({i}, sent with MAIL FROM).
  REQUIRE(s.queue_id().size() >= 8);
  CHECK(w.sendmail.wait_log(s.queue_id() + ": to=<bob@rcpt.example>"));
  CHECK(log_has(w, "qid=" + s.queue_id() + " ip=192.0.2.10 from=reject.example spf=pass:reject.example dkim=pass"));
  // The recipients as Sendmail parsed them ({rcpt_addr}) reach the report store.
  CHECK_THAT(store_rows(w, "reject.example"), Catch::Matchers::Contains("reject.example|rcpt.example"));
}

TEST_CASE("sendmail: a spoof of a p=reject domain is refused with our 550 5.7.1", "[e2e][sendmail]") {
  World& w = header_world();
  Case c;
  c.ip = "203.0.113.9";
  Sent s = send(w, c, "spoofreject");
  INFO(s.out.transcript_text() << "\n" << w.sendmail.log());
  CHECK(s.out.stage == "message");
  CHECK(s.out.final_reply.code == 550);
  CHECK(s.out.final_reply.str() == "550 5.7.1 Message rejected by the DMARC policy of reject.example");
  CHECK(log_has(w, "ip=203.0.113.9 from=reject.example spf=fail:reject.example dkim=none dmarc=fail policy=reject "
                   "disposition=reject action=reject reason=dmarc_reject"));
  // Nothing queued, nothing delivered.
  CHECK(delivered(w, s.subject, 1, std::chrono::milliseconds(500)).empty());
  CHECK(w.sendmail.queue().empty());
}

TEST_CASE("sendmail: p=quarantine with QuarantineAction hold goes to Sendmail's quarantine", "[e2e][sendmail]") {
  World& w = hold_world();
  Case c;
  c.ip = "203.0.113.9";
  c.mail_from = "alice@quarantine.example";
  c.from = "alice@quarantine.example";
  Sent s = send(w, c, "hold");
  REQUIRE_ACCEPTED(s);
  const std::string qid = s.queue_id();
  REQUIRE(!qid.empty());
  CHECK(log_has(w, "qid=" + qid + " ip=203.0.113.9 from=quarantine.example spf=fail:quarantine.example dkim=none "
                   "dmarc=fail policy=quarantine disposition=quarantine action=quarantine"));
  // smfi_quarantine: Sendmail keeps the message in its queue, quarantined
  // with our reason; "mailq -qQ" (sendmail -bp -qQ) lists it.
  std::string listing = w.sendmail.mailq(true);
  INFO(listing << "\n" << w.sendmail.log());
  auto q = w.sendmail.quarantined();
  REQUIRE(q.size() == 1);
  CHECK(q[0].queue_id == qid);
  CHECK(q[0].quarantine_reason == "DMARC quarantine (quarantine.example)");
  CHECK(q[0].sender == "alice@quarantine.example");
  CHECK(q[0].recipients == std::vector<std::string>{"bob@rcpt.example"});
  CHECK(w.sendmail.wait_log(qid + ": milter=dmarc-milter, quarantine=DMARC quarantine (quarantine.example)"));
  CHECK(w.sendmail.wait_log("quarantine=DMARC quarantine (quarantine.example), stat=quarantined"));
  // Not delivered; the ordinary queue listing does not show it.
  CHECK(delivered(w, s.subject, 1, std::chrono::milliseconds(1500)).empty());
  for (const auto& e : w.sendmail.queue()) CHECK(e.queue_id != qid);

  // The admin releases it (-Q without a reason, for the items -qI selects,
  // -qQ: in the quarantine) and runs it: delivered, with our A-R.
  int st = 0;
  std::string rel = w.sendmail.run("sendmail", {"-C", w.sendmail.cf_path(), "-qQ", "-Q", "-qI" + qid}, st);
  INFO(rel);
  CHECK(st == 0);
  CHECK(w.sendmail.quarantined().empty());
  rel = w.sendmail.run("sendmail", {"-C", w.sendmail.cf_path(), "-qI" + qid}, st);
  CHECK(st == 0);
  std::string m = one_delivered(w, s.subject);
  CHECK_THAT(our_ar(m), Catch::Matchers::Contains("dmarc=fail (p=quarantine"));
  CHECK(header_values(m, "X-DMARC-Quarantine").empty());  // hold, not header
}

TEST_CASE("sendmail: p=quarantine with QuarantineAction header is delivered marked", "[e2e][sendmail]") {
  World& w = header_world();
  Case c;
  c.ip = "203.0.113.9";
  c.mail_from = "alice@quarantine.example";
  c.from = "alice@quarantine.example";
  Sent s = send(w, c, "qheader");
  REQUIRE_ACCEPTED(s);
  std::string m = one_delivered(w, s.subject);
  INFO(m);
  REQUIRE(header_values(m, "X-DMARC-Quarantine").size() == 1);
  CHECK_THAT(header_values(m, "X-DMARC-Quarantine")[0], Catch::Matchers::Contains("quarantine.example"));
  CHECK_THAT(our_ar(m), Catch::Matchers::Contains("dmarc=fail"));
  CHECK(w.sendmail.quarantined().empty());
}

TEST_CASE("sendmail: forged Authentication-Results with our authserv-id are removed", "[e2e][sendmail][security]") {
  World& w = header_world();
  Case c;
  c.extra_headers = "Authentication-Results: mx.e2e.example; dmarc=pass header.from=forged.example\n"
                    "Authentication-Results: upstream.example; spf=pass smtp.mailfrom=x.example\n"
                    "Authentication-Results: MX.E2E.EXAMPLE; dkim=pass header.d=forged.example\n";
  Sent s = send(w, c, "forgedar");
  REQUIRE_ACCEPTED(s);
  std::string m = one_delivered(w, s.subject);
  INFO(m);
  auto ars = header_values(m, "Authentication-Results");
  REQUIRE(ars.size() == 2);
  CHECK(m.find("forged.example") == std::string::npos);
  CHECK_THAT(m, Catch::Matchers::Contains("upstream.example; spf=pass"));
  CHECK_THAT(our_ar(m), Catch::Matchers::Contains("dmarc=pass"));
  CHECK(m.find("mx.e2e.example;") < m.find("upstream.example;"));
}

TEST_CASE("sendmail: an SMTP AUTH client is not checked", "[e2e][sendmail]") {
  World& w = header_world();
  Case c;
  c.ip = "203.0.113.9";  // as a spoof from here it would get 550 (see above)
  c.auth = SmtpCredentials{"alice", "alice-secret"};
  Sent s = send(w, c, "auth");
  REQUIRE_ACCEPTED(s);
  CHECK_THAT(s.out.transcript_text(), Catch::Matchers::Contains("235 2.0.0 OK Authenticated"));
  std::string m = one_delivered(w, s.subject);
  CHECK(our_ar(m).empty());
  CHECK(log_has(w, "qid=" + s.queue_id() + " ip=203.0.113.9 skipped=authenticated"));
  CHECK(w.sendmail.wait_log("AUTH=server, relay=[203.0.113.9], authid=alice, mech=PLAIN"));

  // A wrong password: no AUTH, so the message is checked (and refused).
  c.auth = SmtpCredentials{"alice", "wrong"};
  Sent bad = send(w, c, "badauth");
  INFO(bad.out.transcript_text());
  CHECK(bad.out.stage == "auth");
  CHECK(bad.out.final_reply.code == 535);
}

TEST_CASE("sendmail: the null sender <> is checked with the HELO identity", "[e2e][sendmail]") {
  // Sendmail gives {mail_addr} = "" (and {mail_mailer} = local) for <>.
  World& w = header_world();
  Case c;
  c.ip = "198.51.100.30";
  c.helo = "mx.reject.example";
  c.mail_from = "";
  c.from = "Mail Delivery System <MAILER-DAEMON@mx.reject.example>";
  Sent s = send(w, c, "bounce");
  REQUIRE_ACCEPTED(s);
  std::string ar = our_ar(one_delivered(w, s.subject));
  CHECK_THAT(ar, Catch::Matchers::Contains("spf=pass smtp.helo=mx.reject.example"));
  CHECK_THAT(ar, Catch::Matchers::Contains("dmarc=pass"));
  CHECK(log_has(w, "qid=" + s.queue_id() + " ip=198.51.100.30 from=mx.reject.example spf=pass:helo:mx.reject.example"));
}

TEST_CASE("sendmail: addresses of Sendmail's own domains keep their domain", "[e2e][sendmail][macros]") {
  // sampled.example is in class w. Sendmail's {mail_addr} is then "alice"
  // and {rcpt_addr} "postmaster" (the local mailer's user): taken as they
  // come, SPF would check a sender without a domain and this aligned
  // message (SPF pass, p=reject in RFC 9989 mode) would be refused.
  World& w = header_world();
  Case c;
  c.mail_from = "alice@sampled.example";
  c.from = "alice@sampled.example";
  c.rcpt = {"postmaster@sampled.example"};  // aliased to bob@rcpt.example
  Sent s = send(w, c, "localdomain");
  REQUIRE_ACCEPTED(s);
  std::string ar = our_ar(one_delivered(w, s.subject));
  CHECK_THAT(ar, Catch::Matchers::Contains("spf=pass smtp.mailfrom=sampled.example"));
  CHECK_THAT(ar, Catch::Matchers::Contains("dmarc=pass"));
  CHECK(log_has(w, "qid=" + s.queue_id() + " ip=192.0.2.10 from=sampled.example spf=pass:sampled.example"));
  CHECK_THAT(store_rows(w, "sampled.example"), Catch::Matchers::Contains("sampled.example|sampled.example"));
}

TEST_CASE("sendmail: F=T answers 451 4.3.2 while the milter is unreachable", "[e2e][sendmail]") {
  nsd();
  SendmailOptions o;
  // A port nothing listens on: the shipped line, pointed at it.
  o.mc_lines = shipped_mc_lines(1);
  SendmailInstance sendmail(o);
  SmtpMessage m;
  m.source = "203.0.113.9";
  m.mail_from = "alice@reject.example";
  m.rcpt_to = {"bob@rcpt.example"};
  m.data = "From: alice@reject.example\nSubject: nomilter\n\nhi\n";
  SmtpOutcome out = send_mail(sendmail.port(), m);
  INFO(out.transcript_text() << "\n" << sendmail.log());
  CHECK(!out.accepted());
  CHECK(out.final_reply.str() == "451 4.3.2 Please try again later");
  CHECK(sendmail.delivered().empty());
}
