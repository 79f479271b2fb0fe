// ldns_resolver.cpp - the production Resolver on top of ldns (see the header)
#include "dmarc/adapters/ldns_resolver.hpp"

#include "dmarc/adapters/c_handle.hpp"
#include "dmarc/adapters/dns_budget.hpp"

#include "dmarc/core/domain.hpp"

#include <arpa/inet.h>
// <stdbool.h> first: without it <ldns/common.h> defines bool, true and
// false as macros, even in C++.
#include <stdbool.h>
#include <ldns/ldns.h>
#include <sys/time.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <new>
#include <stdexcept>
#include <utility>

namespace dmarc {

namespace {

// --- RAII for ldns handles: the only place the *_free functions appear ------
void free_cstr(char* p) noexcept { std::free(p); }

using dmarc::CHandle;

using LdnsResolverH = CHandle<ldns_resolver, ldns_resolver_deep_free>;
using LdnsPkt = CHandle<ldns_pkt, ldns_pkt_free>;
using LdnsRdf = CHandle<ldns_rdf, ldns_rdf_deep_free>;
using CString = CHandle<char, free_cstr>;

constexpr std::uint32_t kNoTtl = std::numeric_limits<std::uint32_t>::max();
constexpr unsigned kMaxTries = 20;
constexpr std::size_t kMaxIdleHandleSets = 64;

DnsAnswer failure(DnsStatus status, std::string why) {
  DnsAnswer a;
  a.status = status;
  a.why = std::move(why);
  return a;
}

// clamp_ttl - RFC 2181 8: a TTL with the top bit set is treated as zero.
std::uint32_t clamp_ttl(std::uint32_t ttl) noexcept { return ttl > 0x7fffffffU ? 0 : ttl; }

bool is_ipv4(const std::string& s) {
  in_addr a{};
  return inet_pton(AF_INET, s.c_str(), &a) == 1;
}

bool is_ipv6(const std::string& s) {
  in6_addr a{};
  return inet_pton(AF_INET6, s.c_str(), &a) == 1;
}

std::optional<std::uint16_t> parse_port(std::string_view s) {
  if (s.empty() || s.size() > 5) return std::nullopt;
  unsigned v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v == 0 || v > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(v);
}

// to_wire_name - NAME (absolute, one optional trailing dot) in uncompressed
// wire form, or nullopt with WHY set. RFC 1035 2.3.4: labels 1..63 octets,
// at most 253 octets of text (255 on the wire).
std::optional<std::string> to_wire_name(std::string_view name, std::string& why) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty()) {
    why = "invalid domain name: empty";
    return std::nullopt;
  }
  if (name.size() > kMaxDomainLength) {
    why = "invalid domain name: longer than 253 octets";
    return std::nullopt;
  }
  std::string wire;
  wire.reserve(name.size() + 2);
  std::size_t start = 0;
  while (start <= name.size()) {
    std::size_t dot = name.find('.', start);
    if (dot == std::string_view::npos) dot = name.size();
    std::string_view label = name.substr(start, dot - start);
    if (label.empty()) {
      why = "invalid domain name: empty label";
      return std::nullopt;
    }
    if (label.size() > 63) {
      why = "invalid domain name: label longer than 63 octets";
      return std::nullopt;
    }
    for (char c : label) {
      auto u = static_cast<unsigned char>(c);
      if (u <= 0x20 || u == 0x7f) {
        why = "invalid domain name: control character or space";
        return std::nullopt;
      }
    }
    wire += static_cast<char>(label.size());
    wire.append(label);
    start = dot + 1;
  }
  wire += '\0';
  return wire;
}

// dname_text - a DNAME rdf in presentation form without the trailing dot;
// the root name stays ".".
std::optional<std::string> dname_text(const ldns_rdf* rdf) {
  if (!rdf || ldns_rdf_get_type(rdf) != LDNS_RDF_TYPE_DNAME) return std::nullopt;
  CString s(ldns_rdf2str(rdf));
  if (!s) return std::nullopt;
  std::string out(s.get());
  if (out.size() > 1 && out.back() == '.') out.pop_back();
  return out;
}

