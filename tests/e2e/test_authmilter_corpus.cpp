// test_authmilter_corpus.cpp - the Authentication Milter end-to-end corpus
// (../shared/conformance/dmarc/authentication-milter-e2e, 33 cases) run
// through the built dmarc-milter in a real Postfix
//
// World: the corpus zonefile (Net::DNS::Resolver::Mock format) is converted
// here, at test time, into one root zone "." that a private NSD serves; a
// name the zonefile does not list is NXDOMAIN, as it is for the mock
// resolver. Each upstream config (config/<name>) becomes one dmarc-milter
// configuration with its own milter process and Postfix instance; every
// case's source message goes in over SMTP with XCLIENT giving the client
// address and HELO of the case. Our dmarc, spf and dkim results are read
// from our Authentication-Results field in the delivered message, or from
// the milter's log line when the message was refused, and compared with
// the results upstream's expected output holds.
//
// Every case matches, or is in one of the tables below: kSkips (no
// upstream DMARC result to compare; what dmarc-milter does instead is
// pinned), kDifferences (a deliberate difference, with its reason) and
// kKnownFailures (a dmarc-milter bug, named). A listed difference or known
// failure that starts to match fails the test, so the tables stay honest.
// Runs as root (Postfix's master needs it).
//
// DNS decisions (convert_zonefile): the NS lines below the root are
// dropped (in one root zone they would be delegations, and example.com's
// data would become a referral); exact duplicates are one record; a TXT
// line without data is one empty string; ";ERROR,<name>,<TYPE>,NXDOMAIN"
// names are checked to be absent (IP literals as in-addr.arpa names), so
// NSD answers them NXDOMAIN authoritatively, never REFUSED; SOA/NS of the
// root zone and one glue name ns.corpus.test are added.
//
// Mapping decisions (see also the tables):
//  - DMARCMode rfc7489. The corpus was made with Mail::DMARC as
//    authentication_milter configures it here (mail-dmarc.ini names a
//    public_suffix_list: organizational domain from the PSL, pct kept),
//    i.e. RFC 7489. The corpus's two DMARC domains are registered domains
//    with p=reject / p=none and pct=100, so rfc9989 must give the same
//    results; DMARC_CORPUS_MODE=rfc9989 in the environment runs the suite
//    in that mode to show it.
//  - upstream "normal" and "hide_none" only add headers: RejectFailures no.
//    "dmarc_reject" (hard_reject) is RejectFailures yes, its whitelist
//    99.0.0.0/8 is TrustedForwarders 99.0.0.0/8; "dmarc_reject_wl" adds
//    dkim:marcbradshaw.net. No upstream config refuses mail for an
//    unreadable From (dmarc=permerror is only reported): BadFromAction accept.
//  - AuthservID: upstream's, so the Sanitize cases mean the same thing:
//    test.module (the authserv-id of upstream's expected output) and mx.example.net
//    (hide_none's authserv_id). Its hosts_to_remove example.com becomes
//    OwnAuthservIDs example.com.
//  - The envelope as a real SMTP client sends it: MAIL FROM:<mail_from>
//    with the angle brackets of "<marc@...>" not doubled, "" as the null
//    reverse-path <>, and odd values ("marc@ marcbradshaw.net", two
//    addresses separated by a comma) sent verbatim between the brackets:
//    what Postfix makes of them is part of the result.
//  - Not mapped: upstream's TrustedIP list (123.123.12.3, DKIM only) and
//    ip_map (client address rewriting): no such features (see the tables).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "conformance/conformance_util.hpp"
#include "support/milter_process.hpp"
#include "support/nsd_server.hpp"
#include "support/postfix_instance.hpp"
#include "support/smtp_client.hpp"

using namespace dmarc::test;

