// test_dns.cpp - LdnsResolver and CachedResolver against a private NSD
//
// The zones are tests/data/zones/*.zone (dns.example, other.example,
// negttl.example, 2.0.192.in-addr.arpa, 8.b.d.0.1.0.0.2.ip6.arpa), served by
// one NSD on 127.0.0.1 for the whole binary (support/nsd_server.hpp). Error
// paths that NSD cannot produce use a silent UDP port (BlackHoleServer) or a
// scripted one (ScriptedDnsServer).
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "dmarc/adapters/cached_resolver.hpp"
#include "dmarc/adapters/dns_budget.hpp"
#include "dmarc/adapters/ldns_resolver.hpp"
#include "support/nsd_server.hpp"

using dmarc::CachedResolver;
using dmarc::DnsAnswer;
using dmarc::DnsStatus;
using dmarc::LdnsResolver;
using dmarc::RRType;
using dmarc::test::BlackHoleServer;
using dmarc::test::NsdServer;
using dmarc::test::ScriptedDnsServer;
using namespace std::chrono_literals;

namespace {

std::unique_ptr<LdnsResolver> resolver_for(std::vector<std::string> servers,
                                           std::chrono::milliseconds timeout = 2000ms, unsigned tries = 2) {
  dmarc::LdnsResolverOptions o;
  o.nameservers = std::move(servers);
  o.timeout = timeout;
  o.tries = tries;
  auto r = LdnsResolver::create(o);
  if (!r) throw std::runtime_error(r.error());
  return std::move(*r);
}

// nsd_resolver - one LdnsResolver on the shared NSD for the whole binary.
LdnsResolver& nsd_resolver() {
  static std::unique_ptr<LdnsResolver> r = resolver_for({NsdServer::shared().address()});
  return *r;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

std::string rr_header(std::uint16_t type, std::uint32_t ttl, std::uint16_t rdlength) {
  std::string m = "\xC0\x0C";  // owner: pointer to the question name
  m += static_cast<char>(type >> 8);
  m += static_cast<char>(type & 0xff);
  m.append("\0\1", 2);
  for (int shift = 24; shift >= 0; shift -= 8) m += static_cast<char>((ttl >> shift) & 0xff);
  m += static_cast<char>(rdlength >> 8);
  m += static_cast<char>(rdlength & 0xff);
  return m;
}

// FakeResolver - canned answers, counting calls (for the cache tests).
class FakeResolver : public dmarc::Resolver {
 public:
  void set(const std::string& name, RRType type, DnsAnswer a) {
    std::lock_guard<std::mutex> lock(mu_);
    answers_[{name, type}] = std::move(a);
  }
  DnsAnswer query(std::string_view name, RRType type) override {
    ++calls;
    if (throw_) throw std::runtime_error("upstream exploded");
    std::lock_guard<std::mutex> lock(mu_);
    std::string key(name);
    if (!key.empty() && key.back() == '.') key.pop_back();
    for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto it = answers_.find({key, type});
    if (it != answers_.end()) return it->second;
    DnsAnswer nx;
    nx.status = DnsStatus::NxDomain;
    nx.ttl = 60;
    return nx;
  }
  std::atomic<int> calls{0};
  bool throw_ = false;

 private:
  std::mutex mu_;
  std::map<std::pair<std::string, RRType>, DnsAnswer> answers_;
};

DnsAnswer ok_answer(std::vector<std::string> records, std::uint32_t ttl) {
  DnsAnswer a;
  a.status = DnsStatus::Ok;
  a.records = std::move(records);
  a.ttl = ttl;
  return a;
}

DnsAnswer status_answer(DnsStatus s, std::uint32_t ttl) {
  DnsAnswer a;
  a.status = s;
  a.ttl = ttl;
  return a;
}

// FakeClock - time that moves only when told to.
struct FakeClock {
  std::chrono::steady_clock::time_point now{std::chrono::hours(1000)};
  dmarc::CachedResolverOptions::Clock fn() {
    return [this] { return now; };
  }
};

}  // namespace

// --- the test world ---------------------------------------------------------------

TEST_CASE("dns: every zone file passes nsd-checkzone", "[dns][zones]") {
  namespace fs = std::filesystem;
  int checked = 0;
  for (const auto& entry : fs::directory_iterator(DMARC_TEST_DATA_DIR "/zones")) {
    if (entry.path().extension() != ".zone") continue;
    const std::string cmd = "nsd-checkzone '" + entry.path().stem().string() + "' '" + entry.path().string() +
                            "' >/dev/null 2>&1";
    INFO(cmd);
    CHECK(std::system(cmd.c_str()) == 0);
    ++checked;
  }
  CHECK(checked >= 5);
}

TEST_CASE("dns: NsdServer serves the zone directory and extra zones", "[dns][nsd]") {
  const auto zones = NsdServer::shared().zones();
  CHECK(std::find(zones.begin(), zones.end(), "dns.example") != zones.end());
  CHECK(std::find(zones.begin(), zones.end(), "2.0.192.in-addr.arpa") != zones.end());

  dmarc::test::NsdServerOptions o;
  o.extra_zones["gen.example"] =
      "$ORIGIN gen.example.\n$TTL 300\n"
      "@ IN SOA ns.gen.example. hostmaster.gen.example. 1 3600 600 86400 60\n"
      "@ IN NS ns\nns IN A 192.0.2.1\nrec IN TXT \"generated\"\n";
  NsdServer own(o);
  CHECK(own.port() != NsdServer::shared().port());
  CHECK(own.address() == "127.0.0.1:" + std::to_string(own.port()));
  auto r = resolver_for({own.address()});
  DnsAnswer a = r->txt("rec.gen.example");
  REQUIRE(a.status == DnsStatus::Ok);
  CHECK(a.records == std::vector<std::string>{"generated"});
  CHECK(a.ttl == 300);
  // The file zones are served too.
  CHECK(r->txt("split.dns.example").status == DnsStatus::Ok);
}

TEST_CASE("dns: NsdServer fails loudly on a broken zone", "[dns][nsd]") {
  namespace fs = std::filesystem;
  dmarc::test::NsdServerOptions o;
  o.zone_dir = DMARC_TEST_DATA_DIR "/zones/no-such-dir";
  CHECK_THROWS_WITH(NsdServer(o), Catch::Contains("no-such-dir"));

  const fs::path empty = fs::temp_directory_path() / ("dmarc-empty-zones-" + std::to_string(::getpid()));
  fs::create_directories(empty);
  o.zone_dir = empty.string();
  o.extra_zones["broken.example"] = "$ORIGIN broken.example.\n@ IN SOA ns hostmaster 1 2 3 4 5\nbad IN TXT \"unterminated\n";
  try {
    NsdServer broken(o);
    FAIL("NsdServer started with a broken zone");
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    CHECK(what.find("broken.example") != std::string::npos);
    CHECK(what.find("log:") != std::string::npos);
  }
  fs::remove_all(empty);
}

// --- LdnsResolver: answers -----------------------------------------------------------

TEST_CASE("dns: TXT character-strings of one record are concatenated", "[dns][ldns]") {
  DnsAnswer a = nsd_resolver().txt("split.dns.example");
  REQUIRE(a.status == DnsStatus::Ok);
  CHECK(a.records == std::vector<std::string>{"v=DMARC1; p=reject"});
  CHECK(a.ttl == 3600);
  CHECK(a.why.empty());

  DnsAnswer longer = nsd_resolver().txt("long.dns.example");
  REQUIRE(longer.status == DnsStatus::Ok);
  REQUIRE(longer.records.size() == 1);
  CHECK(longer.records[0] == std::string(255, 'a') + std::string(100, 'b'));
}

TEST_CASE("dns: several TXT records stay separate", "[dns][ldns]") {
  DnsAnswer a = nsd_resolver().txt("multi.dns.example");
  REQUIRE(a.status == DnsStatus::Ok);
  CHECK(sorted(a.records) == std::vector<std::string>{"first record", "second record"});
}

TEST_CASE("dns: TXT data is kept as raw bytes", "[dns][ldns]") {
  DnsAnswer a = nsd_resolver().txt("binary.dns.example");
  REQUIRE(a.status == DnsStatus::Ok);
  REQUIRE(a.records.size() == 1);
  CHECK(a.records[0] == std::string("caf\xC3\xA9 \"quoted\" back\\slash \xFF" "end"));

  DnsAnswer empty = nsd_resolver().txt("empty-txt.dns.example");
  REQUIRE(empty.status == DnsStatus::Ok);
  CHECK(empty.records == std::vector<std::string>{""});
}

TEST_CASE("dns: A, AAAA and MX formatting", "[dns][ldns]") {
  auto& r = nsd_resolver();
  DnsAnswer a = r.a("host.dns.example");
  REQUIRE(a.status == DnsStatus::Ok);
  CHECK(sorted(a.records) == std::vector<std::string>{"192.0.2.10", "192.0.2.11"});
  CHECK(a.ttl == 300);

  DnsAnswer aaaa = r.aaaa("host.dns.example");
  REQUIRE(aaaa.status == DnsStatus::Ok);
  CHECK(aaaa.records == std::vector<std::string>{"2001:db8::10"});
  // RFC 5952 4.2.2: one zero group is not shortened to "::".
  CHECK(r.aaaa("v6.dns.example").records == std::vector<std::string>{"2001:db8:0:1:1:1:1:1"});

  DnsAnswer mx = r.mx("mail.dns.example");
  REQUIRE(mx.status == DnsStatus::Ok);
  CHECK(sorted(mx.records) == std::vector<std::string>{"10 mx1.dns.example", "20 mx2.dns.example"});
  // RFC 7505 null MX: the root name stays ".".
  CHECK(r.mx("nullmx.dns.example").records == std::vector<std::string>{"0 ."});
}

TEST_CASE("dns: PTR lookups through Resolver::ptr", "[dns][ldns]") {
  auto& r = nsd_resolver();
  DnsAnswer one = r.ptr("192.0.2.10");
  REQUIRE(one.status == DnsStatus::Ok);
  CHECK(one.records == std::vector<std::string>{"host.dns.example"});

  DnsAnswer two = r.ptr("192.0.2.12");
  REQUIRE(two.status == DnsStatus::Ok);
  CHECK(sorted(two.records) == std::vector<std::string>{"a.dns.example", "b.dns.example"});

  DnsAnswer v6 = r.ptr("2001:db8::10");
  REQUIRE(v6.status == DnsStatus::Ok);
  CHECK(v6.records == std::vector<std::string>{"host.dns.example"});

  CHECK(r.ptr("192.0.2.99").status == DnsStatus::NxDomain);
  CHECK(r.ptr("not-an-address").status == DnsStatus::PermFail);
}

TEST_CASE("dns: NXDOMAIN and NoData with the RFC 2308 negative TTL", "[dns][ldns]") {
  auto& r = nsd_resolver();
  DnsAnswer nx = r.txt("nothere.dns.example");
  CHECK(nx.status == DnsStatus::NxDomain);
  CHECK(nx.records.empty());
  CHECK(nx.ttl == 120);  // min(SOA TTL 3600, MINIMUM 120)
  CHECK(nx.why.find("NXDOMAIN") != std::string::npos);

  DnsAnswer nodata = r.txt("nodata.dns.example");
  CHECK(nodata.status == DnsStatus::NoData);
  CHECK(nodata.records.empty());
  CHECK(nodata.ttl == 120);

  // An empty non-terminal exists: NoData, not NXDOMAIN.
  CHECK(r.txt("ent.dns.example").status == DnsStatus::NoData);

  // negttl.example: SOA TTL 30 < MINIMUM 900.
  DnsAnswer nx2 = r.txt("missing.negttl.example");
  CHECK(nx2.status == DnsStatus::NxDomain);
  CHECK(nx2.ttl == 30);
  DnsAnswer nodata2 = r.txt("exists.negttl.example");
  CHECK(nodata2.status == DnsStatus::NoData);
  CHECK(nodata2.ttl == 30);
}

TEST_CASE("dns: CNAME chains are followed", "[dns][ldns]") {
  auto& r = nsd_resolver();
  DnsAnswer chain = r.txt("chain-a.dns.example");
  REQUIRE(chain.status == DnsStatus::Ok);
  CHECK(chain.records == std::vector<std::string>{"end of chain"});
  CHECK(chain.ttl == 50);  // the smallest TTL along the chain
  CHECK(r.txt("chain-b.dns.example").records == std::vector<std::string>{"end of chain"});

  // RFC 6604: the RCODE describes the end of the chain.
  DnsAnswer dangling = r.txt("dangling.dns.example");
  CHECK(dangling.status == DnsStatus::NxDomain);
  DnsAnswer nodata = r.txt("alias-nodata.dns.example");
  CHECK(nodata.status == DnsStatus::NoData);
  CHECK(r.a("alias-nodata.dns.example").records == std::vector<std::string>{"192.0.2.20"});
  CHECK(r.a("chain-a.dns.example").status == DnsStatus::NoData);

  // Into another zone: NSD stops at the CNAME, the resolver asks again.
  DnsAnswer cross = r.txt("cross.dns.example");
  REQUIRE(cross.status == DnsStatus::Ok);
  CHECK(cross.records == std::vector<std::string>{"reached across zones"});
  CHECK(cross.ttl == 600);

  DnsAnswer loop = r.txt("loop-a.dns.example");
  CHECK(loop.status == DnsStatus::PermFail);
  CHECK(loop.why.find("CNAME") != std::string::npos);
}

TEST_CASE("dns: names are absolute and case-insensitive", "[dns][ldns]") {
  auto& r = nsd_resolver();
  CHECK(r.txt("SPLIT.Dns.EXAMPLE").records == std::vector<std::string>{"v=DMARC1; p=reject"});
  CHECK(r.txt("split.dns.example.").records == std::vector<std::string>{"v=DMARC1; p=reject"});
}

TEST_CASE("dns: short TTLs are reported as served", "[dns][ldns]") {
  DnsAnswer a = nsd_resolver().txt("short.dns.example");
  REQUIRE(a.status == DnsStatus::Ok);
  CHECK(a.ttl == 5);
}

TEST_CASE("dns: truncated UDP answers are repeated over TCP", "[dns][ldns]") {
  // Twelve ~200-octet TXT records do not fit 1232 (EDNS) nor 512 octets.
  for (std::optional<std::uint16_t> edns : {std::optional<std::uint16_t>(1232), std::optional<std::uint16_t>()}) {
    dmarc::LdnsResolverOptions o;
    o.nameservers = {NsdServer::shared().address()};
    o.edns_buffer_size = edns;
    LdnsResolver r(o);
    DnsAnswer a = r.txt("big.dns.example");
    REQUIRE(a.status == DnsStatus::Ok);
    CHECK(a.records.size() == 12);
  }
}

// --- LdnsResolver: failures -------------------------------------------------------

TEST_CASE("dns: invalid names are PermFail and never sent", "[dns][ldns]") {
  ScriptedDnsServer fake([](const std::string& q) { return dmarc::test::dns_reply(q, 0); });
  auto r = resolver_for({fake.address()}, 300ms, 1);
  const std::string label63(63, 'a');
  const std::string name253 = label63 + "." + label63 + "." + label63 + "." + std::string(61, 'b');  // 253
  REQUIRE(name253.size() == 253);
  const std::vector<std::string> bad = {
      "",
      ".",
      name253 + "c",                      // 254 octets
      std::string(64, 'a') + ".example",  // label of 64
      "a..example",
      ".example",
      "sp ace.example",
      std::string("nul\0.example", 12),
      "tab\t.example",
  };
  for (const auto& name : bad) {
    INFO("name: " << name);
    DnsAnswer a = r->txt(name);
    CHECK(a.status == DnsStatus::PermFail);
    CHECK(a.why.find("invalid domain name") != std::string::npos);
  }
  CHECK(fake.queries() == 0);
  // The longest valid name is sent (and the fake's empty NOERROR is NoData).
  CHECK(r->txt(name253).status == DnsStatus::NoData);
  CHECK(r->txt(name253 + ".").status == DnsStatus::NoData);
  CHECK(fake.queries() == 2);
}

TEST_CASE("dns: a server that never answers gives TempFail after the timeout", "[dns][ldns]") {
  BlackHoleServer hole;
  auto r = resolver_for({hole.address()}, 300ms, 1);
  auto start = std::chrono::steady_clock::now();
  DnsAnswer a = r->txt("split.dns.example");
  auto took = std::chrono::steady_clock::now() - start;
  CHECK(a.status == DnsStatus::TempFail);
  CHECK(a.why == "timeout contacting " + hole.address());
  CHECK(took >= 250ms);
  CHECK(took < 3s);

  auto twice = resolver_for({hole.address()}, 200ms, 2);
  start = std::chrono::steady_clock::now();
  CHECK(twice->txt("split.dns.example").status == DnsStatus::TempFail);
  CHECK(std::chrono::steady_clock::now() - start >= 350ms);
}

TEST_CASE("dns: one time budget bounds all the lookups of a message", "[dns][ldns][budget]") {
  BlackHoleServer hole;
  // Each lookup alone could wait 2 x 2 s; the message's budget is 700 ms.
  auto r = resolver_for({hole.address()}, 2000ms, 2);
  dmarc::DnsTimeBudget budget(700ms);
  auto start = std::chrono::steady_clock::now();
  {
    dmarc::DnsBudgetScope scope(budget);
    DnsAnswer a = r->txt("split.dns.example");
    CHECK(a.status == DnsStatus::TempFail);
    CHECK(std::chrono::steady_clock::now() - start >= 650ms);
    CHECK(budget.exhausted());
    // Once spent, later lookups fail at once, without waiting or sending.
    auto t2 = std::chrono::steady_clock::now();
    for (int i = 0; i < 20; ++i) {
      a = r->txt("k" + std::to_string(i) + "._domainkey.dns.example");
      CHECK(a.status == DnsStatus::TempFail);
      CHECK(a.why == "DNS time budget of the message used up");
    }
    CHECK(std::chrono::steady_clock::now() - t2 < 200ms);
  }
  CHECK(std::chrono::steady_clock::now() - start < 1500ms);
  // Outside the scope the resolver waits as configured again.
  CHECK(dmarc::current_dns_budget() == nullptr);
  // Answered lookups spend only what they waited.
  dmarc::DnsTimeBudget fresh(5s);
  {
    dmarc::DnsBudgetScope scope(fresh);
    CHECK(nsd_resolver().txt("split.dns.example").status == DnsStatus::Ok);
  }
  CHECK(fresh.remaining() > 4s);
  CHECK(fresh.remaining() < 5s);
}

TEST_CASE("dns: the next nameserver is tried after a timeout or SERVFAIL", "[dns][ldns]") {
  BlackHoleServer hole;
  ScriptedDnsServer servfail([](const std::string& q) { return dmarc::test::dns_reply(q, 2); });
  auto r = resolver_for({hole.address(), servfail.address(), NsdServer::shared().address()}, 200ms, 1);
  for (int i = 0; i < 3; ++i) {  // every query starts with all servers eligible
    DnsAnswer a = r->txt("split.dns.example");
    REQUIRE(a.status == DnsStatus::Ok);
    CHECK(a.records == std::vector<std::string>{"v=DMARC1; p=reject"});
  }
  CHECK(servfail.queries() == 3);
  CHECK(r->nameservers().size() == 3);
}

TEST_CASE("dns: SERVFAIL and REFUSED are TempFail", "[dns][ldns]") {
  ScriptedDnsServer servfail([](const std::string& q) { return dmarc::test::dns_reply(q, 2); });
  auto r = resolver_for({servfail.address()}, 300ms, 2);
  DnsAnswer a = r->txt("split.dns.example");
  CHECK(a.status == DnsStatus::TempFail);
  CHECK(a.why == "SERVFAIL from " + servfail.address());
  CHECK(servfail.queries() == 2);  // two tries

  ScriptedDnsServer refusing([](const std::string& q) { return dmarc::test::dns_reply(q, 5); });
  auto r2 = resolver_for({refusing.address()}, 300ms, 1);
  DnsAnswer refused = r2->txt("split.dns.example");
  CHECK(refused.status == DnsStatus::TempFail);
  CHECK(refused.why == "REFUSED from " + refusing.address());

  // NSD refuses names outside its zones (example.net: RFC 2606, never served here).
  DnsAnswer outside = nsd_resolver().txt("www.example.net");
  CHECK(outside.status == DnsStatus::TempFail);
  CHECK(outside.why == "REFUSED from " + NsdServer::shared().address());
}

TEST_CASE("dns: FORMERR, NOTIMP and malformed answers are PermFail", "[dns][ldns]") {
  for (int rcode : {1, 4}) {
    ScriptedDnsServer fake([rcode](const std::string& q) { return dmarc::test::dns_reply(q, rcode); });
    auto r = resolver_for({fake.address()}, 300ms, 1);
    DnsAnswer a = r->txt("split.dns.example");
    CHECK(a.status == DnsStatus::PermFail);
    CHECK(a.why == std::string(rcode == 1 ? "FORMERR" : "NOTIMP") + " from " + fake.address());
  }

  SECTION("an answer count with no records") {
    ScriptedDnsServer fake([](const std::string& q) { return dmarc::test::dns_reply(q, 0, 0, "", 1); });
    auto r = resolver_for({fake.address()}, 300ms, 1);
    DnsAnswer a = r->txt("split.dns.example");
    CHECK(a.status == DnsStatus::PermFail);
    CHECK(a.why.find("malformed") != std::string::npos);
  }
  SECTION("an A record of three octets") {
    ScriptedDnsServer fake([](const std::string& q) {
      return dmarc::test::dns_reply(q, 0, 0, rr_header(1, 300, 3) + "\x01\x02\x03", 1);
    });
    auto r = resolver_for({fake.address()}, 300ms, 1);
    DnsAnswer a = r->a("split.dns.example");
    CHECK(a.status == DnsStatus::PermFail);
    CHECK(a.why.find("malformed") != std::string::npos);
  }
  SECTION("a TXT character-string longer than its RDATA") {
    ScriptedDnsServer fake([](const std::string& q) {
      return dmarc::test::dns_reply(q, 0, 0, rr_header(16, 300, 5) + "\x09" "abcd", 1);
    });
    auto r = resolver_for({fake.address()}, 300ms, 1);
    DnsAnswer a = r->txt("split.dns.example");
    CHECK(a.status == DnsStatus::PermFail);
    CHECK(a.why.find("malformed") != std::string::npos);
  }
}

TEST_CASE("dns: answers that do not match the query are ignored", "[dns][ldns]") {
  SECTION("wrong ID") {
    ScriptedDnsServer fake([](const std::string& q) {
      std::string reply = dmarc::test::dns_reply(q, 0, 0, rr_header(16, 300, 2) + "\x01x", 1);
      reply[1] = static_cast<char>(reply[1] ^ 0x5a);
      return reply;
    });
    auto r = resolver_for({fake.address()}, 300ms, 1);
    DnsAnswer a = r->txt("split.dns.example");
    CHECK(a.status == DnsStatus::TempFail);
    CHECK(a.why == "answer from " + fake.address() + " does not match the query");
  }
  SECTION("wrong question") {
    ScriptedDnsServer fake([](const std::string& q) {
      std::string other = dmarc::test::dns_query(dmarc::test::dns_id(q), "other.example", 16, true);
      return dmarc::test::dns_reply(other, 0, 0, rr_header(16, 300, 2) + "\x01x", 1);
    });
    auto r = resolver_for({fake.address()}, 300ms, 1);
    CHECK(r->txt("split.dns.example").status == DnsStatus::TempFail);
  }
  SECTION("a matching answer from the same fake is accepted") {
    ScriptedDnsServer fake([](const std::string& q) {
      return dmarc::test::dns_reply(q, 0, 0, rr_header(16, 77, 2) + "\x01x", 1);
    });
    auto r = resolver_for({fake.address()}, 300ms, 1);
    DnsAnswer a = r->txt("split.dns.example");
    REQUIRE(a.status == DnsStatus::Ok);
    CHECK(a.records == std::vector<std::string>{"x"});
    CHECK(a.ttl == 77);
  }
}

TEST_CASE("dns: queries ask for recursion", "[dns][ldns]") {
  std::atomic<bool> rd{false};
  ScriptedDnsServer fake([&rd](const std::string& q) {
    rd = q.size() > 2 && (static_cast<unsigned char>(q[2]) & 0x01) != 0;
    return dmarc::test::dns_reply(q, 3);
  });
  auto r = resolver_for({fake.address()}, 300ms, 1);
  CHECK(r->txt("x.example").status == DnsStatus::NxDomain);
  CHECK(rd);
}

// --- LdnsResolver: configuration -------------------------------------------------

TEST_CASE("dns: nameserver strings", "[dns][ldns][config]") {
  auto ns = dmarc::parse_nameserver("192.0.2.1");
  REQUIRE(ns);
  CHECK(ns->address == "192.0.2.1");
  CHECK(ns->port == 53);
  CHECK(ns->to_string() == "192.0.2.1:53");

  ns = dmarc::parse_nameserver("127.0.0.1:5353");
  REQUIRE(ns);
  CHECK(ns->port == 5353);

  ns = dmarc::parse_nameserver("[2001:db8::1]:5353");
  REQUIRE(ns);
  CHECK(ns->address == "2001:db8::1");
  CHECK(ns->port == 5353);
  CHECK(ns->to_string() == "[2001:db8::1]:5353");

  ns = dmarc::parse_nameserver("::1");
  REQUIRE(ns);
  CHECK(ns->address == "::1");
  CHECK(ns->port == 53);
  CHECK(dmarc::parse_nameserver("[::1]"));

  for (const char* bad : {"", "localhost", "dns.example:53", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:",
                          "127.0.0.1:x", "[::1", "[::1]53", "[::1]:", "[192.0.2.1]:53", "256.0.0.1", "1.2.3"}) {
    INFO("nameserver: " << bad);
    auto r = dmarc::parse_nameserver(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().find("invalid nameserver \"" + std::string(bad) + "\"") == 0);
  }
}

TEST_CASE("dns: LdnsResolver rejects bad options", "[dns][ldns][config]") {
  dmarc::LdnsResolverOptions o;
  o.nameservers = {"127.0.0.1", "not-an-ip"};
  auto r = LdnsResolver::create(o);
  REQUIRE_FALSE(r);
  CHECK(r.error().find("not-an-ip") != std::string::npos);
  CHECK_THROWS_AS(LdnsResolver(o), std::invalid_argument);

  o.nameservers = {"127.0.0.1"};
  o.timeout = 0ms;
  CHECK_FALSE(LdnsResolver::create(o));
  o.timeout = 100ms;
  o.tries = 0;
  CHECK_FALSE(LdnsResolver::create(o));
  o.tries = 1;
  o.edns_buffer_size = 100;
  CHECK_FALSE(LdnsResolver::create(o));
  o.edns_buffer_size = 4096;
  CHECK(LdnsResolver::create(o));
}

TEST_CASE("dns: nameservers from a resolv.conf", "[dns][ldns][config]") {
  namespace fs = std::filesystem;
  const fs::path path = fs::temp_directory_path() / ("dmarc-resolv-" + std::to_string(::getpid()) + ".conf");
  {
    std::ofstream out(path);
    out << "# test\nsearch corp.example\nnameserver 192.0.2.53\nnameserver 2001:db8::53\n";
  }
  dmarc::LdnsResolverOptions o;
  o.resolv_conf = path.string();
  auto r = LdnsResolver::create(o);
  fs::remove(path);
  REQUIRE(r);
  REQUIRE((*r)->nameservers().size() == 2);
  CHECK((*r)->nameservers()[0].to_string() == "192.0.2.53:53");
  CHECK((*r)->nameservers()[1].to_string() == "[2001:db8::53]:53");

  o.resolv_conf = (fs::temp_directory_path() / "dmarc-no-such-resolv.conf").string();
  auto missing = LdnsResolver::create(o);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().find("dmarc-no-such-resolv.conf") != std::string::npos);
}