// record_text - one RR of the asked type as DnsAnswer text, or nullopt when
// its RDATA is not what the type requires.
std::optional<std::string> record_text(const ldns_rr* rr, RRType type) {
  const std::size_t n = ldns_rr_rd_count(rr);
  switch (type) {
    case RRType::TXT: {
      // RFC 1035 3.3.14: one or more <character-string>s, each a length
      // octet and that many octets; kept as raw bytes, concatenated.
      std::string out;
      for (std::size_t i = 0; i < n; ++i) {
        const ldns_rdf* rdf = ldns_rr_rdf(rr, i);
        if (!rdf || ldns_rdf_get_type(rdf) != LDNS_RDF_TYPE_STR) return std::nullopt;
        const std::size_t size = ldns_rdf_size(rdf);
        const std::uint8_t* data = ldns_rdf_data(rdf);
        if (size < 1 || static_cast<std::size_t>(data[0]) != size - 1) return std::nullopt;
        out.append(reinterpret_cast<const char*>(data + 1), size - 1);
      }
      return out;
    }
    case RRType::A:
    case RRType::AAAA: {
      const bool v4 = type == RRType::A;
      const ldns_rdf* rdf = n == 1 ? ldns_rr_rdf(rr, 0) : nullptr;
      if (!rdf || ldns_rdf_size(rdf) != (v4 ? 4U : 16U)) return std::nullopt;
      char buf[INET6_ADDRSTRLEN] = {};
      if (!inet_ntop(v4 ? AF_INET : AF_INET6, ldns_rdf_data(rdf), buf, sizeof buf)) return std::nullopt;
      return std::string(buf);
    }
    case RRType::MX: {
      if (n != 2) return std::nullopt;
      const ldns_rdf* pref = ldns_rr_rdf(rr, 0);
      if (!pref || ldns_rdf_size(pref) != 2) return std::nullopt;
      auto host = dname_text(ldns_rr_rdf(rr, 1));
      if (!host) return std::nullopt;
      return std::to_string(ldns_rdf2native_int16(pref)) + " " + *host;
    }
    case RRType::PTR:
      if (n != 1) return std::nullopt;
      return dname_text(ldns_rr_rdf(rr, 0));
  }
  return std::nullopt;
}

// negative_ttl - RFC 2308 5: min(SOA TTL, SOA MINIMUM) of the authority
// section's SOA, or the default when there is none.
std::uint32_t negative_ttl(const ldns_pkt* pkt) {
  std::uint32_t ttl = kNoTtl;
  const ldns_rr_list* auth = ldns_pkt_authority(pkt);
  for (std::size_t i = 0; auth && i < ldns_rr_list_rr_count(auth); ++i) {
    const ldns_rr* rr = ldns_rr_list_rr(auth, i);
    if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_SOA || ldns_rr_rd_count(rr) < 7) continue;
    const ldns_rdf* minimum = ldns_rr_rdf(rr, 6);
    if (!minimum || ldns_rdf_size(minimum) != 4) continue;
    ttl = std::min({ttl, clamp_ttl(ldns_rr_ttl(rr)), clamp_ttl(ldns_rdf2native_int32(minimum))});
  }
  return ttl == kNoTtl ? LdnsResolver::kDefaultNegativeTtl : ttl;
}

bool has_soa(const ldns_pkt* pkt) {
  const ldns_rr_list* auth = ldns_pkt_authority(pkt);
  for (std::size_t i = 0; auth && i < ldns_rr_list_rr_count(auth); ++i) {
    if (ldns_rr_get_type(ldns_rr_list_rr(auth, i)) == LDNS_RR_TYPE_SOA) return true;
  }
  return false;
}

