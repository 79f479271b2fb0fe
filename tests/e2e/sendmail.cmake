# dmarc-milter in a real Sendmail with NSD (tests/e2e/test_sendmail_e2e.cpp,
# support/sendmail_instance). Sendmail runs from the unpacked Debian packages
# (packaging/install-deps.sh --test; DMARC_TEST_UNPACKED names the tree) in a
# mount namespace of its own; needs root.
dmarc_test(test_e2e_sendmail e2e/test_sendmail_e2e.cpp)
add_dependencies(test_e2e_sendmail dmarc-milter)
set_tests_properties(test_e2e_sendmail PROPERTIES TIMEOUT 300 LABELS e2e)