// --- LdnsResolver: threads ---------------------------------------------------------

TEST_CASE("dns: LdnsResolver is safe from many threads at once", "[dns][ldns][threads]") {
  struct Case {
    std::string name;
    RRType type;
    DnsStatus status;
    std::vector<std::string> records;  // sorted
  };
  const std::vector<Case> cases = {
      {"split.dns.example", RRType::TXT, DnsStatus::Ok, {"v=DMARC1; p=reject"}},
      {"multi.dns.example", RRType::TXT, DnsStatus::Ok, {"first record", "second record"}},
      {"host.dns.example", RRType::A, DnsStatus::Ok, {"192.0.2.10", "192.0.2.11"}},
      {"host.dns.example", RRType::AAAA, DnsStatus::Ok, {"2001:db8::10"}},
      {"mail.dns.example", RRType::MX, DnsStatus::Ok, {"10 mx1.dns.example", "20 mx2.dns.example"}},
      {"10.2.0.192.in-addr.arpa", RRType::PTR, DnsStatus::Ok, {"host.dns.example"}},
      {"chain-a.dns.example", RRType::TXT, DnsStatus::Ok, {"end of chain"}},
      {"cross.dns.example", RRType::TXT, DnsStatus::Ok, {"reached across zones"}},
      {"nothere.dns.example", RRType::TXT, DnsStatus::NxDomain, {}},
      {"nodata.dns.example", RRType::TXT, DnsStatus::NoData, {}},
  };
  auto r = resolver_for({NsdServer::shared().address()});
  std::atomic<int> wrong{0};
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const Case& c = cases[static_cast<std::size_t>(t * 7 + i) % cases.size()];
        DnsAnswer a = r->query(c.name, c.type);
        if (a.status != c.status || sorted(a.records) != c.records) ++wrong;
        ++done;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(done == 1600);
  CHECK(wrong == 0);
}