// set_timeout - how long R waits for one answer.
void set_timeout(ldns_resolver* r, std::chrono::milliseconds t) noexcept {
  if (t.count() < 1) t = std::chrono::milliseconds(1);
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(t.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((t.count() % 1000) * 1000);
  ldns_resolver_set_timeout(r, tv);
}

// is_transport_error - ldns statuses that mean "no usable answer arrived";
// everything else from ldns_resolver_send_pkt is a malformed answer.
bool is_transport_error(ldns_status s) noexcept {
  switch (s) {
    case LDNS_STATUS_NETWORK_ERR:
    case LDNS_STATUS_SOCKET_ERROR:
    case LDNS_STATUS_ERR:
    case LDNS_STATUS_RES_NO_NS:
    case LDNS_STATUS_MEM_ERR:
    case LDNS_STATUS_ADDRESS_ERR:
    case LDNS_STATUS_UNKNOWN_INET:
    case LDNS_STATUS_INTERNAL_ERR:
    case LDNS_STATUS_NULL: return true;
    default: return false;
  }
}

std::string rcode_name(ldns_pkt_rcode rc) {
  switch (rc) {
    case LDNS_RCODE_NOERROR: return "NOERROR";
    case LDNS_RCODE_FORMERR: return "FORMERR";
    case LDNS_RCODE_SERVFAIL: return "SERVFAIL";
    case LDNS_RCODE_NXDOMAIN: return "NXDOMAIN";
    case LDNS_RCODE_NOTIMPL: return "NOTIMP";
    case LDNS_RCODE_REFUSED: return "REFUSED";
    default: return "RCODE " + std::to_string(static_cast<int>(rc));
  }
}

// matches_query - RFC 5452 9.1: the answer must echo the query's ID and,
// when it carries one, its question.
bool matches_query(const ldns_pkt* query, const ldns_pkt* answer) {
  if (ldns_pkt_id(query) != ldns_pkt_id(answer) || !ldns_pkt_qr(answer)) return false;
  const ldns_rr_list* qq = ldns_pkt_question(query);
  const ldns_rr_list* aq = ldns_pkt_question(answer);
  const std::size_t count = aq ? ldns_rr_list_rr_count(aq) : 0;
  if (count == 0) {
    // Only error answers may omit the question (FORMERR often does).
    const ldns_pkt_rcode rc = ldns_pkt_get_rcode(answer);
    return rc != LDNS_RCODE_NOERROR && rc != LDNS_RCODE_NXDOMAIN;
  }
  if (count != 1 || !qq || ldns_rr_list_rr_count(qq) != 1) return false;
  const ldns_rr* q = ldns_rr_list_rr(qq, 0);
  const ldns_rr* a = ldns_rr_list_rr(aq, 0);
  return ldns_rr_get_type(q) == ldns_rr_get_type(a) && ldns_rr_get_class(q) == ldns_rr_get_class(a) &&
         ldns_dname_compare(ldns_rr_owner(q), ldns_rr_owner(a)) == 0;
}

// resolv_conf_nameservers - the "nameserver" lines of PATH, read by ldns.
Expected<std::vector<Nameserver>, std::string> resolv_conf_nameservers(const std::string& path) {
  ldns_resolver* raw = nullptr;
  ldns_status s = ldns_resolver_new_frm_file(&raw, path.c_str());
  LdnsResolverH r(raw);
  if (s != LDNS_STATUS_OK || !r) {
    return Unexpected{"cannot read nameservers from " + path + ": " + ldns_get_errorstr_by_id(s)};
  }
  std::vector<Nameserver> out;
  ldns_rdf** ns = ldns_resolver_nameservers(r.get());
  for (std::size_t i = 0; i < ldns_resolver_nameserver_count(r.get()); ++i) {
    const ldns_rdf* rdf = ns[i];
    char buf[INET6_ADDRSTRLEN] = {};
    int family = 0;
    if (ldns_rdf_get_type(rdf) == LDNS_RDF_TYPE_A && ldns_rdf_size(rdf) == 4) family = AF_INET;
    if (ldns_rdf_get_type(rdf) == LDNS_RDF_TYPE_AAAA && ldns_rdf_size(rdf) == 16) family = AF_INET6;
    if (family == 0 || !inet_ntop(family, ldns_rdf_data(rdf), buf, sizeof buf)) continue;
    std::uint16_t port = ldns_resolver_port(r.get());
    out.push_back(Nameserver{buf, port == 0 ? std::uint16_t{53} : port});
  }
  if (out.empty()) return Unexpected{"no nameserver lines in " + path};
  return out;
}

// check_options - the first problem with OPTIONS, or an empty string.
std::string check_options(const LdnsResolverOptions& o) {
  if (o.timeout.count() < 1 || o.timeout.count() > 60000) return "DNS timeout must be 1..60000 ms";
  if (o.tries < 1 || o.tries > kMaxTries) return "DNS tries must be 1..20";
  if (o.edns_buffer_size && (*o.edns_buffer_size < 512 || *o.edns_buffer_size > 4096))
    return "EDNS buffer size must be 512..4096";
  return {};
}

}  // namespace

