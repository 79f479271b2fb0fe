// test_dns_faults.cpp - fault injection for the DNS adapters (issue 16 item 3)
//
// Every case here is one row of the fault table (the DNS half): what the
// resolver answers (status, `why`) and how long it may take. The world is a
// private NSD serving faults.example and faults2.example (generated below:
// oversized TXT, CNAME chains and loops within and across zones), killed and
// restarted on its own port (support/fault_dns.hpp, NsdKiller), and, for what
// NSD cannot be made to do, FaultDnsServer: truncated UDP answers with TCP
// refused, hanging or closed. What the milter then does with each (accept or
// 451 4.7.1 per DNSFailureAction) is in tests/e2e/test_milter_dns_faults.cpp.
// Time bounds are for hangs only (generous multiples of the timeouts).
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <future>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "dmarc/adapters/cached_resolver.hpp"
#include "dmarc/adapters/dns_budget.hpp"
#include "dmarc/adapters/ldns_resolver.hpp"
#include "dmarc/core/org_domain.hpp"
#include "support/fault_dns.hpp"
#include "support/nsd_server.hpp"

using dmarc::CachedResolver;
using dmarc::DnsAnswer;
using dmarc::DnsStatus;
using dmarc::LdnsResolver;
using dmarc::test::FaultDnsServer;
using dmarc::test::NsdKiller;
using dmarc::test::NsdServer;
using dmarc::test::TcpMode;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

std::unique_ptr<LdnsResolver> resolver_for(const std::string& server, std::chrono::milliseconds timeout,
                                           unsigned tries) {
  dmarc::LdnsResolverOptions o;
  o.nameservers = {server};
  o.timeout = timeout;
  o.tries = tries;
  auto r = LdnsResolver::create(o);
  if (!r) throw std::runtime_error(r.error());
  return std::move(*r);
}

// quoted - one TXT character-string in zone-file syntax (no quotes or
// backslashes are ever inside: the texts here are tags and letters).
std::string quoted(const std::string& s) { return "\"" + s + "\""; }

// The strings of the oversized records.
constexpr int kBigStrings = 250;  // 250 x 255 octets: 63 750 octets of TXT data
std::string big_string(int i) {
  std::string s = "s" + std::to_string(i) + "-";
  s.resize(255, static_cast<char>('a' + i % 26));
  return s;
}
// The DMARC record of 63 KB: a valid start, then unknown tags (RFC 7489
// 6.3: ignored), each string one "xN=...;" of 255 octets.
std::string dmarc_pad(int i) {
  std::string s = "x" + std::to_string(i) + "=";
  s.resize(254, 'q');
  return s + ";";
}
constexpr int kManyRecords = 300;  // 300 TXT records of 200 octets at one name
std::string many_record(int i) {
  std::string s = "r" + std::to_string(i) + " ";
  s.resize(200, 'm');
  return s;
}

std::string zone_head(const std::string& zone) {
  return "$ORIGIN " + zone + ".\n$TTL 300\n@ IN SOA ns." + zone + ". hostmaster." + zone +
         ". 1 3600 600 86400 60\n@ IN NS ns\nns IN A 192.0.2.1\n";
}

std::string faults_zone() {
  std::ostringstream z;
  z << zone_head("faults.example");
  z << "_dmarc IN TXT \"v=DMARC1; p=reject\"\n";
  // One TXT record of 250 character-strings (63 750 octets): only TCP carries it.
  z << "big IN TXT";
  for (int i = 0; i < kBigStrings; ++i) z << " " << quoted(big_string(i));
  z << "\n";
  // The same size as a DMARC record.
  z << "_dmarc.bigdmarc IN TXT \"v=DMARC1; p=reject;\"";
  for (int i = 0; i < kBigStrings - 1; ++i) z << " " << quoted(dmarc_pad(i));
  z << "\n";
  for (int i = 0; i < kManyRecords; ++i) z << "many IN TXT " << quoted(many_record(i)) << "\n";
  // In-zone CNAME chains: len8 has 8 CNAMEs before the TXT, len9 has 9.
  for (int len : {8, 9}) {
    const std::string p = "len" + std::to_string(len);
    z << p << " IN CNAME " << p << "-1\n";
    for (int i = 1; i < len; ++i) z << p << "-" << i << " IN CNAME " << p << "-" << i + 1 << "\n";
    z << p << "-" << len << " IN TXT \"end of " << p << "\"\n";
  }
  // Across zones: NSD answers each with one CNAME and no SOA, so the
  // resolver asks again for every hop. xloop loops between the zones;
  // xlen10 alternates for 10 hops.
  z << "xloop IN CNAME xloop.faults2.example.\n";
  z << "_dmarc.xloop IN CNAME _dmarc.xloop.faults2.example.\n";
  for (int i = 0; i < 10; i += 2) z << "x" << i << " IN CNAME x" << i + 1 << ".faults2.example.\n";
  z << "x10 IN TXT \"end of xlen10\"\n";
  z << "xshort IN CNAME x8.faults.example.\n";  // 3 hops: x8 -> x9.faults2 -> x10
  return z.str();
}