namespace {

const std::string kCorpus = "dmarc/authentication-milter-e2e";

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}
std::string join(const std::vector<std::string>& v, const std::string& sep = ",") {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// ---------------------------------------------------------------------------
// The zonefile -> one root zone for NSD
// ---------------------------------------------------------------------------

struct ZoneRecord {
  std::string owner;  // lower case, no trailing dot; "" is the root
  std::string type;   // upper case
  std::string rdata;  // presentation form, names absolute
};

struct ZoneConversion {
  std::string text;                                   // the zone file for NSD
  std::vector<ZoneRecord> records;                    // what it serves (besides SOA/NS/glue)
  std::vector<std::pair<std::string, std::string>> dropped;  // source line, why
  std::vector<std::pair<std::string, std::string>> nxdomain;  // name, type (";ERROR" lines)
};

std::string absolute(std::string name) {
  if (name.empty() || name.back() != '.') name += '.';
  return name;
}

std::string owner_of(std::string name) {
  name = lower(name);
  while (!name.empty() && name.back() == '.') name.pop_back();
  return name;
}

// An IPv4 literal as the mock resolver takes PTR questions ("1.2.3.4")
// becomes its reverse name (RFC 1035 3.5).
std::string reverse_name_if_ip(const std::string& name, const std::string& type) {
  in_addr a{};
  if (type != "PTR" || inet_pton(AF_INET, name.c_str(), &a) != 1) return owner_of(name);
  std::vector<std::string> parts;
  std::stringstream ss(name);
  for (std::string p; std::getline(ss, p, '.');) parts.push_back(p);
  std::reverse(parts.begin(), parts.end());
  return join(parts, ".") + ".in-addr.arpa";
}

struct Token {
  std::string text;
  bool quoted = false;
};

// Presentation-format tokens of one line: blanks separate, "..." is one
// token (backslash escapes the next character), ( and ) group (one line
// here, so they are dropped), ; outside quotes starts a comment.
std::vector<Token> tokenize(const std::string& line) {
  std::vector<Token> out;
  std::size_t i = 0;
  while (i < line.size()) {
    char c = line[i];
    if (c == ' ' || c == '\t' || c == '\r' || c == '(' || c == ')') {
      ++i;
    } else if (c == ';') {
      break;
    } else if (c == '"') {
      Token t;
      t.quoted = true;
      for (++i; i < line.size() && line[i] != '"'; ++i) {
        if (line[i] == '\\' && i + 1 < line.size()) ++i;
        t.text += line[i];
      }
      if (i >= line.size()) throw std::runtime_error("zonefile: unterminated quoted string: " + line);
      ++i;
      out.push_back(std::move(t));
    } else {
      Token t;
      while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r' && line[i] != '(' &&
             line[i] != ')' && line[i] != ';' && line[i] != '"')
        t.text += line[i++];
      out.push_back(std::move(t));
    }
  }
  return out;
}

std::string quote_txt(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u >= 0x7f) {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\%03u", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

ZoneConversion convert_zonefile(const std::string& source) {
  ZoneConversion z;
  std::set<std::string> seen;  // owner|type|rdata, lower case
  std::stringstream in(source);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos) continue;
    if (line.compare(start, 7, ";ERROR,") == 0) {
      // ;ERROR,<name>,<TYPE>,<RCODE>: the mock answers that question with RCODE.
      std::vector<std::string> f;
      std::stringstream ss(line.substr(start + 7));
      for (std::string p; std::getline(ss, p, ',');) f.push_back(p);
      if (f.size() != 3) throw std::runtime_error("zonefile: bad ;ERROR line: " + line);
      if (upper(f[2]) != "NXDOMAIN")
        throw std::runtime_error("zonefile: only NXDOMAIN error lines can be served by NSD: " + line);
      z.nxdomain.emplace_back(reverse_name_if_ip(f[0], upper(f[1])), upper(f[1]));
      continue;
    }
    if (line[start] == ';') continue;  // a comment
    std::vector<Token> t = tokenize(line);
    if (t.size() < 2) throw std::runtime_error("zonefile: too short: " + line);
    ZoneRecord r;
    r.owner = owner_of(t[0].text);
    std::size_t i = 1;
    // [TTL] [class] or [class] [TTL], both optional (RFC 1035 5.1).
    for (int k = 0; k < 2 && i < t.size(); ++k) {
      if (all_digits(t[i].text) || upper(t[i].text) == "IN") ++i;
    }
    if (i >= t.size()) throw std::runtime_error("zonefile: no type: " + line);
    r.type = upper(t[i++].text);
    std::vector<Token> rd(t.begin() + static_cast<std::ptrdiff_t>(i), t.end());
    if (r.type == "TXT") {
      // Each token, quoted or not, is one character-string. A TXT line
      // without data stands for an empty TXT record (one empty string).
      if (rd.empty()) rd.push_back(Token{});
      std::vector<std::string> parts;
      for (const auto& x : rd) parts.push_back(quote_txt(x.text));
      r.rdata = join(parts, " ");
    } else if (r.type == "A" || r.type == "AAAA") {
      if (rd.size() != 1) throw std::runtime_error("zonefile: bad address: " + line);
      r.rdata = rd[0].text;
    } else if (r.type == "CNAME" || r.type == "PTR" || r.type == "NS") {
      if (rd.size() != 1) throw std::runtime_error("zonefile: bad target: " + line);
      r.rdata = lower(absolute(rd[0].text));
    } else if (r.type == "MX") {
      if (rd.size() != 2 || !all_digits(rd[0].text)) throw std::runtime_error("zonefile: bad MX: " + line);
      r.rdata = rd[0].text + " " + lower(absolute(rd[1].text));
    } else {
      throw std::runtime_error("zonefile: type " + r.type + " not converted: " + line);
    }
    if (r.type == "NS") {
      // In one root zone an NS set below the apex is a zone cut: every
      // name at and below it would get a referral instead of its data.
      z.dropped.emplace_back(line, "NS below the root zone's apex would be a delegation");
      continue;
    }
    if (!seen.insert(r.owner + "|" + r.type + "|" + lower(r.rdata)).second) {
      z.dropped.emplace_back(line, "duplicate record (same owner, type and data)");
      continue;
    }
    z.records.push_back(std::move(r));
  }

  // RFC 1034 3.6.2: a CNAME owner has no other data. Keep the CNAME.
  std::set<std::string> cname_owners;
  for (const auto& r : z.records)
    if (r.type == "CNAME") cname_owners.insert(r.owner);
  std::vector<ZoneRecord> kept;
  for (auto& r : z.records) {
    if (r.type != "CNAME" && cname_owners.count(r.owner)) {
      z.dropped.emplace_back(r.owner + " " + r.type + " " + r.rdata, "other data at a CNAME owner");
      continue;
    }
    kept.push_back(std::move(r));
  }
  z.records = std::move(kept);

  // Every ;ERROR name must be NXDOMAIN: no record at it or below it (an
  // empty non-terminal would be NOERROR/NODATA).
  for (const auto& [name, type] : z.nxdomain) {
    for (const auto& r : z.records) {
      if (r.owner == name || ends_with(r.owner, "." + name))
        throw std::runtime_error("zonefile: " + name + " is declared NXDOMAIN but " + r.owner + " exists");
    }
  }

  std::ostringstream out;
  out << "; generated by tests/e2e/test_authmilter_corpus.cpp from the corpus zonefile\n"
      << "$ORIGIN .\n$TTL 300\n"
      << ". IN SOA ns.corpus.test. hostmaster.corpus.test. 1 3600 600 86400 300\n"
      << ". IN NS ns.corpus.test.\n"
      << "ns.corpus.test. IN A 127.0.0.1\n";
  for (const auto& r : z.records) out << absolute(r.owner) << " IN " << r.type << " " << r.rdata << "\n";
  z.text = out.str();
  return z;
}

// The concatenated TXT strings of OWNER in the conversion ("" if none).
std::vector<std::string> txt_of(const ZoneConversion& z, const std::string& owner) {
  std::vector<std::string> out;
  for (const auto& r : z.records) {
    if (r.owner != owner || r.type != "TXT") continue;
    std::string joined;
    for (const auto& t : tokenize(r.rdata)) joined += t.text;
    out.push_back(joined);
  }
  return out;
}

