// static_resolver.hpp - an in-memory zone behind the Resolver interface
//
// For pure-core tests and the JSON conformance cases, whose DNS worlds are
// a handful of records: "Only names listed exist; every other name is
// NXDOMAIN" (conformance/dmarc/SOURCE.md). A name also exists when a listed
// name lies below it (an empty non-terminal answers NODATA, RFC 8020).
// Names can be made to fail (TempFail) to test DNS errors. It counts
// queries so tests can check the tree walk's bound. Not thread-safe.
#pragma once

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "dmarc/core/dns.hpp"

namespace dmarc::test {

class StaticResolver : public Resolver {
 public:
  void add(std::string name, RRType type, std::string value);
  void add_txt(std::string name, std::string value) { add(std::move(name), RRType::TXT, std::move(value)); }
  void fail(std::string name, DnsStatus status = DnsStatus::TempFail);

  DnsAnswer query(std::string_view name, RRType type) override;

  std::size_t query_count() const { return queries_.size(); }
  const std::vector<std::pair<std::string, RRType>>& queries() const { return queries_; }
  void clear_log() { queries_.clear(); }

 private:
  std::map<std::pair<std::string, RRType>, std::vector<std::string>> records_;
  std::set<std::string> names_;
  std::map<std::string, DnsStatus> failing_;
  std::vector<std::pair<std::string, RRType>> queries_;
};

}  // namespace dmarc::test
