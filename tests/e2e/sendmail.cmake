# dmarc-milter in a real Sendmail with NSD (tests/e2e/test_sendmail_e2e.cpp,
# support/sendmail_instance). Sendmail runs from the unpacked Debian packages
# (packaging/install-deps.sh --test, into $DMARC_TEST_UNPACKED/root) in a
# mount namespace of its own, the test in a network namespace of its own:
# needs root with mount(2) and unshare (a privileged container at least).
# Sendmail's file mailer runs as its default user and its safe-file checks
# walk the build directory's parents: each must be searchable by others
# and not group- or world-writable (a checkout under /root, mode 0700, is
# not).
dmarc_test(test_e2e_sendmail e2e/test_sendmail_e2e.cpp)
add_dependencies(test_e2e_sendmail dmarc-milter)
set_tests_properties(test_e2e_sendmail PROPERTIES TIMEOUT 300 LABELS e2e)