// --- CachedResolver ------------------------------------------------------------------

TEST_CASE("dns: cache hits and misses", "[dns][cache]") {
  FakeResolver up;
  up.set("a.example", RRType::TXT, ok_answer({"v=spf1 -all"}, 300));
  FakeClock clock;
  dmarc::CachedResolverOptions o;
  o.clock = clock.fn();
  CachedResolver cache(up, o);

  DnsAnswer first = cache.txt("a.example");
  CHECK(first.status == DnsStatus::Ok);
  CHECK(first.ttl == 300);
  DnsAnswer second = cache.txt("A.Example.");  // same key
  CHECK(second.records == std::vector<std::string>{"v=spf1 -all"});
  CHECK(up.calls == 1);
  CHECK(cache.a("a.example").status == DnsStatus::NxDomain);  // other type: a miss
  CHECK(up.calls == 2);

  auto st = cache.stats();
  CHECK(st.hits == 1);
  CHECK(st.misses == 2);
  CHECK(st.entries == 2);
  CHECK(st.evictions == 0);

  cache.clear();
  CHECK(cache.stats().entries == 0);
  cache.txt("a.example");
  CHECK(up.calls == 3);
}

TEST_CASE("dns: cache entries expire with their TTL (injected clock)", "[dns][cache]") {
  FakeResolver up;
  up.set("a.example", RRType::TXT, ok_answer({"x"}, 100));
  FakeClock clock;
  dmarc::CachedResolverOptions o;
  o.clock = clock.fn();
  CachedResolver cache(up, o);

  CHECK(cache.txt("a.example").ttl == 100);
  clock.now += 40s;
  DnsAnswer hit = cache.txt("a.example");
  CHECK(hit.ttl == 60);  // the remaining TTL
  CHECK(up.calls == 1);
  clock.now += 59s;
  CHECK(cache.txt("a.example").ttl == 1);
  CHECK(up.calls == 1);
  clock.now += 1s;  // exactly 100 s: expired
  CHECK(cache.txt("a.example").ttl == 100);
  CHECK(up.calls == 2);
  CHECK(cache.stats().expirations == 1);
}