// ---------------------------------------------------------------------------
// DNS: one question to NSD (small copy of the helpers of the e2e suites)
// ---------------------------------------------------------------------------

struct DnsAnswer {
  int rcode = -1;
  bool aa = false;
  int ancount = 0;
};

DnsAnswer ask(std::uint16_t port, const std::string& name, std::uint16_t qtype) {
  static std::uint16_t id = 0x4c00;
  const std::string q = dns_query(++id, name, qtype);
  DnsAnswer a;
  const std::string r = exchange_udp(port, q, std::chrono::milliseconds(2000));
  if (r.size() >= 12) {
    a.rcode = dns_rcode(r);
    a.aa = (static_cast<unsigned char>(r[2]) & 0x04) != 0;
    a.ancount = (static_cast<unsigned char>(r[6]) << 8) | static_cast<unsigned char>(r[7]);
  }
  return a;
}

std::uint16_t qtype_of(const std::string& type) {
  static const std::map<std::string, std::uint16_t> types = {{"A", 1},   {"NS", 2},  {"CNAME", 5}, {"SOA", 6},
                                                             {"PTR", 12}, {"MX", 15}, {"TXT", 16},  {"AAAA", 28}};
  auto it = types.find(type);
  if (it == types.end()) throw std::runtime_error("no qtype for " + type);
  return it->second;
}

// ---------------------------------------------------------------------------
// Authentication-Results (RFC 8601 2.2), read loosely for comparison
// ---------------------------------------------------------------------------

struct ResInfo {
  std::string method, result;
  std::map<std::string, std::string> props;  // "header.from" -> "example.com"
  std::string comment;                       // the comments, joined
};

struct ArField {
  std::string authserv_id;  // lower case
  std::vector<ResInfo> results;
};

ArField parse_ar(const std::string& value) {
  // Split into ';'-separated parts of tokens, keeping comments aside.
  std::vector<std::vector<std::string>> parts(1);
  std::vector<std::string> comments(1);
  std::string tok;
  bool in_tok = false;
  auto flush = [&] {
    if (in_tok) parts.back().push_back(tok);
    tok.clear();
    in_tok = false;
  };
  for (std::size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    if (c == '(') {
      flush();
      int depth = 0;
      std::string text;
      for (; i < value.size(); ++i) {
        if (value[i] == '\\' && i + 1 < value.size()) {
          text += value[++i];
          continue;
        }
        if (value[i] == '(' && depth++ == 0) continue;
        if (value[i] == ')' && --depth == 0) break;
        text += value[i];
      }
      comments.back() += (comments.back().empty() ? "" : " ") + text;
    } else if (c == '"') {
      in_tok = true;
      for (++i; i < value.size() && value[i] != '"'; ++i) {
        if (value[i] == '\\' && i + 1 < value.size()) ++i;
        tok += value[i];
      }
    } else if (c == ';') {
      flush();
      parts.emplace_back();
      comments.emplace_back();
    } else if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      flush();
    } else {
      tok += c;
      in_tok = true;
    }
  }
  flush();
  ArField f;
  if (!parts[0].empty()) f.authserv_id = lower(parts[0][0]);
  for (std::size_t p = 1; p < parts.size(); ++p) {
    if (parts[p].empty()) continue;
    ResInfo r;
    const std::string& first = parts[p][0];
    std::size_t eq = first.find('=');
    if (eq == std::string::npos) continue;  // "none": no result
    r.method = lower(first.substr(0, eq));
    std::size_t slash = r.method.find('/');
    if (slash != std::string::npos) r.method.resize(slash);
    r.result = lower(first.substr(eq + 1));
    for (std::size_t k = 1; k < parts[p].size(); ++k) {
      std::size_t e = parts[p][k].find('=');
      if (e != std::string::npos) r.props[lower(parts[p][k].substr(0, e))] = parts[p][k].substr(e + 1);
    }
    r.comment = comments[p];
    f.results.push_back(std::move(r));
  }
  return f;
}

// The value of property NAME of R ("" if absent).
std::string prop(const ResInfo& r, const std::string& name) {
  auto it = r.props.find(name);
  return it == r.props.end() ? std::string() : it->second;
}

// The value of KEY in a "p=reject sp=reject dis=none override=x" comment.
std::string comment_value(const std::string& comment, const std::string& key) {
  std::stringstream ss(comment);
  for (std::string w; ss >> w;) {
    if (w.rfind(key + "=", 0) == 0) return w.substr(key.size() + 1);
  }
  return {};
}

// ---------------------------------------------------------------------------
// One world per upstream config
// ---------------------------------------------------------------------------

std::string dmarc_mode() {
  const char* m = std::getenv("DMARC_CORPUS_MODE");
  return m && *m ? m : "rfc7489";
}

struct ConfigMap {
  std::string authserv_id;
  std::string lines;  // the dmarc-milter settings that map the upstream config
};

// config/<name> -> our settings (see the header comment).
const std::map<std::string, ConfigMap>& config_map() {
  static const std::map<std::string, ConfigMap> m = {
      {"config/normal", {"test.module", "OwnAuthservIDs example.com\nRejectFailures no\n"}},
      {"config/hide_none", {"mx.example.net", "OwnAuthservIDs example.com\nRejectFailures no\n"}},
      {"config/dmarc_reject", {"test.module", "RejectFailures yes\nTrustedForwarders 99.0.0.0/8\n"}},
      {"config/dmarc_reject_wl",
       {"test.module", "RejectFailures yes\nTrustedForwarders 99.0.0.0/8, dkim:marcbradshaw.net\n"}},
  };
  return m;
}