std::string Nameserver::to_string() const {
  if (address.find(':') != std::string::npos) return "[" + address + "]:" + std::to_string(port);
  return address + ":" + std::to_string(port);
}

Expected<Nameserver, std::string> parse_nameserver(std::string_view text) {
  auto bad = [&](std::string_view what) {
    return Unexpected{"invalid nameserver \"" + std::string(text) + "\": " + std::string(what) +
                      " (expected IP, IP:PORT or [IPv6]:PORT)"};
  };
  if (text.empty()) return bad("empty");
  Nameserver ns;
  if (text.front() == '[') {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos) return bad("missing ']'");
    ns.address = std::string(text.substr(1, close - 1));
    std::string_view rest = text.substr(close + 1);
    if (!is_ipv6(ns.address)) return bad("not a numeric IPv6 address");
    if (!rest.empty()) {
      if (rest.front() != ':') return bad("junk after ']'");
      auto port = parse_port(rest.substr(1));
      if (!port) return bad("port must be 1..65535");
      ns.port = *port;
    }
    return ns;
  }
  const std::size_t colons = static_cast<std::size_t>(std::count(text.begin(), text.end(), ':'));
  if (colons >= 2) {
    ns.address = std::string(text);
    if (!is_ipv6(ns.address)) return bad("not a numeric IPv6 address");
    return ns;
  }
  std::string_view addr = text;
  if (colons == 1) {
    const std::size_t colon = text.find(':');
    addr = text.substr(0, colon);
    auto port = parse_port(text.substr(colon + 1));
    if (!port) return bad("port must be 1..65535");
    ns.port = *port;
  }
  ns.address = std::string(addr);
  if (!is_ipv4(ns.address)) return bad("not a numeric IPv4 address");
  return ns;
}

// --- the resolver ------------------------------------------------------------

struct LdnsResolver::Impl {
  // One ldns_resolver per nameserver, so each server keeps its own port and
  // the try loop (and its diagnostics) stays ours.
  struct HandleSet {
    std::vector<LdnsResolverH> per_server;
  };

  // Lease - a HandleSet borrowed from the pool for one query.
  class Lease {
   public:
    Lease(Impl& impl, std::unique_ptr<HandleSet> set) : impl_(impl), set_(std::move(set)) {}
    ~Lease() { impl_.give_back(std::move(set_)); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    HandleSet& operator*() const noexcept { return *set_; }

   private:
    Impl& impl_;
    std::unique_ptr<HandleSet> set_;
  };

  // Exchange - one answer packet from a server, or the failure to get one.
  struct Exchange {
    LdnsPkt pkt;
    std::string server;
    DnsAnswer failure;
  };

  Options options;
  std::vector<Nameserver> servers;
  std::vector<std::string> server_names;  // servers[i].to_string(), for `why`
  std::mutex pool_mu;
  std::vector<std::unique_ptr<HandleSet>> idle;  // guarded by pool_mu

