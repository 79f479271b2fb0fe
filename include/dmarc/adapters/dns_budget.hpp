// NAME
//   dns_budget - one time limit for all the DNS lookups of one message
// SYNOPSIS
//   dmarc::DnsTimeBudget budget(std::chrono::seconds(30));  // per message
//   {
//     dmarc::DnsBudgetScope scope(budget);   // this thread, this step
//     spf = verifier.check(...);             // every query spends from it
//   }
// DESCRIPTION
//   A message's lookups - SPF, the DKIM keys, the DMARC walks, np, the
//   forwarder PTR checks - each wait up to DNSTimeout x DNSRetries x
//   nameservers on their own. DnsTimeBudget is what they may take together
//   (DNSMessageTimeout): while a DnsBudgetScope is alive on a thread, the
//   LdnsResolver waits for no answer longer than the budget has left,
//   subtracts the time it waited, and once nothing is left answers
//   TempFail ("DNS time budget of the message used up") without sending.
//   Cached answers cost nothing. The time between the steps of a message
//   (the MTA sending the body) is not counted: only time spent waiting
//   for DNS is.
//   What runs out of time is a temporary DNS failure, so DMARC gives
//   temperror (DNSFailureAction), never fail.
// THREADING
//   A budget belongs to one message, which one thread at a time works on;
//   the scope pointer is thread_local. Scopes nest (the inner one wins).
#pragma once

#include <chrono>

namespace dmarc {

class DnsTimeBudget {
 public:
  using Clock = std::chrono::steady_clock;
  explicit DnsTimeBudget(Clock::duration total) noexcept : remaining_(total) {}
  Clock::duration remaining() const noexcept { return remaining_; }
  bool exhausted() const noexcept { return remaining_ <= Clock::duration::zero(); }
  void spend(Clock::duration d) noexcept { remaining_ -= d; }
  void reset(Clock::duration total) noexcept { remaining_ = total; }

 private:
  Clock::duration remaining_;
};

class DnsBudgetScope {
 public:
  explicit DnsBudgetScope(DnsTimeBudget& budget) noexcept;
  ~DnsBudgetScope();
  DnsBudgetScope(const DnsBudgetScope&) = delete;
  DnsBudgetScope& operator=(const DnsBudgetScope&) = delete;

 private:
  DnsTimeBudget* previous_;
};

// current_dns_budget - the budget of this thread's current scope, or nullptr.
DnsTimeBudget* current_dns_budget() noexcept;

}  // namespace dmarc