struct World {
  World(const ConfigMap& cm, std::uint16_t dns_port)
      : authserv_id(cm.authserv_id),
        milter(std::make_unique<MilterProcess>(config_text(cm, dns_port))),
        postfix(std::make_unique<PostfixInstance>(postfix_options(*milter))) {}
  ~World() {
    postfix.reset();  // Postfix first: it holds connections to the milter
    milter.reset();
  }
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  static std::string config_text(const ConfigMap& cm, std::uint16_t dns_port) {
    return "Syslog no\n"
           "LogLevel info\n"
           "AuthservID " + cm.authserv_id + "\n"
           "Nameservers 127.0.0.1:" + std::to_string(dns_port) + "\n"
           "DNSTimeout 2\n"
           "DNSRetries 1\n"
           "DMARCMode " + dmarc_mode() + "\n"
           "IgnoreHosts 127.0.0.1, ::1\n"
           "BadFromAction accept\n" + cm.lines;
  }
  static PostfixOptions postfix_options(const MilterProcess& m) {
    PostfixOptions o;
    o.milter = m.postfix_address();
    o.milter_default_action = "tempfail";
    o.hostname = "mx.corpus.test";
    // An inbound MX: Postfix neither adds nor rewrites header fields of
    // a message from any client (the 127.0.0.1 cases included).
    o.main_cf = {"local_header_rewrite_clients ="};
    return o;
  }

  std::string authserv_id;
  std::unique_ptr<MilterProcess> milter;
  std::unique_ptr<PostfixInstance> postfix;
};

// stop_worlds - every Postfix, then every milter at once: a milter takes
// some seconds to wind down after SIGTERM, and they need not queue for it.
void stop_worlds(std::map<std::string, std::unique_ptr<World>>& worlds) {
  for (auto& [name, w] : worlds) w->postfix.reset();
  std::vector<std::thread> stoppers;
  for (auto& [name, w] : worlds) stoppers.emplace_back([&m = w->milter] { m.reset(); });
  for (auto& t : stoppers) t.join();
  worlds.clear();
}

// ---------------------------------------------------------------------------
// The tables
// ---------------------------------------------------------------------------

// Cases with no upstream DMARC result to compare, keyed by expected_output.
// `pin` is what dmarc-milter must do instead (checked): "ignored_host"
// (not checked, no Authentication-Results of ours) or a dmarc result.
struct Skip {
  const char* expected_output;
  const char* pin;
  const char* label;  // for the count line
  const char* reason;
};
const Skip kSkips[] = {
    {"expected/google_apps_good.timeout.eml", "ignored_host", "local 127.0.0.1 not checked (IgnoreHosts)",
     "local client 127.0.0.1: not checked by design (IgnoreHosts 127.0.0.1, ::1, the default); upstream's "
     "expected output for this run (its .timeout variant) carries no Authentication-Results at all"},
    {"expected/google_apps_good.local.eml", "ignored_host", "local 127.0.0.1 not checked (IgnoreHosts)",
     "local client 127.0.0.1: not checked by design (IgnoreHosts); upstream checks DKIM only for local IPs"},
    {"expected/google_apps_good_case.local.eml", "ignored_host", "local 127.0.0.1 not checked (IgnoreHosts)",
     "local client 127.0.0.1: not checked by design (IgnoreHosts); upstream checks DKIM only for local IPs"},
    {"expected/google_apps_good.trusted.eml", "pass", "upstream TrustedIP: no upstream dmarc result",
     "upstream's TrustedIP list (123.123.12.3) gives DKIM only, no SPF or DMARC result; dmarc-milter has no "
     "DKIM-only class of clients (IgnoreHosts checks nothing), so the client is checked in full: DKIM compared, "
     "our dmarc pinned to pass (aligned DKIM)"},
    {"expected/google_apps_good_dryrun.eml", "pass", "upstream dryrun: no upstream dmarc result",
     "dryrun is an Authentication Milter output option (no header fields added): nothing to compare; our "
     "dmarc pinned to pass, as for the same message in 'Good message'"},
};

// Deliberate differences, keyed by expected_output and aspect: dmarc,
// spf, dkim (the result lists), policy (published p= and override reason
// per DMARC result), disposition (delivered / rejected / refused), sanitize
// (which other Authentication-Results fields are kept).
struct Difference {
  const char* expected_output;
  const char* aspect;
  const char* reason;
};
const char* const kMultiMailFrom =
    "MAIL FROM:<test@goestheweasel.com, test@marcbradshaw.net> is not a reverse-path (RFC 5321 4.1.2): Postfix "
    "refuses it with 501 5.1.7 before any milter sees a message; upstream's milter-mode harness handed the string "
    "to the filter, which found no usable MAIL FROM (spf=none) and went on";
const char* const kIpMap =
    "ip_map (upstream rewrites client 4.3.2.1 and 5.4.3.0/24 to 74.125.82.171) is not a feature of dmarc-milter: "
    "SPF is checked for the real client, which marcbradshaw.net's ~all soft-fails; DMARC still passes on the "
    "aligned DKIM signature";
const char* const kRsaSha1 =
    "the only signature is rsa-sha1 (s=tfe2), which RFC 8301 3.1 says MUST NOT pass (upstream passes it; this "
    "config also sets its DKIM handler's no_strict); "
    "so TrustedForwarders dkim:marcbradshaw.net, which needs a passing signature of that domain, does not apply "
    "and the p=reject failure is refused with 550 5.7.1 instead of being accepted as trusted_forwarder";
const char* const kLenientFrom =
    "the From field is a display name ending in a comma before the angle-addr (\"Dear Customer ...\", "
    "<noreply@example.com>), which RFC 5322 3.4 does not parse; upstream gives dmarc=permerror (no parseable "
    "from domain). dmarc-milter reads it leniently (issue 12: every domain a reasonable reading finds is the "
    "same, example.com, so that domain is evaluated and the field logged as malformed); example.com has no "
    "DMARC record, so dmarc=none";
const char* const kSanitize =
    "upstream's Sanitize removes every authserv-id equal to or below a hosts_to_remove entry (sub.example.com) "
    "or below its host name's parent domain (test.module -> module); dmarc-milter removes only fields whose "
    "authserv-id is exactly AuthservID or one of OwnAuthservIDs (RFC 8601 5), so it keeps those";