TEST_CASE("dns: cache TTLs are capped by max_ttl", "[dns][cache]") {
  FakeResolver up;
  up.set("a.example", RRType::TXT, ok_answer({"x"}, 86400));
  FakeClock clock;
  dmarc::CachedResolverOptions o;
  o.clock = clock.fn();
  o.max_ttl = 3600s;
  CachedResolver cache(up, o);
  CHECK(cache.txt("a.example").ttl == 3600);
  clock.now += 3599s;
  CHECK(cache.txt("a.example").ttl == 1);
  clock.now += 1s;
  cache.txt("a.example");
  CHECK(up.calls == 2);
}

TEST_CASE("dns: negative answers are cached, failures are not", "[dns][cache]") {
  FakeResolver up;
  up.set("nx.example", RRType::TXT, status_answer(DnsStatus::NxDomain, 30));
  up.set("nodata.example", RRType::TXT, status_answer(DnsStatus::NoData, 20));
  up.set("temp.example", RRType::TXT, status_answer(DnsStatus::TempFail, 0));
  up.set("perm.example", RRType::TXT, status_answer(DnsStatus::PermFail, 0));
  up.set("zero.example", RRType::TXT, ok_answer({"x"}, 0));
  FakeClock clock;
  dmarc::CachedResolverOptions o;
  o.clock = clock.fn();

  SECTION("defaults") {
    CachedResolver cache(up, o);
    CHECK(cache.txt("nx.example").status == DnsStatus::NxDomain);
    CHECK(cache.txt("nx.example").status == DnsStatus::NxDomain);
    CHECK(cache.txt("nodata.example").status == DnsStatus::NoData);
    CHECK(cache.txt("nodata.example").status == DnsStatus::NoData);
    CHECK(up.calls == 2);
    clock.now += 20s;  // NoData (20 s) expired, NXDOMAIN (30 s) not
    cache.txt("nx.example");
    cache.txt("nodata.example");
    CHECK(up.calls == 3);

    for (int i = 0; i < 2; ++i) {
      CHECK(cache.txt("temp.example").status == DnsStatus::TempFail);
      CHECK(cache.txt("perm.example").status == DnsStatus::PermFail);
      CHECK(cache.txt("zero.example").status == DnsStatus::Ok);  // TTL 0: not cached
    }
    CHECK(up.calls == 9);
  }
  SECTION("min_negative_ttl raises short negative TTLs") {
    o.min_negative_ttl = 300s;
    CachedResolver cache(up, o);
    CHECK(cache.txt("nx.example").ttl == 300);
    clock.now += 299s;
    CHECK(cache.txt("nx.example").ttl == 1);
    CHECK(up.calls == 1);
  }
  SECTION("cache_negative = false") {
    o.cache_negative = false;
    CachedResolver cache(up, o);
    cache.txt("nx.example");
    cache.txt("nx.example");
    CHECK(up.calls == 2);
  }
}

