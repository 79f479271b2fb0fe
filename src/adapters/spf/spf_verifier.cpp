// spf_verifier.cpp - SpfVerifier on libspf2 (see dmarc/adapters/spf.hpp)
#include "dmarc/adapters/spf.hpp"

#include <arpa/inet.h>

#include <cstring>
#include <ctime>
#include <exception>
#include <mutex>
#include <new>
#include <optional>

#include "adapters/spf/spf2_handles.hpp"
#include "adapters/spf/spf_dns_bridge.hpp"
#include "adapters/spf/spf_syntax.hpp"

namespace dmarc {
namespace {

// quiet - libspf2 prints warnings and notes to stderr by default; the
// milter logs through its own channels, so they are dropped. (Fatal
// SPF_error() handling is left alone: it marks an internal inconsistency.)
void quiet(const char*, int, const char*) {}
void install_quiet_handlers() {
  static std::once_flag once;
  std::call_once(once, [] {
    SPF_warning_handler = &quiet;
    SPF_info_handler = &quiet;
    SPF_debug_handler = &quiet;
  });
}

// What libspf2 is told its default explanation is: a control character,
// which finish_explanation() never lets through into a served explanation.
constexpr const char* kDefaultMarker = "\x03";

AuthResult from_libspf2(SPF_result_t r) {
  switch (r) {
    case SPF_RESULT_PASS: return AuthResult::Pass;
    case SPF_RESULT_FAIL: return AuthResult::Fail;
    case SPF_RESULT_SOFTFAIL: return AuthResult::SoftFail;
    case SPF_RESULT_NEUTRAL: return AuthResult::Neutral;
    case SPF_RESULT_NONE: return AuthResult::None;
    case SPF_RESULT_TEMPERROR: return AuthResult::TempError;
    case SPF_RESULT_PERMERROR:
    case SPF_RESULT_INVALID: break;
  }
  return AuthResult::PermError;
}

struct ClientAddress {
  bool ipv6 = false;
  in_addr v4{};
  in6_addr v6{};
};

// parse_client - the SMTP client address; IPv4-mapped IPv6 is IPv4 (RFC
// 7208 5: "ip4-mapped ... MUST still be considered an IPv4 address", cf. the
// cidr6-ip4 test). Accepts "[...]" and an "IPv6:" prefix.
std::optional<ClientAddress> parse_client(std::string_view text) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
  if (text.size() > 5 && (text.substr(0, 5) == "IPv6:" || text.substr(0, 5) == "ipv6:")) text.remove_prefix(5);
  if (text.empty() || text.size() > 45) return std::nullopt;
  std::string s(text);
  ClientAddress a;
  if (inet_pton(AF_INET, s.c_str(), &a.v4) == 1) return a;
  if (inet_pton(AF_INET6, s.c_str(), &a.v6) != 1) return std::nullopt;
  if (IN6_IS_ADDR_V4MAPPED(&a.v6)) {
    std::memcpy(&a.v4, &a.v6.s6_addr[12], 4);
    return a;
  }
  a.ipv6 = true;
  return a;
}

}  // namespace

struct SpfVerifier::Impl {
  Impl(Resolver& r, SpfOptions o) : options(std::move(o)), bridge(r, options) {}
  // run - fills R (scope, domain, identity already set) for the check.
  void run(std::string_view client_ip, std::string_view helo, std::string local, std::string domain,
           SpfCheckResult& r);

  SpfOptions options;
  std::string default_explanation;  // checked form of options.default_explanation
  spf2::DnsBridge bridge;     // must outlive `server`, which points at it
  spf2::ServerHandle server;
};

SpfVerifier::SpfVerifier() = default;
SpfVerifier::~SpfVerifier() = default;

