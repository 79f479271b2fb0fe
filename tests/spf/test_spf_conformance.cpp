// test_spf_conformance.cpp - the open-spf.org RFC 7208 suite and the
// stalwart mail-auth SPF vectors, run through SpfVerifier
//
// Data is read in place from DMARC_CONFORMANCE_DIR/spf (see its SOURCE.md):
//   rfc7208-tests.yml         203 cases; each scenario's zonedata is the only
//                             DNS, served by a StaticResolver:
//                               - SPF RRs are also served as TXT when a name
//                                 has no TXT entry (TXT: NONE included),
//                               - TIMEOUT: types listed before it answer,
//                                 every other type times out (TempFail),
//                               - CNAMEs are followed, as the resolver would,
//                               - YAML "\xEF" escapes are code points, fed as
//                                 their UTF-8 bytes (as pyspf does).
//                             A list of results accepts any member;
//                             explanation "DEFAULT" is the default
//                             explanation, which the harness sets to the
//                             literal "DEFAULT".
//   stalwart-mail-auth/*.yml  not YAML: read line by line as mail-auth's own
//                             driver does (records accumulate per file).
//
// Expected failures are listed in kKnownRfc7208 / kKnownStalwart with the
// reason; a listed case that passes fails the test, so the lists stay true.
#include <yaml-cpp/yaml.h>

#include <dirent.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "conformance/conformance_util.hpp"
#include "dmarc/adapters/spf.hpp"
#include "support/static_resolver.hpp"

using namespace dmarc;

namespace {

// Cases of rfc7208-tests.yml that do not give the expected result, and why.
// None today: every libspf2 departure found by the suite is corrected in
// src/adapters/spf (see spf_syntax.hpp and spf_dns_bridge.hpp).
const std::map<std::string, std::string> kKnownRfc7208 = {};

// Cases of stalwart-mail-auth/*.yml ("file:line" of the expect line) where
// mail-auth departs from RFC 7208 and we follow the RFC (and the rfc7208
// suite's case named in each reason).
const std::map<std::string, std::string> kKnownStalwart = {
    {"all.yml:14",
     "\"v=spf1 -all ip:10.0.0.1\": mail-auth skips terms after \"all\" unparsed and says fail; \"ip:\" is not "
     "a mechanism, and RFC 7208 4.6: \"If there are any syntax errors anywhere in the record, check_host() "
     "returns immediately with the result 'permerror'\" (rfc7208 detect-errors-anywhere: \"-all moo\" is "
     "permerror). We say permerror."},
    {"basic.yml:112",
     "ten a: terms naming non-existent hosts: mail-auth has no void-lookup limit and says softfail; RFC 7208 "
     "4.6.4: \"SPF implementations SHOULD limit 'void lookups' to two ... Exceeding the limit produces a "
     "'permerror' result\" (rfc7208 void-over-limit). We say permerror at the third."},
    {"exists.yml:19",
     "exists: on a name with only AAAA records: mail-auth also accepts AAAA; RFC 7208 5.7: \"The resulting "
     "domain name is used for a DNS A RR lookup (even when the connection type is IPv6). If any A record is "
     "returned, this mechanism matches\" (rfc7208 exists-ip6only). We say fail."},
    {"ip.yml:54",
     "IPv4 client 10.1.2.3 against ip6:::ffff:10.1.2.3: mail-auth maps the IPv4 client into IPv6 and matches; "
     "RFC 7208 5: an IPv4(-mapped) address \"MUST still be considered an IPv4 address and MUST be evaluated "
     "using IPv4 mechanisms (i.e., 'ip4' and 'a')\" (rfc7208 cidr6-ip4, cidr6-0-ip4). We say fail."},
    {"macro.yml:35",
     "IPv6 client; exists:%{ir}.%{v}._spf.%{d2} names a host with only an AAAA record: as exists.yml:19, RFC "
     "7208 5.7 looks up A records only, even for IPv6 clients. We say fail."},
};

// MagicErrorResolver - mail-auth's test resolver fails names starting with
// "_dns_error." with a DNS error (its mock_resolve).
class MagicErrorResolver : public Resolver {
 public:
  explicit MagicErrorResolver(Resolver& inner) : inner_(inner) {}
  DnsAnswer query(std::string_view name, RRType type) override {
    if (name.rfind("_dns_error.", 0) == 0) {
      DnsAnswer a;
      a.status = DnsStatus::TempFail;
      a.why = "magic _dns_error name";
      return a;
    }
    return inner_.query(name, type);
  }