TEST_CASE("dns: the cache size is bounded (LRU eviction)", "[dns][cache]") {
  FakeResolver up;
  for (const char* n : {"a.example", "b.example", "c.example", "d.example"}) up.set(n, RRType::TXT, ok_answer({n}, 300));
  dmarc::CachedResolverOptions o;
  o.shards = 1;
  o.max_entries = 3;
  CachedResolver cache(up, o);
  cache.txt("a.example");
  cache.txt("b.example");
  cache.txt("c.example");
  cache.txt("a.example");  // a is now the most recent; b the least
  cache.txt("d.example");  // evicts b
  auto st = cache.stats();
  CHECK(st.entries == 3);
  CHECK(st.evictions == 1);
  const int calls = up.calls;
  cache.txt("a.example");
  CHECK(up.calls == calls);
  cache.txt("b.example");
  CHECK(up.calls == calls + 1);

  SECTION("over many shards") {
    dmarc::CachedResolverOptions many;
    many.shards = 4;
    many.max_entries = 8;
    CachedResolver sharded(up, many);
    for (int i = 0; i < 200; ++i) sharded.txt("n" + std::to_string(i) + ".example");
    CHECK(sharded.stats().entries <= 8);
    CHECK(sharded.stats().evictions >= 192);
  }
}