Expected<std::unique_ptr<SpfVerifier>, std::string> SpfVerifier::create(Resolver& resolver, SpfOptions options) {
  install_quiet_handlers();
  std::unique_ptr<SpfVerifier> v(new SpfVerifier());
  v->impl_ = std::make_unique<Impl>(resolver, std::move(options));
  Impl& im = *v->impl_;
  im.server.reset(SPF_server_new_dns(im.bridge.server(), 0));
  if (!im.server) return Unexpected<std::string>{"libspf2: cannot create a server"};
  if (SPF_server_set_rec_dom(im.server.get(), im.options.receiver.c_str()) != SPF_E_SUCCESS) {
    return Unexpected<std::string>{"libspf2: cannot set the receiver name"};
  }
  // The default explanation is a macro-string (RFC 7208 6.2) we expand
  // ourselves; libspf2 gets a marker that no served explanation contains.
  auto exp = spf2::check_explain_string(im.options.default_explanation);
  if (!exp) return Unexpected<std::string>{"default SPF explanation is not a valid RFC 7208 explain-string"};
  im.default_explanation = std::move(*exp);
  SPF_response_t* raw = nullptr;
  SPF_errcode_t err = SPF_server_set_explanation(im.server.get(), kDefaultMarker, &raw);
  spf2::ResponseHandle errors(raw);
  if (err != SPF_E_SUCCESS) {
    return Unexpected<std::string>{std::string("default SPF explanation: libspf2: ") + SPF_strerror(err)};
  }
  // libspf2 counts DNS mechanisms per record; the bridge counts them over
  // the whole check (RFC 7208 4.6.4) and stops first.
  SPF_server_set_max_dns_mech(im.server.get(), static_cast<int>(im.options.max_dns_mechanisms));
  return v;
}

SpfCheckResult SpfVerifier::check(std::string_view client_ip, std::string_view helo, std::string_view mail_from) {
  SpfCheckResult r;
  try {
    if (mail_from.empty()) {
      // RFC 7208 2.4: a null reverse-path is checked as postmaster@HELO.
      r.scope = SpfScope::Helo;
      r.domain = std::string(helo);
      r.identity = "postmaster@" + r.domain;
      impl_->run(client_ip, helo, "postmaster", r.domain, r);
      return r;
    }
    r.scope = SpfScope::MailFrom;
    std::size_t at = mail_from.rfind('@');
    std::string local = at == std::string_view::npos ? std::string() : std::string(mail_from.substr(0, at));
    r.domain = at == std::string_view::npos ? std::string() : std::string(mail_from.substr(at + 1));
    // RFC 7208 4.3: no local part -> "postmaster".
    if (local.empty()) local = "postmaster";
    r.identity = local + "@" + r.domain;
    impl_->run(client_ip, helo, std::move(local), r.domain, r);
    return r;
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    r.result = AuthResult::TempError;
    r.problem = std::string("internal error: ") + e.what();
    return r;
  }
}

SpfCheckResult SpfVerifier::check_helo(std::string_view client_ip, std::string_view helo) {
  SpfCheckResult r;
  try {
    // RFC 7208 2.3: <sender> is postmaster@<helo>, <domain> the HELO name.
    r.scope = SpfScope::Helo;
    r.domain = std::string(helo);
    r.identity = r.domain;
    impl_->run(client_ip, helo, "postmaster", r.domain, r);
    return r;
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    r.result = AuthResult::TempError;
    r.problem = std::string("internal error: ") + e.what();
    return r;
  }
}