const std::vector<Difference> kDifferences = {
    {"expected/dmarc_multi_2.eml", "dmarc", kMultiMailFrom},
    {"expected/dmarc_multi_2.eml", "spf", kMultiMailFrom},
    {"expected/dmarc_multi_2.eml", "dkim", kMultiMailFrom},
    {"expected/dmarc_multi_2.eml", "policy", kMultiMailFrom},
    {"expected/dmarc_multi_2.eml", "disposition", kMultiMailFrom},
    {"expected/google_apps_good_map.eml", "spf", kIpMap},
    {"expected/google_apps_good_map_cidr.eml", "spf", kIpMap},
    {"expected/dmarc_reject_wl.eml", "dkim", kRsaSha1},
    {"expected/dmarc_reject_wl.eml", "policy", kRsaSha1},
    {"expected/dmarc_reject_wl.eml", "disposition", kRsaSha1},
    {"expected/spam_headers_spf_hide_none.eml", "dmarc", kLenientFrom},
    {"expected/spam_headers_hide_none.eml", "dmarc", kLenientFrom},
    {"expected/google_apps_good_sanitize.eml", "sanitize", kSanitize},
    {"expected/google_apps_good_sanitize_authserv_id.eml", "sanitize", kSanitize},
};

// Known failures: dmarc-milter bugs (src/), named. Same rule as
// kDifferences: the aspect must still differ. (The one found here,
// google_apps_bad_space: SPF checked the raw MAIL FROM argument
// "marc@ marcbradshaw.net" instead of the address Postfix parsed; fixed
// by reading {mail_addr}.)
const std::vector<Difference> kKnownFailures = {};

const Skip* skip_of(const std::string& expected_output) {
  for (const auto& s : kSkips)
    if (expected_output == s.expected_output) return &s;
  return nullptr;
}
const Difference* difference_of(const std::string& expected_output, const std::string& aspect) {
  for (const auto& d : kDifferences)
    if (expected_output == d.expected_output && aspect == d.aspect) return &d;
  return nullptr;
}
const Difference* known_failure_of(const std::string& expected_output, const std::string& aspect) {
  for (const auto& d : kKnownFailures)
    if (expected_output == d.expected_output && aspect == d.aspect) return &d;
  return nullptr;
}

// ---------------------------------------------------------------------------
// One case: what upstream got, what we get
// ---------------------------------------------------------------------------

// The results of one case, each aspect as a comparable string.
struct Results {
  std::map<std::string, std::string> aspect;
};

std::string strip_angle(std::string s) {
  if (s.size() >= 2 && s.front() == '<' && s.back() == '>') s = s.substr(1, s.size() - 2);
  return s;
}