std::string faults2_zone() {
  std::ostringstream z;
  z << zone_head("faults2.example");
  z << "xloop IN CNAME xloop.faults.example.\n";
  z << "_dmarc.xloop IN CNAME _dmarc.xloop.faults.example.\n";
  for (int i = 1; i < 10; i += 2) z << "x" << i << " IN CNAME x" << i + 1 << ".faults.example.\n";
  return z.str();
}

NsdServer& faults_nsd() {
  // One for the binary, stopped at exit; never killed by the tests.
  static NsdServer nsd([] {
    dmarc::test::NsdServerOptions o;
    o.extra_zones["faults.example"] = faults_zone();
    o.extra_zones["faults2.example"] = faults2_zone();
    return o;
  }());
  return nsd;
}

// A reply to QUERY with TC=1 and no records: "too big for UDP, ask over TCP".
std::string truncated(const std::string& q) { return dmarc::test::dns_reply(q, 0, 0x0200); }

// A TXT answer with one record "x" (owner: the question name, by pointer).
std::string one_txt(const std::string& q) {
  return dmarc::test::dns_reply(q, 0, 0, std::string("\xC0\x0C\x00\x10\x00\x01\x00\x00\x01\x2C\x00\x02\x01x", 14), 1);
}

}  // namespace

// --- truncation, TCP unavailable ------------------------------------------------

TEST_CASE("dns fault: TC=1 over UDP with TCP refused is TempFail at once", "[dns][faults][tcp]") {
  FaultDnsServer tc([](const std::string& q, bool) { return truncated(q); }, TcpMode::Refuse);
  auto r = resolver_for(tc.address(), 2000ms, 2);
  const auto start = Clock::now();
  DnsAnswer a = r->txt("big.faults.example");
  const auto took = Clock::now() - start;
  CHECK(a.status == DnsStatus::TempFail);
  CHECK(a.records.empty());
  CHECK(a.why.find(tc.address()) != std::string::npos);
  // A refused connection needs no timeout: well under one 2 s wait.
  CHECK(took < 1500ms);
  // Each try asked over UDP and got TC (ldns first repeats a no-EDNS query
  // with EDNS 4096; with EDNS it goes straight to TCP).
  CHECK(tc.udp_queries() >= 2);
  CHECK(tc.tcp_queries() == 0);

  SECTION("without TCP fallback the truncated answer is not taken for data") {
    dmarc::LdnsResolverOptions o;
    o.nameservers = {tc.address()};
    o.timeout = 300ms;
    o.tries = 1;
    o.tcp_fallback = false;
    LdnsResolver nofb(o);
    DnsAnswer b = nofb.txt("big.faults.example");
    // An empty TC answer must not read as NoData (that would be "no DMARC
    // record", dmarc=none, for a domain that has one).
    CHECK(b.status != DnsStatus::Ok);
    CHECK(b.status != DnsStatus::NxDomain);
    INFO("status " << dmarc::to_token(b.status) << " why " << b.why);
    CHECK(b.status == DnsStatus::TempFail);
  }
}

TEST_CASE("dns fault: TC=1 then a TCP server that accepts and never answers", "[dns][faults][tcp]") {
  FaultDnsServer tc([](const std::string& q, bool) { return truncated(q); }, TcpMode::Hang);
  SECTION("bounded by the timeout per try") {
    auto r = resolver_for(tc.address(), 400ms, 2);
    const auto start = Clock::now();
    DnsAnswer a = r->txt("big.faults.example");
    const auto took = Clock::now() - start;
    CHECK(a.status == DnsStatus::TempFail);
    CHECK(tc.tcp_queries() >= 1);
    CHECK(took >= 350ms);
    // 2 tries x (UDP answer at once + one TCP wait of 400 ms), with slack.
    CHECK(took < 2 * 2 * 400ms + 1000ms);
  }
  SECTION("bounded by the message's budget (one TCP wait more at most)") {
    auto r = resolver_for(tc.address(), 3000ms, 3);
    dmarc::DnsTimeBudget budget(600ms);
    const auto start = Clock::now();
    {
      dmarc::DnsBudgetScope scope(budget);
      DnsAnswer a = r->txt("big.faults.example");
      CHECK(a.status == DnsStatus::TempFail);
      DnsAnswer after = r->txt("other.faults.example");
      CHECK(after.status == DnsStatus::TempFail);
      CHECK(after.why == "DNS time budget of the message used up");
    }
    const auto took = Clock::now() - start;
    // dmarc-milter.conf(5), DNSMessageTimeout: "a truncated answer repeated
    // over TCP may wait once more for what was left": 2 x 600 ms at most.
    CHECK(took < 2 * 600ms + 600ms);
    CHECK(budget.exhausted());
  }
}