// run - check_host(<ip>, <domain>, <sender>) (RFC 7208 4).
void SpfVerifier::Impl::run(std::string_view client_ip, std::string_view helo, std::string local, std::string domain,
                            SpfCheckResult& r) {
  auto client = parse_client(client_ip);
  if (!client) {
    r.result = AuthResult::PermError;
    r.problem = "client address is not an IP address";
    return;
  }
  if (!domain.empty() && domain.back() == '.') domain.pop_back();
  if (!spf2::valid_check_domain(domain)) {
    // RFC 7208 4.3: a malformed or single-label <domain> -> none.
    r.result = AuthResult::None;
    r.problem = "not a valid multi-label domain name (RFC 7208 4.3)";
    return;
  }
  spf2::RequestHandle request(SPF_request_new(server.get()));
  if (!request) throw std::bad_alloc();

  // RFC 7208 7.3 macro values; "unknown" for an absent HELO.
  spf2::MacroValues values;
  values.sender = local + "@" + domain;
  values.local = local;
  values.sender_domain = domain;
  values.helo = helo.empty() ? std::string("unknown") : std::string(helo);
  values.receiver = options.receiver;
  values.ipv6 = client->ipv6;
  values.now = static_cast<long long>(std::time(nullptr));
  char text[INET6_ADDRSTRLEN] = {};
  if (client->ipv6) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    for (unsigned char b : client->v6.s6_addr) {
      if (!values.ip_dotted.empty()) values.ip_dotted += '.';
      values.ip_dotted += kHex[b >> 4];
      values.ip_dotted += '.';
      values.ip_dotted += kHex[b & 0x0f];
    }
    inet_ntop(AF_INET6, &client->v6, text, sizeof text);
  } else {
    inet_ntop(AF_INET, &client->v4, text, sizeof text);
    values.ip_dotted = text;
  }
  values.ip_text = text;
  bridge.begin_check(client->ipv6, client->v4, client->v6, values, request.get());

  if (client->ipv6) {
    SPF_request_set_ipv6(request.get(), client->v6);
  } else {
    SPF_request_set_ipv4(request.get(), client->v4);
  }
  const std::string sender = values.sender;
  // Order matters: set_helo_dom() copies the HELO into env_from when that
  // is still unset. An absent HELO expands %{h} to "unknown".
  if (SPF_request_set_env_from(request.get(), sender.c_str()) != 0) throw std::bad_alloc();
  if (SPF_request_set_helo_dom(request.get(), values.helo.c_str()) != SPF_E_SUCCESS) throw std::bad_alloc();
  // cur_dom is what SPF_request_query_mailfrom() would set; we run the two
  // steps ourselves to skip its unconditional pass for loopback clients.
  request->cur_dom = domain.c_str();

  spf2::ResponseHandle response(SPF_response_new(request.get()));
  if (!response) throw std::bad_alloc();
  SPF_record_t* raw = nullptr;
  SPF_errcode_t err = SPF_server_get_record(server.get(), request.get(), response.get(), &raw);
  spf2::RecordHandle record(raw);
  if (err == SPF_E_SUCCESS && record) {
    response->spf_record_exp = record.get();
    SPF_record_interpret(record.get(), request.get(), response.get(), 0);
  }
  if (bridge.out_of_memory()) throw std::bad_alloc();

  r.dns_mechanisms = bridge.dns_terms();
  r.void_lookups = bridge.void_lookups();
  if (const auto& stop = bridge.stop()) {
    r.result = stop->result;
    r.problem = stop->problem.empty() ? "internal error" : stop->problem;
    return;
  }
  if (err != SPF_E_SUCCESS || !record) {
    if (const auto& top = bridge.top_outcome()) {
      r.result = top->result;
      r.problem = top->problem;
    } else {
      r.result = AuthResult::PermError;
      r.problem = std::string("libspf2: ") + SPF_strerror(err);
    }
    return;
  }
  r.result = from_libspf2(response->result);
  switch (r.result) {
    case AuthResult::Fail: {
      // RFC 7208 6.2: the exp= of the record that gave the fail, looked up
      // now; without a usable one, the configured default (if any).
      std::optional<std::string> exp;
      if (response->explanation != nullptr) exp = bridge.explanation(response->explanation);
      r.explanation = exp ? std::move(*exp) : spf2::finish_explanation(bridge.expand(default_explanation, domain));
      if (r.explanation.size() > 255) r.explanation.resize(255);
      break;
    }
    case AuthResult::PermError:
    case AuthResult::TempError: {
      r.problem = std::string("libspf2: ") + SPF_strerror(response->err);
      if (!bridge.note().empty()) r.problem += " (" + bridge.note() + ")";
      break;
    }
    default:
      break;
  }
  return;
}

}  // namespace dmarc