// The authserv-ids of the Authentication-Results fields of MESSAGE other
// than ours (or upstream's own, the first), sorted, lower case.
std::string foreign_ar_ids(const std::string& message, const std::string& own_id) {
  std::vector<std::string> ids;
  bool own_seen = false;
  for (const auto& v : header_values(message, "Authentication-Results")) {
    std::string id = parse_ar(v).authserv_id;
    if (id == own_id && !own_seen) {
      own_seen = true;
      continue;
    }
    ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  return join(ids);
}

// The "policy" aspect: for each DMARC result other than none/permerror
// (no policy then), "domain:p=<published>:override=<reason or ->".
std::string policy_aspect(const std::vector<std::tuple<std::string, std::string, std::string, std::string>>& dmarc) {
  std::vector<std::string> out;
  for (const auto& [result, domain, published, override_reason] : dmarc) {
    if (result == "none" || result == "permerror") continue;
    out.push_back(domain + ":p=" + (published.empty() ? "-" : published) +
                  ":override=" + (override_reason.empty() ? "-" : override_reason));
  }
  std::sort(out.begin(), out.end());
  return join(out, " ");
}

// The "dmarc" aspect: "result:domain" in the order given (upstream and
// dmarc-milter both list the From domains in header order).
std::string dmarc_aspect(const std::vector<std::tuple<std::string, std::string, std::string, std::string>>& dmarc) {
  std::vector<std::string> out;
  for (const auto& [result, domain, published, override_reason] : dmarc) out.push_back(result + ":" + lower(domain));
  return join(out, " ");
}

std::vector<std::string> without_none(std::vector<std::string> v, bool hide_none) {
  if (hide_none) v.erase(std::remove(v.begin(), v.end(), "none"), v.end());
  return v;
}

Results upstream_results(const nlohmann::json& c) {
  Results r;
  const nlohmann::json& er = c["expected_results"];
  const bool hide_none = c["config"] == "config/hide_none";
  std::string out = read_text(kCorpus + "/" + c["expected_output"].get<std::string>());
  const bool rejected = out.rfind("Message rejected with code", 0) == 0;
  r.aspect["disposition"] = rejected ? "rejected 550" : "delivered";

  std::vector<std::tuple<std::string, std::string, std::string, std::string>> dmarc;
  if (c["expected_authentication_results"].is_string()) {
    ArField f = parse_ar(c["expected_authentication_results"].get<std::string>());
    for (const auto& x : f.results) {
      if (x.method != "dmarc") continue;
      dmarc.emplace_back(x.result, prop(x, "header.from"), prop(x, "policy.published-domain-policy"),
                         prop(x, "policy.override-reason"));
    }
  }
  if (rejected && dmarc.empty()) {
    // Derived here: upstream's hard_reject refuses only a DMARC fail under
    // p=reject, so the refused message's result is fail, for the domain of
    // its (single) From address.
    std::string from = header_values(read_text(kCorpus + "/" + c["input"].get<std::string>()), "From").at(0);
    std::string domain = from.substr(from.rfind('@') + 1);
    domain = domain.substr(0, domain.find_first_of("> \t\r\n;,"));
    dmarc.emplace_back("fail", domain, "reject", "");
  }
  // expected_results is what upstream printed: no entry for a method
  // means it did not run (a trusted or local client), except under
  // hide_none, where "none" results are left out.
  auto list = [&](const char* m) -> std::optional<std::vector<std::string>> {
    if (!er.contains(m)) {
      if (hide_none) return std::vector<std::string>{};
      return std::nullopt;
    }
    return without_none(er[m].get<std::vector<std::string>>(), hide_none);
  };
  if (!dmarc.empty() || er.contains("dmarc")) {
    r.aspect["dmarc"] = dmarc_aspect(dmarc);
    r.aspect["policy"] = policy_aspect(dmarc);
  }
  if (auto v = list("spf")) r.aspect["spf"] = join(*v);
  if (auto v = list("dkim")) r.aspect["dkim"] = join(*v);
  if (std::string(c["input"]).find("sanitize") != std::string::npos) {
    std::string first = header_values(out, "Authentication-Results").at(0);
    r.aspect["sanitize"] = foreign_ar_ids(out, parse_ar(first).authserv_id);
  }
  return r;
}

// Key=value words of a milter log line ("qid=... ip=... dmarc=fail ...").
std::map<std::string, std::string> log_fields(const std::string& line) {
  std::map<std::string, std::string> m;
  std::stringstream ss(line);
  for (std::string w; ss >> w;) {
    std::size_t e = w.find('=');
    if (e != std::string::npos) m[w.substr(0, e)] = w.substr(e + 1);
  }
  return m;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  if (s.empty()) return out;
  std::stringstream ss(s);
  for (std::string p; std::getline(ss, p, sep);) out.push_back(p);
  return out;
}

struct Run {
  SmtpOutcome out;
  std::string log_line;  // our log line for the message, "" if none
  std::string message;   // the delivered message, "" if none
  Results ours;
  std::string summary;   // for failure messages
};

// The line of LOG after offset MARK that is the message's ("... ip=IP ...").
std::string wait_log_line(const MilterProcess& milter, std::size_t mark, const std::string& ip) {
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < end) {
    std::string log = milter.log();
    if (log.size() > mark) {
      std::stringstream ss(log.substr(mark));
      for (std::string l; std::getline(ss, l);) {
        if (l.find(" ip=" + ip + " ") != std::string::npos) return l;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return {};
}

// The delivered message Postfix queued as QID (its Received: "id QID").
std::string wait_delivered_qid(const PostfixInstance& postfix, const std::string& qid) {
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < end) {
    for (const auto& m : postfix.delivered()) {
      for (const auto& r : header_values(m, "Received")) {
        std::size_t p = r.find(" id " + qid);
        if (p == std::string::npos) continue;
        std::size_t after = p + 4 + qid.size();
        if (after >= r.size() || !std::isalnum(static_cast<unsigned char>(r[after]))) return m;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return {};
}

Run run_case(World& w, const nlohmann::json& c) {
  const nlohmann::json& env = c["envelope"];
  const bool hide_none = c["config"] == "config/hide_none";
  Run run;
  SmtpMessage m;
  XclientAttributes x;
  x.addr = env["client_ip"].get<std::string>();
  x.name = "[UNAVAILABLE]";
  x.helo = env["helo"].get<std::string>();
  m.xclient = x;
  m.helo = env["helo"].get<std::string>();
  m.mail_from = strip_angle(env["mail_from"].get<std::string>());
  m.rcpt_to = {strip_angle(env["rcpt_to"].get<std::string>())};
  m.data = read_text(kCorpus + "/" + c["input"].get<std::string>());
  const std::size_t mark = w.milter->log().size();
  run.out = send_mail(w.postfix->port(), m);
  const std::string ip = env["client_ip"].get<std::string>();

  if (run.out.stage == "message") run.log_line = wait_log_line(*w.milter, mark, ip);
  if (run.out.accepted()) run.message = wait_delivered_qid(*w.postfix, run.out.queue_id());

  Results& r = run.ours;
  if (run.out.accepted()) {
    r.aspect["disposition"] = run.message.empty() ? "accepted, not delivered" : "delivered";
  } else if (run.out.stage == "message") {
    r.aspect["disposition"] = "rejected " + std::to_string(run.out.final_reply.code);
  } else {
    r.aspect["disposition"] = "refused at " + run.out.stage + " " + std::to_string(run.out.final_reply.code) + " " +
                              run.out.final_reply.enhanced();
  }

  std::vector<std::tuple<std::string, std::string, std::string, std::string>> dmarc;
  std::vector<std::string> spf, dkim;
  bool have = false;
  std::optional<ArField> ours_ar;
  if (!run.message.empty()) {
    for (const auto& v : header_values(run.message, "Authentication-Results")) {
      ArField f = parse_ar(v);
      if (f.authserv_id == lower(w.authserv_id)) {
        ours_ar = f;
        break;
      }
    }
  }
  if (ours_ar) {
    have = true;
    for (const auto& ri : ours_ar->results) {
      if (ri.method == "dmarc") {
        dmarc.emplace_back(ri.result, prop(ri, "header.from"), comment_value(ri.comment, "p"),
                           comment_value(ri.comment, "override"));
      } else if (ri.method == "spf") {
        spf.push_back(ri.result);
      } else if (ri.method == "dkim") {
        dkim.push_back(ri.result);
      }
    }
  } else if (!run.log_line.empty() && run.log_line.find(" skipped=") == std::string::npos && !run.out.accepted()) {
    // Refused: the log line has what Authentication-Results would have had.
    have = true;
    auto f = log_fields(run.log_line);
    auto froms = split(f["from"], ','), results = split(f["dmarc"], ','), policies = split(f["policy"], ',');
    for (std::size_t i = 0; i < results.size(); ++i) {
      dmarc.emplace_back(results[i], i < froms.size() ? froms[i] : "", i < policies.size() ? policies[i] : "", "");
    }
    if (f["spf"] != "-") spf.push_back(f["spf"].substr(0, f["spf"].find(':')));
    if (f["dkim"] == "none") {
      dkim.push_back("none");
    } else {
      for (const auto& d : split(f["dkim"], ',')) dkim.push_back(d.substr(0, d.find(':')));
    }
    // The published policy is not in the log line (policy= is the
    // requested one: the same for these organizational domains).
  }
  if (have) {
    r.aspect["dmarc"] = dmarc_aspect(dmarc);
    r.aspect["policy"] = policy_aspect(dmarc);
    r.aspect["spf"] = join(without_none(spf, hide_none));
    r.aspect["dkim"] = join(without_none(dkim, hide_none));
  } else {
    r.aspect["dmarc"] = r.aspect["policy"] = r.aspect["spf"] = r.aspect["dkim"] = "(no result)";
  }
  if (!run.message.empty()) r.aspect["sanitize"] = foreign_ar_ids(run.message, lower(w.authserv_id));
  run.summary = run.out.transcript_text() + "\nlog: " + run.log_line + "\n" +
                (ours_ar ? "" : "(no Authentication-Results of ours)\n");
  if (!run.message.empty()) {
    for (const auto& v : header_values(run.message, "Authentication-Results")) run.summary += "A-R: " + v + "\n";
  }
  return run;
}

}  // namespace

// ---------------------------------------------------------------------------

TEST_CASE("corpus zonefile: converted in place to one root zone for NSD", "[e2e][corpus]") {
  ZoneConversion z = convert_zonefile(read_text(kCorpus + "/zonefile"));
  INFO(z.text);
  // Every NS line is below the apex and dropped; the two example.com A
  // lines are one record.
  std::size_t ns = 0, dup = 0;
  for (const auto& [line, why] : z.dropped) {
    if (why.rfind("NS below", 0) == 0) ++ns;
    if (why.rfind("duplicate", 0) == 0) ++dup;
  }
  CHECK(ns == 16);
  CHECK(dup == 1);
  CHECK(z.dropped.size() == 17);
  // TXT: quoted and unquoted segments are character-strings of one record.
  auto key = txt_of(z, "tfe2._domainkey.marcbradshaw.net");
  REQUIRE(key.size() == 1);
  CHECK_THAT(key[0], Catch::Matchers::StartsWith("v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAz/En"));
  CHECK_THAT(key[0], Catch::Matchers::Contains("Oa3OoqEJ4jNkIah3g9Fg4+UI9YTKDx5F"));
  CHECK_THAT(key[0], Catch::Matchers::EndsWith("nOlM7uTLD7EnXPLOEzmK91wIDAQAB"));
  auto g = txt_of(z, "20130820._domainkey.1e100.net");
  REQUIRE(g.size() == 1);
  CHECK_THAT(g[0], Catch::Matchers::Contains("szi7aTgerxI15o73cP5"));
  // Two TXT records at goestheweasel.com (SPF and a site verification).
  CHECK(txt_of(z, "goestheweasel.com").size() == 2);
  CHECK(txt_of(z, "_adsp._domainkey.goestheweasel.com") == std::vector<std::string>{"dkim=all"});
  // A TXT line without data: one empty string.
  CHECK(txt_of(z, "_domainkey.goestheweasel.com") == std::vector<std::string>{""});
  CHECK(txt_of(z, "_dmarc.goestheweasel.com") ==
        std::vector<std::string>{
            "v=DMARC1; p=reject; rua=mailto:dmarc.reports@ops.twofiftyeight.ltd.uk; rf=afrf; pct=100;"});
  // ;ERROR lines: names to answer NXDOMAIN, IP literals as reverse names.
  CHECK(z.nxdomain.size() == 5);
  CHECK(std::find(z.nxdomain.begin(), z.nxdomain.end(),
                  std::make_pair(std::string("4.3.2.1.in-addr.arpa"), std::string("PTR"))) != z.nxdomain.end());
  // Names without a trailing dot are absolute too.
  CHECK_THAT(z.text, Catch::Matchers::Contains("\ncnamea.example.com. IN A 74.125.82.172\n"));
  CHECK_THAT(z.text, Catch::Matchers::Contains("\nmail-we0-f172.google.com. IN CNAME cnamea.example.com.\n"));

  // The converter's own guards.
  CHECK_THROWS_WITH(convert_zonefile("a.example. TXT x\n;ERROR,a.example,TXT,NXDOMAIN\n"),
                    Catch::Matchers::Contains("declared NXDOMAIN"));
  CHECK_THROWS_WITH(convert_zonefile(";ERROR,a.example,TXT,SERVFAIL\n"), Catch::Matchers::Contains("only NXDOMAIN"));
  CHECK_THROWS_WITH(convert_zonefile("a.example. 60 IN SRV 0 0 25 b.example.\n"),
                    Catch::Matchers::Contains("not converted"));
  ZoneConversion c = convert_zonefile("a.example. CNAME b.example.\na.example. TXT \"x\"\n");
  CHECK(c.records.size() == 1);
  CHECK(c.dropped.size() == 1);
}

TEST_CASE("corpus: authentication-milter-e2e through dmarc-milter in Postfix", "[e2e][corpus]") {
  const auto t0 = std::chrono::steady_clock::now();
  const nlohmann::json cases = load_json(kCorpus + "/cases.json")["cases"];
  REQUIRE(cases.size() == 33);

  // DNS: the converted zonefile, one root zone. zone_dir is an empty
  // directory so that only that zone is served.
  ZoneConversion zone = convert_zonefile(read_text(kCorpus + "/zonefile"));
  char tmpl[] = "/tmp/dmarc-corpus-zones-XXXXXX";
  REQUIRE(mkdtemp(tmpl));
  struct RemoveDir {
    std::string dir;
    ~RemoveDir() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } remove_dir{tmpl};
  NsdServerOptions no;
  no.zone_dir = tmpl;
  no.extra_zones["."] = zone.text;
  NsdServer nsd(no);

  // What the mock answered NXDOMAIN, NSD answers NXDOMAIN (not REFUSED,
  // which our resolver would take as a DNS temperror), authoritatively;
  // so does every name the zonefile does not list.
  for (const auto& [name, type] : zone.nxdomain) {
    DnsAnswer a = ask(nsd.port(), name, qtype_of(type));
    INFO(name << " " << type);
    CHECK(a.rcode == 3);
    CHECK(a.aa);
  }
  for (const char* name : {"_dmarc.com", "example.org", "_dmarc.mail.example.org", "bad.name.google.com"}) {
    INFO(name);
    CHECK(ask(nsd.port(), name, 16).rcode == 3);
  }
  {
    DnsAnswer a = ask(nsd.port(), "_dmarc.goestheweasel.com", 16);
    CHECK((a.rcode == 0 && a.aa && a.ancount == 1));
    a = ask(nsd.port(), "example.com", 16);  // no referral: the data itself
    CHECK((a.rcode == 0 && a.aa && a.ancount == 2));
    a = ask(nsd.port(), "_netblocks.google.com", 16);
    CHECK((a.rcode == 0 && a.aa && a.ancount == 1));
  }

  // The tables name real cases and aspects.
  std::set<std::string> outputs;
  for (const auto& c : cases) outputs.insert(c["expected_output"].get<std::string>());
  REQUIRE(outputs.size() == 33);  // expected_output identifies a case
  for (const auto& s : kSkips) CHECK(outputs.count(s.expected_output) == 1);
  for (const auto* table : {&kDifferences, &kKnownFailures}) {
    for (const auto& d : *table) {
      CHECK(outputs.count(d.expected_output) == 1);
      CHECK(std::set<std::string>{"dmarc", "spf", "dkim", "policy", "disposition", "sanitize"}.count(d.aspect) == 1);
      CHECK_FALSE((difference_of(d.expected_output, d.aspect) && known_failure_of(d.expected_output, d.aspect)));
    }
  }

  std::map<std::string, std::unique_ptr<World>> worlds;
  int matched = 0, skipped = 0, dmarc_differ = 0, other_differ = 0, dmarc_bug = 0, other_bug = 0;
  std::map<std::string, int> skip_reasons;
  std::vector<std::string> listed;

  for (std::size_t i = 0; i < cases.size(); ++i) {
    const nlohmann::json& c = cases[i];
    const std::string key = c["expected_output"].get<std::string>();
    const std::string config = c["config"].get<std::string>();
    REQUIRE(config_map().count(config) == 1);
    auto& wp = worlds[config];
    if (!wp) wp = std::make_unique<World>(config_map().at(config), nsd.port());
    World& w = *wp;

    Results theirs = upstream_results(c);
    Run run = run_case(w, c);
    INFO("case " << i << " \"" << c["desc"].get<std::string>() << "\" (" << key << ", " << config << ")\n"
                 << run.summary);
    const Skip* skip = skip_of(key);

    if (skip) {
      // No upstream DMARC result: what we do instead is pinned.
      CHECK(theirs.aspect.count("dmarc") == 0);
      ++skipped;
      ++skip_reasons[skip->label];
      if (std::string(skip->pin) == "ignored_host") {
        CHECK(run.out.accepted());
        CHECK_THAT(run.log_line, Catch::Matchers::Contains("skipped=ignored_host"));
        CHECK(run.ours.aspect["dmarc"] == "(no result)");
        continue;  // nothing of ours to compare
      }
      CHECK(run.ours.aspect["dmarc"] == std::string(skip->pin) + ":marcbradshaw.net");
    }

    for (const auto& [aspect, their_value] : theirs.aspect) {
      if (skip && (aspect == "dmarc" || aspect == "policy")) continue;
      const std::string our_value = run.ours.aspect.count(aspect) ? run.ours.aspect.at(aspect) : "(none)";
      const Difference* d = difference_of(key, aspect);
      const Difference* bug = known_failure_of(key, aspect);
      INFO(aspect << ": upstream [" << their_value << "], dmarc-milter [" << our_value << "]");
      if (d || bug) {
        // A listed difference or known failure that no longer differs must
        // leave the list.
        CHECK(our_value != their_value);
        listed.push_back(std::string(bug ? "known failure: " : "difference: ") + key + " " + aspect + ": upstream [" +
                         their_value + "], ours [" + our_value + "]: " + (bug ? bug->reason : d->reason));
        if (bug) {
          if (aspect == "dmarc") ++dmarc_bug; else ++other_bug;
        } else {
          if (aspect == "dmarc") ++dmarc_differ; else ++other_differ;
        }
      } else {
        CHECK(our_value == their_value);
        if (aspect == "dmarc" && our_value == their_value) ++matched;
      }
    }
    // A difference listed for an aspect upstream has no value for is stale.
    for (const auto* table : {&kDifferences, &kKnownFailures}) {
      for (const auto& d : *table) {
        if (key == d.expected_output) CHECK(theirs.aspect.count(d.aspect) == 1);
      }
    }
    // A refused p=reject failure gets the reply issue 4 asks for.
    if (run.out.stage == "message" && run.out.final_reply.code == 550) {
      CHECK(run.out.final_reply.enhanced() == "5.7.1");
      CHECK_THAT(run.out.final_reply.str(), Catch::Matchers::Contains("DMARC policy of goestheweasel.com"));
    }
  }

  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::string skip_text;
  for (const auto& [why, n] : skip_reasons)
    skip_text += std::string(skip_text.empty() ? "" : ", ") + why + ": " + std::to_string(n);
  for (const auto& l : listed) std::cout << "  " << l << "\n";
  std::cout << "corpus: DMARCMode " << dmarc_mode() << ", " << worlds.size() << " milter+Postfix worlds, " << secs
            << " s\n";
  std::cout << "conformance: dmarc/authentication-milter-e2e: " << matched << "/" << cases.size()
            << " dmarc results match, " << skipped << " skipped (" << skip_text << "), " << dmarc_differ
            << " deliberate differences (listed in the test), " << dmarc_bug
            << " known failures (dmarc-milter bug, listed in the test); spf/dkim/policy/disposition/sanitize: "
            << other_differ << " deliberate differences, " << other_bug << " known failures\n";
  CHECK(matched + skipped + dmarc_differ + dmarc_bug == static_cast<int>(cases.size()));
  stop_worlds(worlds);
}
