// spf_dns_bridge.cpp - libspf2 DNS layer onto our Resolver
#include "adapters/spf/spf_dns_bridge.hpp"
#include "dmarc/core/domain.hpp"

#include <arpa/inet.h>
#include <netdb.h>

#include <cstring>
#include <exception>
#include <new>

#include "adapters/spf/spf2_handles.hpp"
#include "adapters/spf/spf_syntax.hpp"

namespace dmarc::spf2 {
namespace {

constexpr std::size_t kMaxNames = 10;  // RFC 7208 4.6.4: MX and PTR names looked at
constexpr std::size_t kMaxExplanation = 255;  // octets of explanation kept (RFC 7208 6.2 allows a limit)


std::string strip_dot(std::string s) {
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

std::string shown(std::string_view name) {
  // Names in problem texts: bounded, control characters made visible.
  std::string out;
  for (char c : name.substr(0, 120)) {
    auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u >= 0x7f) ? '?' : c;
  }
  if (name.size() > 120) out += "...";
  return out;
}

}  // namespace

DnsBridge::DnsBridge(Resolver& resolver, const SpfOptions& options) : resolver_(resolver), options_(options) {
  std::memset(&dns_, 0, sizeof dns_);
  dns_.destroy = nullptr;  // owned here: SPF_server_free() must not free it
  dns_.lookup = &DnsBridge::lookup_cb;
  dns_.get_spf = &DnsBridge::get_spf_cb;
  dns_.get_exp = nullptr;
  dns_.add_cache = nullptr;
  dns_.layer_below = nullptr;
  dns_.name = "dmarc-milter";
  dns_.debug = 0;
  dns_.hook = this;
}

void DnsBridge::begin_check(bool ipv6, const in_addr& v4, const in6_addr& v6, MacroValues values,
                            SPF_request_t* request) {
  ipv6_ = ipv6;
  v4_ = v4;
  v6_ = v6;
  values_ = std::move(values);
  values_.validated_name = [this](std::string_view domain) { return validated_name(domain); };
  request_ = request;
  validated_.reset();
  exp_requests_.clear();
  started_ = std::chrono::steady_clock::now();
  dns_terms_ = 0;
  void_lookups_ = 0;
  fetches_ = 0;
  stop_.reset();
  out_of_memory_ = false;
  top_outcome_.reset();
  note_.clear();
  follow_ = FollowUps{};
  follow_active_ = false;
}

std::string DnsBridge::expand(std::string_view text, std::string_view domain) {
  return expand_macros(text, values_, domain);
}

// validated_name - %{p} (RFC 7208 7.3): the validated names of <ip> by the
// 5.5 procedure (PTR, then the addresses of at most 10 names); <domain>
// itself if validated, else a subdomain of it, else any; "unknown" when
// none or on a DNS error. These lookups are not terms (4.6.4).
std::string DnsBridge::validated_name(std::string_view domain) {
  if (!validated_) {
    validated_.emplace();
    char text[INET6_ADDRSTRLEN] = {};
    const void* addr = ipv6_ ? static_cast<const void*>(&v6_) : static_cast<const void*>(&v4_);
    auto rev = inet_ntop(ipv6_ ? AF_INET6 : AF_INET, addr, text, sizeof text) != nullptr
                   ? reverse_name(text)
                   : std::nullopt;
    DnsAnswer ptr;
    if (rev) ptr = ask(*rev, RRType::PTR);
    if (rev && ptr.status == DnsStatus::Ok) {
      std::size_t tried = 0;
      for (const auto& r : ptr.records) {
        if (tried++ == kMaxNames) break;
        std::string host = strip_dot(r);
        if (!valid_lookup_name(host)) continue;
        DnsAnswer a = ask(host, ipv6_ ? RRType::AAAA : RRType::A);
        if (a.status != DnsStatus::Ok) continue;
        for (const auto& ip : a.records) {
          unsigned char buf[16] = {};
          if (inet_pton(ipv6_ ? AF_INET6 : AF_INET, ip.c_str(), buf) == 1 &&
              std::memcmp(buf, addr, ipv6_ ? 16 : 4) == 0) {
            validated_->push_back(host);
            break;
          }
        }
      }
    }
  }
  const std::string* subdomain = nullptr;
  for (const auto& n : *validated_) {
    if (ascii_iequals(n, domain)) return n;
    if (subdomain == nullptr && n.size() > domain.size() && n[n.size() - domain.size() - 1] == '.' &&
        ascii_iequals(std::string_view(n).substr(n.size() - domain.size()), domain)) {
      subdomain = &n;
    }
  }
  if (subdomain != nullptr) return *subdomain;
  return validated_->empty() ? std::string("unknown") : validated_->front();
}

std::optional<std::string> DnsBridge::explanation(std::string_view served) {
  if (served.size() < 2 || served.front() != kExplanationToken) return std::nullopt;
  std::size_t index = 0;
  for (char c : served.substr(1)) {
    if (c < '0' || c > '9') return std::nullopt;
    index = index * 10 + static_cast<std::size_t>(c - '0');
    if (index > exp_requests_.size()) return std::nullopt;
  }
  if (index >= exp_requests_.size()) return std::nullopt;
  const ExpRequest& req = exp_requests_[index];
  // RFC 7208 6.2: a DNS error, no record, several records or a syntax
  // error: proceed as if no exp= was given.
  if (!valid_lookup_name(req.name)) return std::nullopt;
  DnsAnswer answer = ask(req.name, RRType::TXT);
  if (answer.status != DnsStatus::Ok || answer.records.size() != 1) return std::nullopt;
  auto text = check_explain_string(answer.records.front());
  if (!text) return std::nullopt;
  std::string out = finish_explanation(expand(*text, req.domain));
  if (out.size() > kMaxExplanation) out.resize(kMaxExplanation);  // 6.2: a limit MAY apply
  return out;
}

bool DnsBridge::out_of_time() {
  // RFC 7208 4.6.4: a limit on the elapsed time of check_host(), at least
  // 20 s (SHOULD); past it, temperror.
  if (std::chrono::steady_clock::now() - started_ <= options_.max_duration) return false;
  set_stop(AuthResult::TempError, "SPF check took longer than " + std::to_string(options_.max_duration.count()) +
                                      " ms (RFC 7208 4.6.4)");
  return true;
}

void DnsBridge::set_stop(AuthResult result, std::string problem) {
  if (!stop_) stop_ = Stop{result, std::move(problem)};
}

void DnsBridge::fail_noexcept(bool out_of_memory) noexcept {
  // A default Stop holds an empty string: constructing it cannot throw.
  out_of_memory_ = out_of_memory_ || out_of_memory;
  if (!stop_) {
    stop_.emplace();
    stop_->result = AuthResult::TempError;
  }
}

SPF_dns_rr_t* DnsBridge::rr(const char* domain, ns_type type, int herrno) {
  return SPF_dns_rr_new_init(&dns_, domain, type, 0, herrno);
}

DnsAnswer DnsBridge::ask(const std::string& name, RRType type) {
  try {
    return resolver_.query(name, type);
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    DnsAnswer a;
    a.status = DnsStatus::TempFail;
    a.why = std::string("resolver threw: ") + e.what();
    return a;
  }
}

// classify - who asked for this lookup (see the header).
DnsBridge::Role DnsBridge::classify(const std::string& name, RRType type, bool should_cache) {
  if (type == RRType::TXT) {
    follow_active_ = false;
    return Role::Explanation;
  }
  if (follow_active_ && type == follow_.type && follow_.next < follow_.names.size() &&
      ascii_iequals(name, follow_.names[follow_.next])) {
    ++follow_.next;
    return follow_.role;
  }
  follow_active_ = false;
  if (type == RRType::PTR) return should_cache ? Role::PtrTerm : Role::MacroPtr;
  return Role::Term;
}

SPF_dns_rr_t* DnsBridge::fill(SPF_dns_rr_t* out, RRType type, const std::vector<std::string>& values) {
  int n = 0;
  for (const auto& v : values) {
    std::size_t need = 0;
    in_addr a4{};
    in6_addr a6{};
    switch (type) {
      case RRType::A:
        if (inet_pton(AF_INET, v.c_str(), &a4) != 1) continue;
        need = sizeof a4;
        break;
      case RRType::AAAA:
        if (inet_pton(AF_INET6, v.c_str(), &a6) != 1) continue;
        need = sizeof a6;
        break;
      default:
        if (v.find('\0') != std::string::npos) continue;  // cannot be a C string
        need = v.size() + 1;
        break;
    }
    if (SPF_dns_rr_buf_realloc(out, n, need) != SPF_E_SUCCESS) {
      out->num_rr = 0;
      out->herrno = TRY_AGAIN;
      set_stop(AuthResult::TempError, "out of memory building a DNS answer");
      return out;
    }
    switch (type) {
      case RRType::A: out->rr[n]->a = a4; break;
      case RRType::AAAA: out->rr[n]->aaaa = a6; break;
      case RRType::MX: std::memcpy(out->rr[n]->mx, v.c_str(), need); break;
      case RRType::PTR: std::memcpy(out->rr[n]->ptr, v.c_str(), need); break;
      case RRType::TXT: std::memcpy(out->rr[n]->txt, v.c_str(), need); break;
    }
    ++n;
  }
  out->num_rr = n;
  return out;
}

SPF_dns_rr_t* DnsBridge::lookup(const char* domain_c, ns_type ns, bool should_cache) {
  const char* domain = domain_c != nullptr ? domain_c : "";
  RRType type;
  switch (ns) {
    case ns_t_a: type = RRType::A; break;
    case ns_t_aaaa: type = RRType::AAAA; break;
    case ns_t_mx: type = RRType::MX; break;
    case ns_t_ptr: type = RRType::PTR; break;
    case ns_t_txt: type = RRType::TXT; break;
    default: return rr(domain, ns, NO_DATA);  // type 99 and others: RFC 7208 3.1, TXT only
  }
  if (stop_) return rr(domain, ns, TRY_AGAIN);

  std::string name(domain);
  bool cidr0 = false;
  if (name.size() >= kCidrZeroMarker.size() &&
      name.compare(name.size() - kCidrZeroMarker.size(), kCidrZeroMarker.size(), kCidrZeroMarker) == 0) {
    cidr0 = true;
    name.erase(name.size() - kCidrZeroMarker.size());
  }
  // RFC 7208 7.3: an expanded name over 253 octets loses labels on the left.
  name = truncate_lookup_name(name);
  const Role role = classify(name, type, should_cache);
  if (role == Role::Explanation) {
    // RFC 7208 6.2 / 4.6.4: the exp= TXT is fetched at most once, after the
    // result is known, and only for fail. libspf2 asks for it whenever it
    // finishes a (sub-)evaluation, so it gets a token instead; the verifier
    // turns the token of the final answer into the explanation.
    exp_requests_.push_back(ExpRequest{name, request_ != nullptr && request_->cur_dom != nullptr
                                                  ? std::string(request_->cur_dom)
                                                  : std::string()});
    SPF_dns_rr_t* out = rr(domain, ns, NETDB_SUCCESS);
    if (out == nullptr) return out;
    return fill(out, type, {std::string(1, kExplanationToken) + std::to_string(exp_requests_.size() - 1)});
  }
  if (out_of_time()) return rr(domain, ns, TRY_AGAIN);
  const bool counted = role == Role::Term || role == Role::PtrTerm;
  if (counted && ++dns_terms_ > options_.max_dns_mechanisms) {
    // RFC 7208 4.6.4: more than 10 terms that query DNS -> permerror.
    set_stop(AuthResult::PermError, "more than " + std::to_string(options_.max_dns_mechanisms) +
                                        " DNS-querying terms (RFC 7208 4.6.4)");
    return rr(domain, ns, TRY_AGAIN);
  }

  DnsAnswer answer;
  if (valid_lookup_name(name)) {
    answer = ask(name, type);
  } else {
    answer.status = DnsStatus::NxDomain;  // no query can be formed: treated as non-existent
    answer.why = "not a valid domain name";
  }

  const DnsErrorKind kind = dns_error_kind(answer.status);
  if (kind != DnsErrorKind::None) {
    std::string what = std::string(to_token(type)) + " lookup of " + shown(name) + ": " +
                       (answer.why.empty() ? std::string(to_token(answer.status)) : shown(answer.why));
    switch (role) {
      case Role::Term:
      case Role::MxTarget:
        // RFC 7208 5 (para. 8, "except where noted"), 5.4: stop the check.
        set_stop(kind == DnsErrorKind::Permanent ? AuthResult::PermError : AuthResult::TempError, what);
        return rr(domain, ns, TRY_AGAIN);
      case Role::PtrTerm:   // RFC 7208 5.5: the mechanism fails to match
      case Role::PtrName:   // RFC 7208 5.5: that name is skipped
      case Role::MacroPtr:  // RFC 7208 7.3: %{p} becomes "unknown"
      case Role::MacroPtrName:
        if (role == Role::PtrTerm || role == Role::MacroPtr) follow_active_ = false;
        return rr(domain, ns, NO_RECOVERY);
      case Role::Explanation:  // handled above
        return rr(domain, ns, HOST_NOT_FOUND);
    }
  }

  if (answer.status != DnsStatus::Ok || answer.records.empty()) {
    const int herrno = answer.status == DnsStatus::NxDomain ? HOST_NOT_FOUND : NO_DATA;
    if (counted && ++void_lookups_ > options_.max_void_lookups) {
      // RFC 7208 4.6.4: more than 2 lookups returning NXDOMAIN or no answer.
      set_stop(AuthResult::PermError, "more than " + std::to_string(options_.max_void_lookups) +
                                          " void lookups (RFC 7208 4.6.4), the last " + std::string(to_token(type)) +
                                          " " + shown(name));
      return rr(domain, ns, TRY_AGAIN);
    }
    return rr(domain, ns, herrno);
  }

  std::vector<std::string> values;
  switch (type) {
    case RRType::A:
    case RRType::AAAA: {
      const bool follow_cidr0 = (role == Role::MxTarget) && follow_.cidr0;
      if ((cidr0 && role == Role::Term) || follow_cidr0) {
        // An a/mx term with CIDR length 0: any address record matches, so
        // answer with the client's own address (see spf_syntax.hpp).
        char buf[INET6_ADDRSTRLEN] = {};
        bool mine = (type == RRType::AAAA) == ipv6_;
        if (mine && inet_ntop(ipv6_ ? AF_INET6 : AF_INET, ipv6_ ? static_cast<const void*>(&v6_)
                                                                  : static_cast<const void*>(&v4_),
                              buf, sizeof buf) != nullptr) {
          values.emplace_back(buf);
        }
      } else {
        values = answer.records;
      }
      break;
    }
    case RRType::MX: {
      // "preference exchange"; the null MX "." (RFC 7505) names no host.
      for (const auto& r : answer.records) {
        std::size_t sp = r.find(' ');
        std::string host = strip_dot(sp == std::string::npos ? r : r.substr(sp + 1));
        if (!host.empty()) values.push_back(std::move(host));
      }
      follow_ = FollowUps{};
      follow_.role = Role::MxTarget;
      follow_.type = ipv6_ ? RRType::AAAA : RRType::A;
      follow_.cidr0 = cidr0;
      follow_.names = values;
      follow_active_ = true;
      break;
    }
    case RRType::PTR: {
      for (const auto& r : answer.records) {
        if (values.size() == kMaxNames) break;  // RFC 7208 4.6.4: ignore all but the first 10
        std::string host = strip_dot(r);
        if (!host.empty()) values.push_back(std::move(host));
      }
      follow_ = FollowUps{};
      follow_.role = role == Role::MacroPtr ? Role::MacroPtrName : Role::PtrName;
      follow_.type = ipv6_ ? RRType::AAAA : RRType::A;
      follow_.names = values;
      follow_active_ = true;
      break;
    }
    case RRType::TXT:
      return rr(domain, ns, HOST_NOT_FOUND);  // not reached: see Role::Explanation
  }
  SPF_dns_rr_t* out = rr(domain, ns, NETDB_SUCCESS);
  if (out == nullptr) return out;
  out->ttl = answer.ttl;
  return fill(out, type, values);
}

SPF_errcode_t DnsBridge::get_spf(SPF_server_t* server, SPF_request_t* request, SPF_response_t* response,
                                 SPF_record_t** recordp) {
  *recordp = nullptr;
  if (stop_ || out_of_time()) return SPF_E_DNS_ERROR;
  const bool top = fetches_++ == 0;
  follow_active_ = false;
  if (!top && ++dns_terms_ > options_.max_dns_mechanisms) {
    // RFC 7208 4.6.4: include and redirect count toward the 10.
    set_stop(AuthResult::PermError, "more than " + std::to_string(options_.max_dns_mechanisms) +
                                        " DNS-querying terms (RFC 7208 4.6.4)");
    return SPF_E_BIG_DNS;
  }
  // Record-level outcomes: at the top they decide the result (none or
  // permerror); below include/redirect libspf2 turns any failure into
  // permerror (RFC 7208 5.2, 6.1), a DNS error into temperror.
  auto outcome = [&](AuthResult r, std::string why, SPF_errcode_t code) {
    note_ = why;
    if (top) top_outcome_ = Stop{r, std::move(why)};
    if (r == AuthResult::None) response->result = SPF_RESULT_NONE;
    return code;
  };
  std::string domain = truncate_lookup_name(request->cur_dom != nullptr ? request->cur_dom : "");
  if (!valid_lookup_name(domain)) {
    return outcome(AuthResult::None, "\"" + shown(domain) + "\" is not a valid domain name", SPF_E_NOT_SPF);
  }
  DnsAnswer answer = ask(domain, RRType::TXT);
  const DnsErrorKind kind = dns_error_kind(answer.status);
  if (kind != DnsErrorKind::None) {
    // RFC 7208 4.4: a DNS error in the record lookup -> temperror.
    set_stop(kind == DnsErrorKind::Permanent ? AuthResult::PermError : AuthResult::TempError,
             "TXT lookup of " + shown(domain) + ": " +
                 (answer.why.empty() ? std::string(to_token(answer.status)) : shown(answer.why)));
    return SPF_E_DNS_ERROR;
  }
  std::vector<std::string> records;
  if (answer.status == DnsStatus::Ok) records = select_spf_records(answer.records);
  if (records.empty()) {
    // RFC 7208 4.5: no SPF record -> none (at the top).
    return outcome(AuthResult::None, "no SPF record at " + shown(domain), SPF_E_NOT_SPF);
  }
  if (records.size() > 1) {
    // RFC 7208 4.5: more than one -> permerror.
    return outcome(AuthResult::PermError, std::to_string(records.size()) + " SPF records at " + shown(domain),
                   SPF_E_MULTIPLE_RECORDS);
  }
  auto parsed = parse_spf_record(records.front());
  if (!parsed) {
    // RFC 7208 4.6: a syntax error anywhere -> permerror.
    return outcome(AuthResult::PermError, "SPF record at " + shown(domain) + ": " + parsed.error(), SPF_E_SYNTAX);
  }
  // RFC 7208 7.3: expand every domain-spec now, for this domain; a name
  // over 253 octets loses labels on the left. libspf2 gets literals.
  for (auto& t : parsed->terms) {
    if (t.domain_spec.empty()) continue;
    std::string name = truncate_lookup_name(expand(t.domain_spec, domain));
    const bool zero_cidr = (t.kind == TermKind::A || t.kind == TermKind::Mx) &&
                           ((ipv6_ ? t.cidr6 : t.cidr4).value_or(1) == 0);
    if (zero_cidr && name.size() > 253 - kCidrZeroMarker.size()) {
      // libspf2 takes at most 255 octets in one literal: room for the marker.
      while (name.size() > 253 - kCidrZeroMarker.size() && name.find('.') != std::string::npos) {
        name.erase(0, name.find('.') + 1);
      }
    }
    t.domain_spec = escape_for_libspf2(name);
  }
  const std::string text = rewrite_for_libspf2(*parsed, ipv6_, domain);
  if (auto problem = libspf2_compile_problem(text, false)) {
    return outcome(AuthResult::PermError, "SPF record at " + shown(domain) + ": " + *problem, SPF_E_BIG_MECH);
  }
  SPF_record_t* compiled = nullptr;
  SPF_errcode_t err = SPF_record_compile(server, response, &compiled, text.c_str());
  if (err != SPF_E_SUCCESS) {
    if (compiled != nullptr) SPF_record_free(compiled);
    std::string why = "SPF record at " + shown(domain) + ": libspf2: " + SPF_strerror(err);
    return outcome(AuthResult::PermError, why, err);
  }
  *recordp = compiled;
  return SPF_E_SUCCESS;
}

// The C entry points: no exception may cross into libspf2.
SPF_dns_rr_t* DnsBridge::lookup_cb(SPF_dns_server_t* s, const char* domain, ns_type type, int should_cache) {
  auto* self = static_cast<DnsBridge*>(s->hook);
  try {
    return self->lookup(domain, type, should_cache != 0);
  } catch (const std::bad_alloc&) {
    // libspf2 cannot unwind C++ frames: stop the check, rethrow later.
    self->fail_noexcept(true);
  } catch (...) {
    self->fail_noexcept(false);
  }
  return SPF_dns_rr_new_init(s, domain, type, 0, TRY_AGAIN);
}

SPF_errcode_t DnsBridge::get_spf_cb(SPF_server_t* server, SPF_request_t* request, SPF_response_t* response,
                                    SPF_record_t** recordp) {
  auto* self = static_cast<DnsBridge*>(server->resolver->hook);
  try {
    return self->get_spf(server, request, response, recordp);
  } catch (const std::bad_alloc&) {
    self->fail_noexcept(true);
  } catch (...) {
    self->fail_noexcept(false);
  }
  *recordp = nullptr;
  return SPF_E_DNS_ERROR;
}

}  // namespace dmarc::spf2
