// static_resolver.cpp - in-memory zone for tests
#include "support/static_resolver.hpp"

namespace dmarc::test {
namespace {
std::string canon(std::string_view n) {
  std::string s(n);
  if (!s.empty() && s.back() == '.') s.pop_back();
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}
}  // namespace

void StaticResolver::add(std::string name, RRType type, std::string value) {
  std::string n = canon(name);
  records_[{n, type}].push_back(std::move(value));
  names_.insert(n);
}

void StaticResolver::add_cname(std::string name, std::string target) {
  std::string n = canon(name);
  cnames_[n] = canon(target);
  names_.insert(n);
}

void StaticResolver::fail(std::string name, DnsStatus status) { failing_[canon(name)] = status; }

void StaticResolver::fail(std::string name, RRType type, DnsStatus status) {
  failing_type_[{canon(name), type}] = status;
}

void StaticResolver::fail_unlisted(std::string name, DnsStatus status) {
  std::string n = canon(name);
  Unlisted u{status, {}};
  for (const auto& [key, values] : records_) {
    if (key.first == n && !values.empty()) u.answered.insert(key.second);
  }
  unlisted_[n] = std::move(u);
  names_.insert(n);
}

bool StaticResolver::exists(const std::string& n) const {
  for (const auto& existing : names_) {
    if (existing == n || (existing.size() > n.size() && existing.compare(existing.size() - n.size(), n.size(), n) == 0 &&
                          existing[existing.size() - n.size() - 1] == '.')) {
      return true;
    }
  }
  return false;
}

DnsAnswer StaticResolver::answer(const std::string& n, RRType type, std::size_t hops) const {
  DnsAnswer a;
  a.ttl = 300;
  if (auto f = failing_.find(n); f != failing_.end()) {
    a.status = f->second;
    a.why = "injected failure";
    return a;
  }
  if (auto f = failing_type_.find({n, type}); f != failing_type_.end()) {
    a.status = f->second;
    a.why = "injected failure";
    return a;
  }
  if (auto u = unlisted_.find(n); u != unlisted_.end() && u->second.answered.count(type) == 0) {
    a.status = u->second.status;
    a.why = "injected timeout";
    return a;
  }
  if (auto c = cnames_.find(n); c != cnames_.end()) {
    if (hops >= kMaxCnameHops) {
      a.status = DnsStatus::TempFail;
      a.why = "CNAME loop";
      return a;
    }
    return answer(c->second, type, hops + 1);
  }
  if (auto it = records_.find({n, type}); it != records_.end()) {
    a.status = DnsStatus::Ok;
    a.records = it->second;
    return a;
  }
  a.status = exists(n) ? DnsStatus::NoData : DnsStatus::NxDomain;
  return a;
}

DnsAnswer StaticResolver::query(std::string_view name, RRType type) {
  std::string n = canon(name);
  queries_.emplace_back(n, type);
  return answer(n, type, 0);
}

}  // namespace dmarc::test