TEST_CASE("dns: the cache memory is bounded, limits and upstream change in place", "[dns][cache]") {
  FakeResolver up;
  const std::string big(60 * 1024, 'x');  // one TXT answer of 60 KiB
  for (int i = 0; i < 100; ++i) up.set("big" + std::to_string(i) + ".example", RRType::TXT, ok_answer({big}, 300));
  dmarc::CachedResolverOptions o;
  o.shards = 4;
  o.max_entries = 65536;
  o.max_bytes = 1u << 20;  // 1 MiB
  CachedResolver cache(up, o);
  for (int i = 0; i < 100; ++i) cache.txt("big" + std::to_string(i) + ".example");
  auto st = cache.stats();
  CHECK(st.bytes <= (1u << 20));
  CHECK(st.entries < 20);  // 6 MB offered: far from all kept
  CHECK(st.entries > 0);
  CHECK(st.evictions > 0);
  // An answer larger than a shard's share is not cached at all.
  const std::string huge(300 * 1024, 'y');
  up.set("huge.example", RRType::TXT, ok_answer({huge}, 300));
  int calls = up.calls;
  cache.txt("huge.example");
  cache.txt("huge.example");
  CHECK(up.calls == calls + 2);

  // Smaller limits shrink the cache at once.
  cache.set_limits(2, 1u << 20, std::chrono::seconds(3600));
  CHECK(cache.stats().entries <= 4);  // 1 per shard (ceil(2/4))
  // A new upstream answers the misses; cached answers stay.
  FakeResolver other;
  other.set("new.example", RRType::TXT, ok_answer({"from the other"}, 300));
  cache.set_upstream(std::shared_ptr<dmarc::Resolver>(&other, [](dmarc::Resolver*) {}));
  CHECK(cache.txt("new.example").records == std::vector<std::string>{"from the other"});
  CHECK(other.calls == 1);
}