 private:
  Resolver& inner_;
};

std::string text_of(const YAML::Node& n) { return n.IsNull() ? std::string() : n.as<std::string>(); }

// load_zone - one scenario's zonedata into a StaticResolver.
void load_zone(const YAML::Node& zonedata, test::StaticResolver& dns) {
  for (const auto& entry : zonedata) {
    const std::string name = entry.first.as<std::string>();
    std::vector<std::string> spf;
    bool has_txt = false;
    for (const auto& item : entry.second) {
      if (item.IsScalar()) {
        if (item.as<std::string>() == "TIMEOUT") dns.fail_unlisted(name, DnsStatus::TempFail);
        continue;
      }
      for (const auto& rr : item) {
        const std::string type = rr.first.as<std::string>();
        const YAML::Node& v = rr.second;
        auto joined = [&]() {
          if (!v.IsSequence()) return text_of(v);
          std::string s;
          for (const auto& part : v) s += text_of(part);
          return s;
        };
        if (type == "TXT") {
          has_txt = true;
          if (v.IsScalar() && v.as<std::string>() == "NONE") continue;
          dns.add_txt(name, joined());
        } else if (type == "SPF") {
          spf.push_back(joined());
        } else if (type == "A") {
          dns.add(name, RRType::A, text_of(v));
        } else if (type == "AAAA") {
          dns.add(name, RRType::AAAA, text_of(v));
        } else if (type == "MX") {
          std::string host = text_of(v[1]);
          dns.add(name, RRType::MX, text_of(v[0]) + " " + (host.empty() ? "." : host));
        } else if (type == "PTR") {
          dns.add(name, RRType::PTR, text_of(v));
        } else if (type == "CNAME") {
          dns.add_cname(name, text_of(v));
        } else {
          FAIL("unknown zonedata type " << type);
        }
      }
    }
    // SOURCE.md 3: auto-duplication of SPF RRs as TXT, after every listed item.
    if (!has_txt) {
      for (const auto& s : spf) dns.add_txt(name, s);
    }
  }
}

std::vector<std::string> expected_results(const YAML::Node& r) {
  std::vector<std::string> out;
  if (r.IsSequence()) {
    for (const auto& x : r) out.push_back(x.as<std::string>());
  } else {
    out.push_back(r.as<std::string>());
  }
  return out;
}

std::vector<std::string> list_dir(const std::string& dir, const std::string& suffix) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  REQUIRE(d != nullptr);
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n.size() > suffix.size() && n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0) out.push_back(n);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

std::string trim(std::string s) {
  auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return {};
  auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    item = trim(item);
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

}  // namespace

TEST_CASE("conformance: spf rfc7208-tests.yml (203 cases)", "[conformance][spf]") {
  const std::string path = test::conformance_path("spf/rfc7208-tests.yml");
  std::vector<YAML::Node> docs = YAML::LoadAllFromFile(path);
  test::Tally t{"spf/rfc7208-tests.yml"};
  std::map<std::string, bool> known_seen;
  for (const auto& doc : docs) {
    if (!doc["tests"]) continue;
    for (const auto& tc : doc["tests"]) {
      const std::string id = tc.first.as<std::string>();
      const YAML::Node& c = tc.second;
      test::StaticResolver dns;
      load_zone(doc["zonedata"], dns);
      SpfOptions opts;
      opts.default_explanation = "DEFAULT";
      auto v = SpfVerifier::create(dns, opts);
      REQUIRE(v);
      const std::string host = text_of(c["host"]);
      const std::string helo = text_of(c["helo"]);
      const std::string from = text_of(c["mailfrom"]);
      SpfCheckResult r = (*v)->check(host, helo, from);
      std::vector<std::string> want = expected_results(c["result"]);
      const std::string got(to_token(r.result));
      bool ok = std::find(want.begin(), want.end(), got) != want.end();
      if (ok && c["explanation"]) ok = r.explanation == text_of(c["explanation"]);
      ++t.total;
      if (ok) ++t.passed;
      auto known = kKnownRfc7208.find(id);
      INFO(id << ": host=" << host << " helo=" << helo << " mailfrom=" << from << " -> " << got << " ("
              << r.problem << ") explanation=\"" << r.explanation << "\"; want " << want.front()
              << (c["explanation"] ? " \"" + text_of(c["explanation"]) + "\"" : std::string()));
      if (known == kKnownRfc7208.end()) {
        CHECK(ok);
      } else {
        ++t.differ;
        known_seen[id] = true;
        // A listed case that now passes: take it off the list.
        CHECK_FALSE(ok);
      }
    }
  }
  for (const auto& [id, why] : kKnownRfc7208) {
    INFO("listed case not in the suite: " << id);
    CHECK(known_seen.count(id) == 1);
  }
  t.report();
  CHECK(t.total == 203);
}

