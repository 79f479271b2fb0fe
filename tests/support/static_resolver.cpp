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

void StaticResolver::fail(std::string name, DnsStatus status) { failing_[canon(name)] = status; }

DnsAnswer StaticResolver::query(std::string_view name, RRType type) {
  std::string n = canon(name);
  queries_.emplace_back(n, type);
  DnsAnswer a;
  a.ttl = 300;
  if (auto f = failing_.find(n); f != failing_.end()) {
    a.status = f->second;
    a.why = "injected failure";
    return a;
  }
  if (auto it = records_.find({n, type}); it != records_.end()) {
    a.status = DnsStatus::Ok;
    a.records = it->second;
    return a;
  }
  for (const auto& existing : names_) {
    if (existing == n || (existing.size() > n.size() && existing.compare(existing.size() - n.size(), n.size(), n) == 0 &&
                          existing[existing.size() - n.size() - 1] == '.')) {
      a.status = DnsStatus::NoData;
      return a;
    }
  }
  a.status = DnsStatus::NxDomain;
  return a;
}

}  // namespace dmarc::test