TEST_CASE("dns fault: TC=1 then a TCP server that closes the connection", "[dns][faults][tcp]") {
  FaultDnsServer tc([](const std::string& q, bool) { return truncated(q); }, TcpMode::Close);
  auto r = resolver_for(tc.address(), 2000ms, 2);
  const auto start = Clock::now();
  DnsAnswer a = r->txt("big.faults.example");
  CHECK(a.status == DnsStatus::TempFail);
  CHECK(tc.tcp_queries() >= 1);
  CHECK(Clock::now() - start < 1500ms);  // a closed stream is no reason to wait
}

TEST_CASE("dns fault: a TCP answer after TC is taken, one that does not match is not", "[dns][faults][tcp]") {
  SECTION("matching") {
    FaultDnsServer s([](const std::string& q, bool tcp) { return tcp ? one_txt(q) : truncated(q); }, TcpMode::Answer);
    auto r = resolver_for(s.address(), 1000ms, 1);
    DnsAnswer a = r->txt("any.faults.example");
    REQUIRE(a.status == DnsStatus::Ok);
    CHECK(a.records == std::vector<std::string>{"x"});
    CHECK(s.tcp_queries() == 1);
  }
  SECTION("TC set on the TCP answer too: incomplete, never NoData") {
    // A server (or middlebox) that says "truncated" over TCP as well: the
    // records that did not fit are not "no records" (that would read as
    // no DMARC record, dmarc=none, for a domain that may have one).
    FaultDnsServer s([](const std::string& q, bool) { return truncated(q); }, TcpMode::Answer);
    auto r = resolver_for(s.address(), 1000ms, 1);
    DnsAnswer a = r->txt("any.faults.example");
    INFO("status " << dmarc::to_token(a.status) << " why " << a.why);
    CHECK(s.tcp_queries() == 1);
    CHECK(a.status == DnsStatus::TempFail);
    CHECK(a.why == "truncated answer from " + s.address());
  }
  SECTION("another ID over TCP") {
    FaultDnsServer s(
        [](const std::string& q, bool tcp) {
          if (!tcp) return truncated(q);
          std::string reply = one_txt(q);
          reply[0] = static_cast<char>(reply[0] ^ 0x33);
          return reply;
        },
        TcpMode::Answer);
    auto r = resolver_for(s.address(), 1000ms, 1);
    DnsAnswer a = r->txt("any.faults.example");
    CHECK(a.status == DnsStatus::TempFail);
    CHECK(a.why.find("does not match") != std::string::npos);
  }
}

// --- oversized answers -------------------------------------------------------------

TEST_CASE("dns fault: a 64 KB TXT record comes over TCP whole", "[dns][faults][big]") {
  auto r = resolver_for(faults_nsd().address(), 2000ms, 1);
  DnsAnswer a = r->txt("big.faults.example");
  REQUIRE(a.status == DnsStatus::Ok);
  REQUIRE(a.records.size() == 1);
  std::string expect;
  for (int i = 0; i < kBigStrings; ++i) expect += big_string(i);
  CHECK(a.records[0].size() == 63750);
  CHECK(a.records[0] == expect);

  SECTION("with TCP fallback off it is TempFail, never a short record") {
    dmarc::LdnsResolverOptions o;
    o.nameservers = {faults_nsd().address()};
    o.timeout = 500ms;
    o.tries = 1;
    o.tcp_fallback = false;
    LdnsResolver udp_only(o);
    DnsAnswer b = udp_only.txt("big.faults.example");
    INFO("status " << dmarc::to_token(b.status) << " why " << b.why);
    CHECK(b.status == DnsStatus::TempFail);
    CHECK(b.records.empty());
  }
  SECTION("the cache keeps it within its memory bound, or not at all") {
    auto up = std::shared_ptr<LdnsResolver>(resolver_for(faults_nsd().address(), 2000ms, 1));
    dmarc::CachedResolverOptions co;
    co.shards = 1;
    co.max_bytes = 32 * 1024;  // smaller than the answer: not cached
    CachedResolver small(up, co);
    CHECK(small.txt("big.faults.example").records.at(0).size() == 63750);
    CHECK(small.txt("big.faults.example").records.at(0).size() == 63750);
    CHECK(small.stats().entries == 0);
    CHECK(small.stats().bytes == 0);
    co.max_bytes = 1024 * 1024;
    CachedResolver roomy(up, co);
    roomy.txt("big.faults.example");
    CHECK(roomy.txt("big.faults.example").records.at(0) == expect);
    CHECK(roomy.stats().hits == 1);
    CHECK(roomy.stats().bytes <= 1024 * 1024);
  }
}

