// forwarders.cpp - the known-forwarder allowlist
#include "dmarc/core/forwarders.hpp"

#include "dmarc/core/domain.hpp"

namespace dmarc {

bool name_matches(std::string_view name, std::string_view pattern) noexcept {
  if (pattern.empty()) return false;
  if (pattern.front() == '.') {
    std::string_view base = pattern.substr(1);
    return name == base || (name.size() > pattern.size() && name.substr(name.size() - pattern.size()) == pattern);
  }
  return name == pattern;
}

std::optional<std::string> ForwarderList::add(std::string_view entry) {
  if (entry.empty()) return std::string("empty forwarder entry");
  if (entry.rfind("dkim:", 0) == 0) {
    std::string_view d = entry.substr(5);
    bool dot = !d.empty() && d.front() == '.';
    auto n = normalize_domain(dot ? d.substr(1) : d);
    if (!n) return "not a domain after dkim: '" + std::string(d) + "'";
    dkim_.push_back((dot ? "." : "") + *n);
    return std::nullopt;
  }
  // An address or network: digits and ':' or '/' mark it; a bad one is an
  // error rather than a host name.
  if (entry.find(':') != std::string_view::npos || entry.find('/') != std::string_view::npos ||
      parse_ip(entry)) {
    auto net = parse_ip_net(entry);
    if (!net) return "not an IP address or network: '" + std::string(entry) + "'";
    nets_.add(*net);
    net_text_.emplace_back(entry);
    return std::nullopt;
  }
  bool dot = entry.front() == '.';
  auto n = normalize_domain(dot ? entry.substr(1) : entry);
  if (!n) return "not a host name: '" + std::string(entry) + "'";
  hosts_.push_back((dot ? "." : "") + *n);
  return std::nullopt;
}

std::optional<ForwarderMatch> ForwarderList::match(Resolver& resolver, std::string_view client_ip,
                                                   const std::vector<DkimInput>& dkim) const {
  auto ip = parse_ip(client_ip);
  if (ip) {
    for (std::size_t i = 0; i < nets_.nets().size(); ++i) {
      if (nets_.nets()[i].contains(*ip)) return ForwarderMatch{ForwarderMatch::Kind::Ip, net_text_[i], ip->str()};
    }
  }
  for (const auto& sig : dkim) {
    if (sig.result != AuthResult::Pass || dkim_.empty()) continue;
    // d= as the signer wrote it: domain names compare case-insensitively
    // (RFC 6376 3.5 d= is a domain name; RFC 4343).
    auto d_norm = normalize_domain(sig.domain);
    if (!d_norm) continue;
    for (const auto& d : dkim_) {
      if (name_matches(*d_norm, d)) return ForwarderMatch{ForwarderMatch::Kind::Dkim, "dkim:" + d, *d_norm};
    }
  }
  if (!ip || hosts_.empty()) return std::nullopt;
  // Forward-confirmed reverse DNS: a PTR name that is on the list and
  // whose own A/AAAA records include the client address.
  DnsAnswer ptr = resolver.ptr(ip->str());
  if (ptr.status != DnsStatus::Ok) return std::nullopt;
  std::size_t n = 0;
  for (const auto& raw : ptr.records) {
    if (++n > kMaxPtrNames) break;
    auto name = normalize_domain(raw);
    if (!name) continue;
    const std::string* hit = nullptr;
    for (const auto& h : hosts_) {
      if (name_matches(*name, h)) {
        hit = &h;
        break;
      }
    }
    if (!hit) continue;
    DnsAnswer fwd = ip->v6 ? resolver.aaaa(*name) : resolver.a(*name);
    if (fwd.status != DnsStatus::Ok) continue;
    for (const auto& addr : fwd.records) {
      auto a = parse_ip(addr);
      if (a && a->v6 == ip->v6 && a->bytes == ip->bytes) return ForwarderMatch{ForwarderMatch::Kind::Host, *hit, *name};
    }
  }
  return std::nullopt;
}

}  // namespace dmarc
