// static_resolver.hpp - an in-memory zone behind the Resolver interface
//
// For pure-core tests, the JSON conformance cases and the SPF suite, whose
// DNS worlds are a handful of records: "Only names listed exist; every
// other name is NXDOMAIN" (conformance/dmarc/SOURCE.md). A name also exists
// when a listed name lies below it (an empty non-terminal answers NODATA,
// RFC 8020). Names compare case-insensitively, a trailing dot is ignored.
//
// Beyond plain records:
//   add_cname(name, target)   the name is an alias; queries of any type
//                             follow the chain, as a recursive resolver
//                             does (records come back for the final
//                             target). A loop or a chain longer than
//                             kMaxCnameHops answers TempFail ("CNAME
//                             loop"), as a resolver's SERVFAIL would.
//   fail(name[, status])      every query of the name fails with STATUS.
//   fail(name, type, status)  only queries of TYPE fail.
//   fail_unlisted(name[, s])  the SPF suite's TIMEOUT item: queries of a
//                             type that has records at the time of the
//                             call are answered, every other type fails.
// It logs queries so tests can check bounds and order. Not thread-safe.
#pragma once

#include <cstddef>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "dmarc/core/dns.hpp"

namespace dmarc::test {

class StaticResolver : public Resolver {
 public:
  static constexpr std::size_t kMaxCnameHops = 8;

  void add(std::string name, RRType type, std::string value);
  void add_txt(std::string name, std::string value) { add(std::move(name), RRType::TXT, std::move(value)); }
  void add_cname(std::string name, std::string target);
  void fail(std::string name, DnsStatus status = DnsStatus::TempFail);
  void fail(std::string name, RRType type, DnsStatus status);
  void fail_unlisted(std::string name, DnsStatus status = DnsStatus::TempFail);

  DnsAnswer query(std::string_view name, RRType type) override;

  std::size_t query_count() const { return queries_.size(); }
  const std::vector<std::pair<std::string, RRType>>& queries() const { return queries_; }
  void clear_log() { queries_.clear(); }

 private:
  struct Unlisted {
    DnsStatus status;
    std::set<RRType> answered;  // types that had records when fail_unlisted() was called
  };
  // answer - the answer for canonical NAME, following CNAMEs (HOPS so far).
  DnsAnswer answer(const std::string& name, RRType type, std::size_t hops) const;
  bool exists(const std::string& name) const;

  std::map<std::pair<std::string, RRType>, std::vector<std::string>> records_;
  std::map<std::string, std::string> cnames_;
  std::set<std::string> names_;
  std::map<std::string, DnsStatus> failing_;
  std::map<std::pair<std::string, RRType>, DnsStatus> failing_type_;
  std::map<std::string, Unlisted> unlisted_;
  std::vector<std::pair<std::string, RRType>> queries_;
};

}  // namespace dmarc::test