TEST_CASE("dns fault: 300 TXT records at one name all arrive, separate", "[dns][faults][big]") {
  auto r = resolver_for(faults_nsd().address(), 2000ms, 1);
  DnsAnswer a = r->txt("many.faults.example");
  REQUIRE(a.status == DnsStatus::Ok);
  REQUIRE(a.records.size() == static_cast<std::size_t>(kManyRecords));
  std::vector<std::string> got = a.records;
  std::sort(got.begin(), got.end());
  std::vector<std::string> want;
  for (int i = 0; i < kManyRecords; ++i) want.push_back(many_record(i));
  std::sort(want.begin(), want.end());
  CHECK(got == want);
}

TEST_CASE("dns fault: a 64 KB DMARC record arrives whole and is refused as too long", "[dns][faults][big]") {
  // What the DMARC layer makes of it: the resolver hands over all 63 KB;
  // the record parser reads at most kMaxRecordLength (8192) octets and
  // calls a longer record invalid (dmarc_record.hpp), whatever it says.
  auto r = resolver_for(faults_nsd().address(), 2000ms, 1);
  dmarc::LookupStep step = dmarc::lookup_dmarc_at(*r, "bigdmarc.faults.example");
  INFO("finding " << dmarc::to_token(step.finding) << " error " << step.error);
  CHECK(step.dns == DnsStatus::Ok);
  CHECK(step.text.size() > 60000);
  CHECK(step.text.rfind("v=DMARC1; p=reject;", 0) == 0);
  CHECK(step.finding == dmarc::LookupFinding::Invalid);
  CHECK(step.error == "record longer than 8192 octets");
  CHECK_FALSE(step.record);
}

// --- CNAME chains and loops ------------------------------------------------------------

TEST_CASE("dns fault: CNAME chains up to the limit are followed, longer ones are PermFail", "[dns][faults][cname]") {
  static_assert(LdnsResolver::kMaxCnameHops == 8, "the zone's chains are built for 8");
  auto r = resolver_for(faults_nsd().address(), 2000ms, 1);
  SECTION("within one zone (NSD sends the chain in one answer)") {
    DnsAnswer ok = r->txt("len8.faults.example");
    REQUIRE(ok.status == DnsStatus::Ok);
    CHECK(ok.records == std::vector<std::string>{"end of len8"});
    DnsAnswer longer = r->txt("len9.faults.example");
    CHECK(longer.status == DnsStatus::PermFail);
    CHECK(longer.records.empty());
    CHECK(longer.why == "CNAME chain longer than 8 (or a loop) at len9.faults.example");
  }
  SECTION("across zones (one query per hop)") {
    DnsAnswer shorter = r->txt("xshort.faults.example");
    REQUIRE(shorter.status == DnsStatus::Ok);
    CHECK(shorter.records == std::vector<std::string>{"end of xlen10"});
    const auto start = Clock::now();
    DnsAnswer longer = r->txt("x0.faults.example");  // 10 hops
    CHECK(longer.status == DnsStatus::PermFail);
    CHECK(longer.why.find("CNAME chain longer than 8") != std::string::npos);
    CHECK(Clock::now() - start < 5s);
  }
}

TEST_CASE("dns fault: a CNAME loop across two zones ends in PermFail after the hop limit", "[dns][faults][cname]") {
  auto r = resolver_for(faults_nsd().address(), 2000ms, 1);
  const auto start = Clock::now();
  DnsAnswer a = r->txt("xloop.faults.example");
  CHECK(a.status == DnsStatus::PermFail);
  CHECK(a.why == "CNAME chain longer than 8 (or a loop) at xloop.faults.example");
  CHECK(Clock::now() - start < 5s);  // 9 answered queries, no waiting
  // The same for every type asked (the loop is in the CNAMEs).
  CHECK(r->a("xloop.faults.example").status == DnsStatus::PermFail);

  SECTION("DMARC: a loop at _dmarc.<domain> is no record there, and the walk goes on") {
    // RFC 9989 4.10: a permanent error is no record at that name; the
    // organizational domain's record (faults.example, p=reject) applies.
    dmarc::LookupStep step = dmarc::lookup_dmarc_at(*r, "xloop.faults.example");
    CHECK(step.finding == dmarc::LookupFinding::NoRecord);
    CHECK(step.dns == DnsStatus::PermFail);
    auto org = dmarc::find_org_domain(*r, "xloop.faults.example", dmarc::DmarcMode::Rfc9989, nullptr);
    CHECK_FALSE(org.temp_error);
    CHECK(org.org_domain == "faults.example");
  }
}