  LdnsResolverH make_handle(const Nameserver& ns) const;
  Lease borrow();
  void give_back(std::unique_ptr<HandleSet> set) noexcept;
  Exchange exchange(HandleSet& set, const ldns_rdf* name, ldns_rr_type type);
  DnsAnswer resolve(std::string_view name, RRType type);
};

// make_handle - an ldns_resolver that talks to NS alone, as configured.
LdnsResolverH LdnsResolver::Impl::make_handle(const Nameserver& ns) const {
  LdnsResolverH r(ldns_resolver_new());
  if (!r) throw std::bad_alloc();
  const bool v6 = ns.address.find(':') != std::string::npos;
  LdnsRdf addr(ldns_rdf_new_frm_str(v6 ? LDNS_RDF_TYPE_AAAA : LDNS_RDF_TYPE_A, ns.address.c_str()));
  if (!addr || ldns_resolver_push_nameserver(r.get(), addr.get()) != LDNS_STATUS_OK) {
    throw std::runtime_error("cannot configure nameserver " + ns.to_string());
  }
  ldns_resolver_set_port(r.get(), ns.port);
  ldns_resolver_set_recursive(r.get(), true);
  ldns_resolver_set_dnssec(r.get(), false);
  ldns_resolver_set_dnssec_cd(r.get(), false);
  ldns_resolver_set_defnames(r.get(), false);
  ldns_resolver_set_dnsrch(r.get(), false);
  ldns_resolver_set_random(r.get(), false);
  ldns_resolver_set_fail(r.get(), false);
  ldns_resolver_set_usevc(r.get(), false);
  ldns_resolver_set_igntc(r.get(), false);
  ldns_resolver_set_fallback(r.get(), options.tcp_fallback);
  ldns_resolver_set_retry(r.get(), 1);    // our loop does the retries
  ldns_resolver_set_retrans(r.get(), 0);  // ldns would sleep() between tries
  ldns_resolver_set_edns_udp_size(r.get(), options.edns_buffer_size.value_or(0));
  set_timeout(r.get(), options.timeout);
  return r;
}

LdnsResolver::Impl::Lease LdnsResolver::Impl::borrow() {
  {
    std::lock_guard<std::mutex> lock(pool_mu);
    if (!idle.empty()) {
      auto set = std::move(idle.back());
      idle.pop_back();
      return Lease(*this, std::move(set));
    }
  }
  auto set = std::make_unique<HandleSet>();
  for (const auto& ns : servers) set->per_server.push_back(make_handle(ns));
  return Lease(*this, std::move(set));
}

void LdnsResolver::Impl::give_back(std::unique_ptr<HandleSet> set) noexcept {
  if (!set) return;
  try {
    std::lock_guard<std::mutex> lock(pool_mu);
    if (idle.size() < kMaxIdleHandleSets) idle.push_back(std::move(set));
  } catch (...) {
    // A full pool or a failed push_back: the set is simply freed.
  }
}

// exchange - ask the servers, tries x servers, until one gives an answer
// that is not SERVFAIL/REFUSED.
LdnsResolver::Impl::Exchange LdnsResolver::Impl::exchange(HandleSet& set, const ldns_rdf* name,
                                                          ldns_rr_type type) {
  Exchange ex;
  ex.failure = failure(DnsStatus::TempFail, "no nameserver answered");
  for (unsigned attempt = 0; attempt < options.tries; ++attempt) {
    for (std::size_t i = 0; i < set.per_server.size(); ++i) {
      ldns_resolver* r = set.per_server[i].get();
      const std::string& server = server_names[i];
      // ldns marks a server that timed out as unreachable for good; every
      // query starts afresh.
      ldns_resolver_set_nameserver_rtt(r, 0, LDNS_RESOLV_RTT_MIN);
      ldns_pkt* raw_query = nullptr;
      ldns_status s = ldns_resolver_prepare_query_pkt(&raw_query, r, name, type, LDNS_RR_CLASS_IN, LDNS_RD);
      LdnsPkt query(raw_query);
      if (s != LDNS_STATUS_OK || !query) {
        ex.failure = failure(DnsStatus::TempFail, std::string("cannot build query: ") + ldns_get_errorstr_by_id(s));
        return ex;
      }
      // The message's DNS time budget (dns_budget.hpp): wait no longer than
      // it has left, and not at all once it is spent.
      DnsTimeBudget* budget = current_dns_budget();
      std::chrono::milliseconds wait = options.timeout;
      if (budget) {
        if (budget->exhausted()) {
          ex.failure = failure(DnsStatus::TempFail, "DNS time budget of the message used up");
          return ex;
        }
        auto left = std::chrono::ceil<std::chrono::milliseconds>(budget->remaining());
        wait = std::min(wait, left);
      }
      set_timeout(r, wait);
      const auto sent = std::chrono::steady_clock::now();
      ldns_pkt* raw_answer = nullptr;
      s = ldns_resolver_send_pkt(&raw_answer, r, query.get());
      LdnsPkt answer(raw_answer);
      if (budget) budget->spend(std::chrono::steady_clock::now() - sent);
      if (s != LDNS_STATUS_OK) {
        if (!is_transport_error(s)) {
          ex.failure = failure(DnsStatus::PermFail,
                               "malformed answer from " + server + ": " + ldns_get_errorstr_by_id(s));
          return ex;
        }
        ex.failure = failure(DnsStatus::TempFail, s == LDNS_STATUS_NETWORK_ERR
                                                      ? "timeout contacting " + server
                                                      : "network error contacting " + server + ": " +
                                                            ldns_get_errorstr_by_id(s));
        continue;
      }
      if (!answer) {
        ex.failure = failure(DnsStatus::TempFail, "no answer from " + server);
        continue;
      }
      if (!matches_query(query.get(), answer.get())) {
        ex.failure = failure(DnsStatus::TempFail, "answer from " + server + " does not match the query");
        continue;
      }
      const ldns_pkt_rcode rc = ldns_pkt_get_rcode(answer.get());
      if (rc == LDNS_RCODE_SERVFAIL || rc == LDNS_RCODE_REFUSED) {
        ex.failure = failure(DnsStatus::TempFail, rcode_name(rc) + " from " + server);
        continue;
      }
      // Still truncated after ldns' TCP fallback (TC over TCP, or the
      // fallback off): what did not fit is missing, not absent. Reading it
      // as NoData would be "no DMARC record" for a domain that has one.
      if (ldns_pkt_tc(answer.get())) {
        ex.failure = failure(DnsStatus::TempFail, "truncated answer from " + server);
        continue;
      }
      ex.pkt = std::move(answer);
      ex.server = server;
      return ex;
    }
  }
  return ex;
}

DnsAnswer LdnsResolver::Impl::resolve(std::string_view name, RRType type) {
  std::string why;
  auto wire = to_wire_name(name, why);
  if (!wire) return failure(DnsStatus::PermFail, why);
  LdnsRdf asked(ldns_dname_new_frm_data(static_cast<std::uint16_t>(wire->size()), wire->data()));
  if (!asked) throw std::bad_alloc();

  const auto rrtype = static_cast<ldns_rr_type>(static_cast<std::uint16_t>(type));
  Lease lease = borrow();
  std::uint32_t chain_ttl = kNoTtl;  // smallest TTL of the CNAMEs followed
  std::size_t hops = 0;

  // One iteration per query: the first for NAME, then one per CNAME target
  // that an answer left unresolved.
  for (;;) {
    Exchange ex = exchange(*lease, asked.get(), rrtype);
    if (!ex.pkt) return std::move(ex.failure);
    const ldns_pkt* pkt = ex.pkt.get();
    const ldns_pkt_rcode rc = ldns_pkt_get_rcode(pkt);
    if (rc != LDNS_RCODE_NOERROR && rc != LDNS_RCODE_NXDOMAIN) {
      // FORMERR, NOTIMP and anything else: retrying will not help.
      return failure(DnsStatus::PermFail, rcode_name(rc) + " from " + ex.server);
    }

    // Walk the CNAME chain in the answer section from the name asked.
    const ldns_rr_list* an = ldns_pkt_answer(pkt);
    const std::size_t count = an ? ldns_rr_list_rr_count(an) : 0;
    LdnsRdf current(ldns_rdf_clone(asked.get()));
    if (!current) throw std::bad_alloc();
    bool followed = false;
    for (;;) {
      DnsAnswer ok;
      ok.status = DnsStatus::Ok;
      std::uint32_t ttl = chain_ttl;
      const ldns_rr* cname = nullptr;
      for (std::size_t i = 0; i < count; ++i) {
        const ldns_rr* rr = ldns_rr_list_rr(an, i);
        if (ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN) continue;
        if (ldns_dname_compare(ldns_rr_owner(rr), current.get()) != 0) continue;
        if (ldns_rr_get_type(rr) == rrtype) {
          auto text = record_text(rr, type);
          if (!text) {
            return failure(DnsStatus::PermFail, "malformed " + std::string(to_token(type)) +
                                                    " record from " + ex.server);
          }
          ok.records.push_back(std::move(*text));
          ttl = std::min(ttl, clamp_ttl(ldns_rr_ttl(rr)));
        } else if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_CNAME && !cname) {
          cname = rr;
        }
      }
      if (!ok.records.empty()) {
        ok.ttl = ttl == kNoTtl ? 0 : ttl;
        return ok;
      }
      if (!cname) break;
      if (++hops > LdnsResolver::kMaxCnameHops) {
        return failure(DnsStatus::PermFail, "CNAME chain longer than " +
                                                std::to_string(LdnsResolver::kMaxCnameHops) +
                                                " (or a loop) at " + std::string(name));
      }
      const ldns_rdf* target = ldns_rr_rd_count(cname) == 1 ? ldns_rr_rdf(cname, 0) : nullptr;
      if (!target || ldns_rdf_get_type(target) != LDNS_RDF_TYPE_DNAME) {
        return failure(DnsStatus::PermFail, "malformed CNAME record from " + ex.server);
      }
      chain_ttl = std::min(chain_ttl, clamp_ttl(ldns_rr_ttl(cname)));
      current.reset(ldns_rdf_clone(target));
      if (!current) throw std::bad_alloc();
      followed = true;
    }

    // No records of the type asked for at the end of the chain.
    if (rc == LDNS_RCODE_NOERROR && followed && !has_soa(pkt)) {
      // An authoritative server for another zone stopped at the CNAME:
      // ask again for the target.
      asked = std::move(current);
      continue;
    }
    DnsAnswer neg;
    neg.status = rc == LDNS_RCODE_NXDOMAIN ? DnsStatus::NxDomain : DnsStatus::NoData;
    neg.ttl = std::min(chain_ttl, negative_ttl(pkt));
    neg.why = rc == LDNS_RCODE_NXDOMAIN ? "NXDOMAIN from " + ex.server
                                        : "no " + std::string(to_token(type)) + " records (from " +
                                              ex.server + ")";
    return neg;
  }
}

