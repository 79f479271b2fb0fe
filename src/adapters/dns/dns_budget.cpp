// dns_budget.cpp - the thread's current per-message DNS time budget
#include "dmarc/adapters/dns_budget.hpp"

namespace dmarc {

namespace {
thread_local DnsTimeBudget* t_budget = nullptr;
}  // namespace

DnsBudgetScope::DnsBudgetScope(DnsTimeBudget& budget) noexcept : previous_(t_budget) { t_budget = &budget; }
DnsBudgetScope::~DnsBudgetScope() { t_budget = previous_; }

DnsTimeBudget* current_dns_budget() noexcept { return t_budget; }

}  // namespace dmarc