// --- the server dying ------------------------------------------------------------------

TEST_CASE("dns fault: NSD killed between queries, then restarted on its port", "[dns][faults][kill]") {
  dmarc::test::NsdServerOptions o;
  o.extra_zones["faults.example"] = zone_head("faults.example") + "_dmarc IN TXT \"v=DMARC1; p=reject\"\n"
                                    "a IN TXT \"alpha\"\nb IN TXT \"beta\"\nc IN TXT \"gamma\"\n";
  NsdServer nsd(o);
  NsdKiller killer(nsd);
  auto ldns = std::shared_ptr<LdnsResolver>(resolver_for(nsd.address(), 300ms, 2));
  CachedResolver cache(ldns);
  REQUIRE(cache.txt("a.faults.example").records == std::vector<std::string>{"alpha"});

  REQUIRE(killer.kill());
  // Down: what is cached is still answered, nothing else is, and no
  // lookup waits longer than tries x timeout (2 x 300 ms).
  CHECK(cache.txt("a.faults.example").records == std::vector<std::string>{"alpha"});
  for (const char* name : {"b.faults.example", "c.faults.example"}) {
    const auto start = Clock::now();
    DnsAnswer a = cache.txt(name);
    const auto took = Clock::now() - start;
    CHECK(a.status == DnsStatus::TempFail);
    // Loopback with nobody on the port: ldns sees either the timeout or
    // the ICMP port unreachable; both are "no answer" (TempFail).
    CHECK(a.why.find(nsd.address()) != std::string::npos);
    CHECK(took < 2 * 300ms + 700ms);
  }
  // The failures were not cached: once NSD is back they resolve.
  REQUIRE(killer.restart());
  CHECK(cache.txt("b.faults.example").records == std::vector<std::string>{"beta"});
  CHECK(cache.txt("c.faults.example").records == std::vector<std::string>{"gamma"});
}

TEST_CASE("dns fault: NSD hung and killed while a query waits, then restarted", "[dns][faults][kill]") {
  dmarc::test::NsdServerOptions o;
  o.extra_zones["faults.example"] = zone_head("faults.example") + "a IN TXT \"alpha\"\nb IN TXT \"beta\"\n";
  NsdServer nsd(o);
  NsdKiller killer(nsd);
  auto r = std::shared_ptr<LdnsResolver>(resolver_for(nsd.address(), 500ms, 2));
  REQUIRE(r->txt("a.faults.example").status == DnsStatus::Ok);

  // SIGSTOP: the query is sent and queued, unanswered; SIGKILL while it waits.
  killer.stop_process();
  const auto start = Clock::now();
  auto pending = std::async(std::launch::async, [r] { return r->txt("b.faults.example"); });
  std::this_thread::sleep_for(200ms);
  REQUIRE(killer.kill());
  REQUIRE(pending.wait_for(5s) == std::future_status::ready);
  DnsAnswer during = pending.get();
  const auto took = Clock::now() - start;
  CHECK(during.status == DnsStatus::TempFail);
  CHECK(took < 2 * 500ms + 700ms);  // tries x timeout, and no more

  REQUIRE(killer.restart());
  DnsAnswer after = r->txt("b.faults.example");
  REQUIRE(after.status == DnsStatus::Ok);
  CHECK(after.records == std::vector<std::string>{"beta"});

  SECTION("a restart while a query is being retried is answered by the new server") {
    REQUIRE(killer.kill());
    auto slow = resolver_for(nsd.address(), 700ms, 4);  // up to 2.8 s of tries
    auto retried = std::async(std::launch::async, [&slow] { return slow->txt("a.faults.example"); });
    std::this_thread::sleep_for(300ms);
    REQUIRE(killer.restart());
    REQUIRE(retried.wait_for(5s) == std::future_status::ready);
    DnsAnswer a = retried.get();
    CHECK(a.status == DnsStatus::Ok);
    CHECK(a.records == std::vector<std::string>{"alpha"});
  }
}