Expected<std::unique_ptr<LdnsResolver>, std::string> LdnsResolver::create(Options options) {
  try {
    return std::make_unique<LdnsResolver>(std::move(options));
  } catch (const std::invalid_argument& e) {
    return Unexpected{std::string(e.what())};
  }
}

LdnsResolver::LdnsResolver(Options options) : impl_(std::make_unique<Impl>()) {
  if (std::string problem = check_options(options); !problem.empty()) throw std::invalid_argument(problem);
  if (options.nameservers.empty()) {
    auto from_file = resolv_conf_nameservers(options.resolv_conf);
    if (!from_file) throw std::invalid_argument(from_file.error());
    impl_->servers = std::move(*from_file);
  } else {
    for (const auto& text : options.nameservers) {
      auto ns = parse_nameserver(text);
      if (!ns) throw std::invalid_argument(ns.error());
      impl_->servers.push_back(std::move(*ns));
    }
  }
  for (const auto& ns : impl_->servers) impl_->server_names.push_back(ns.to_string());
  impl_->options = std::move(options);
}

LdnsResolver::~LdnsResolver() = default;

DnsAnswer LdnsResolver::query(std::string_view name, RRType type) {
  try {
    return impl_->resolve(name, type);
  } catch (const std::exception& e) {
    return failure(DnsStatus::TempFail, std::string("resolver error: ") + e.what());
  } catch (...) {
    return failure(DnsStatus::TempFail, "resolver error");
  }
}

const std::vector<Nameserver>& LdnsResolver::nameservers() const noexcept { return impl_->servers; }

const LdnsResolverOptions& LdnsResolver::options() const noexcept { return impl_->options; }

}  // namespace dmarc