TEST_CASE("conformance: spf stalwart-mail-auth/*.yml", "[conformance][spf]") {
  const std::string dir = test::conformance_path("spf/stalwart-mail-auth");
  test::Tally t{"spf/stalwart-mail-auth"};
  for (const auto& file : list_dir(dir, ".yml")) {
    std::ifstream in(dir + "/" + file);
    REQUIRE(in.good());
    // mail-auth's driver stores records in caches keyed by (name, type): a
    // later line for the same key replaces the earlier one.
    std::map<std::pair<std::string, RRType>, std::vector<std::string>> zone;
    std::string helo, sender, ip = "127.0.0.1";
    std::string line;
    int lineno = 0;
    while (std::getline(in, line)) {
      ++lineno;
      line = trim(line);
      if (!line.empty() && line[0] == '-') line = trim(line.substr(1));
      if (line.empty() || line[0] == '#') continue;
      auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      const std::string key = line.substr(0, colon);
      const std::string value = trim(line.substr(colon + 1));
      auto first_word = [&](std::string& rest) {
        auto sp = value.find(' ');
        rest = sp == std::string::npos ? std::string() : trim(value.substr(sp + 1));
        return value.substr(0, sp);
      };
      std::string rest;
      if (key == "spf" || key == "exp") {
        std::string name = first_word(rest);
        zone[{name, RRType::TXT}] = {rest};
      } else if (key == "a" || key == "aaaa") {
        std::string name = first_word(rest);
        zone[{name, key == "a" ? RRType::A : RRType::AAAA}] = split_list(rest);
      } else if (key == "ptr") {
        std::string addr = first_word(rest);
        auto rev = reverse_name(addr);
        REQUIRE(rev);
        zone[{*rev, RRType::PTR}] = split_list(rest);
      } else if (key == "mx") {
        std::string name = first_word(rest);
        auto ips = split_list(rest);
        std::vector<std::string> mx;
        for (std::size_t i = 0; i < ips.size(); ++i) {
          const std::string host = "mx." + ips[i] + "." + std::to_string(i);
          mx.push_back(std::to_string(i + 1) + " " + host);
          zone[{host, ips[i].find(':') != std::string::npos ? RRType::AAAA : RRType::A}] = {ips[i]};
        }
        zone[{name, RRType::MX}] = mx;
      } else if (key == "domain") {
        helo = value;
      } else if (key == "sender") {
        sender = value;
      } else if (key == "ip") {
        ip = value;
      } else if (key == "expect") {
        std::string want_result = first_word(rest);
        test::StaticResolver dns;
        for (const auto& [k, values] : zone) {
          for (const auto& v : values) dns.add(k.first, k.second, v);
        }
        MagicErrorResolver magic(dns);
        SpfOptions opts;
        opts.receiver = "localdomain.org";
        auto v = SpfVerifier::create(magic, opts);
        REQUIRE(v);
        // The driver's SpfParameters::verify(): the HELO identity first, the
        // MAIL FROM identity only when HELO passes.
        SpfCheckResult r = (*v)->check_helo(ip, helo);
        if (r.result == AuthResult::Pass) r = (*v)->check(ip, helo, sender);
        const std::string got(to_token(r.result));
        bool ok = got == want_result && (rest.empty() || r.explanation == rest);
        ++t.total;
        if (ok) ++t.passed;
        const std::string id = file + ":" + std::to_string(lineno);
        INFO(id << ": ip=" << ip << " helo=" << helo << " sender=" << sender << " -> " << got << " (" << r.problem
                << ") \"" << r.explanation << "\"; want " << want_result << " \"" << rest << "\"");
        if (kKnownStalwart.count(id) == 0) {
          CHECK(ok);
        } else {
          ++t.differ;
          CHECK_FALSE(ok);
        }
      }
    }
  }
  t.report();
  CHECK(t.total == 163);
}
