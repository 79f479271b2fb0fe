// Placeholder until the SPF adapter lands (issue 3); replaced by spf_verifier.cpp.
#include "dmarc/adapters/spf.hpp"