TEST_CASE("dns: cache options are checked and exceptions stay inside", "[dns][cache]") {
  FakeResolver up;
  dmarc::CachedResolverOptions o;
  o.shards = 0;
  CHECK_THROWS_AS(CachedResolver(up, o), std::invalid_argument);
  o.shards = 16;
  o.max_entries = 0;
  CHECK_THROWS_AS(CachedResolver(up, o), std::invalid_argument);

  up.throw_ = true;
  CachedResolver cache(up);
  DnsAnswer a = cache.txt("a.example");
  CHECK(a.status == DnsStatus::TempFail);
  CHECK(a.why.find("upstream exploded") != std::string::npos);
}

TEST_CASE("dns: the cache is consistent from 8 threads", "[dns][cache][threads]") {
  auto up = std::make_shared<FakeResolver>();
  for (int i = 0; i < 64; ++i) {
    up->set("n" + std::to_string(i) + ".example", RRType::TXT, ok_answer({"r" + std::to_string(i)}, 3600));
  }
  dmarc::CachedResolverOptions o;
  o.max_entries = 48;  // smaller than the working set: evictions under load
  o.shards = 4;
  CachedResolver cache(up, o);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        const int n = (t * 31 + i * 7) % 80;  // 64 known names, 16 NXDOMAIN
        DnsAnswer a = cache.txt("n" + std::to_string(n) + ".example");
        if (n < 64) {
          if (a.status != DnsStatus::Ok || a.records != std::vector<std::string>{"r" + std::to_string(n)}) ++wrong;
        } else if (a.status != DnsStatus::NxDomain) {
          ++wrong;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(wrong == 0);
  auto st = cache.stats();
  CHECK(st.hits + st.misses == 16000);
  CHECK(static_cast<std::uint64_t>(up->calls) == st.misses);
  CHECK(st.entries <= 48);
}

TEST_CASE("dns: CachedResolver over LdnsResolver and NSD", "[dns][cache][ldns]") {
  auto ldns = std::shared_ptr<LdnsResolver>(resolver_for({NsdServer::shared().address()}));
  CachedResolver cache(ldns);
  DnsAnswer a = cache.txt("split.dns.example");
  REQUIRE(a.status == DnsStatus::Ok);
  CHECK(a.ttl == 3600);
  DnsAnswer b = cache.txt("split.dns.example");
  CHECK(b.records == a.records);
  CHECK(b.ttl <= 3600);
  CHECK(cache.txt("nothere.dns.example").status == DnsStatus::NxDomain);
  CHECK(cache.txt("nothere.dns.example").ttl <= 120);
  CHECK(cache.ptr("192.0.2.10").records == std::vector<std::string>{"host.dns.example"});
  CHECK(cache.ptr("192.0.2.10").records == std::vector<std::string>{"host.dns.example"});
  auto st = cache.stats();
  CHECK(st.misses == 3);
  CHECK(st.hits == 3);

  BlackHoleServer hole;
  CachedResolver failing(std::shared_ptr<dmarc::Resolver>(resolver_for({hole.address()}, 100ms, 1)));
  CHECK(failing.txt("split.dns.example").status == DnsStatus::TempFail);
  CHECK(failing.txt("split.dns.example").status == DnsStatus::TempFail);
  CHECK(failing.stats().misses == 2);  // TempFail is not cached
}
