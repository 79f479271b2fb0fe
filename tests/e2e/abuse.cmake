# tests/e2e/abuse.cmake - included from tests/CMakeLists.txt
#
# Fault injection against the built dmarc-milter (issue 16 item 3): milter
# protocol abuse over its socket, and DNS faults at the message level
# (tests/e2e/test_milter_abuse.cpp), with bench/'s client as the MTA. The
# resolver's own DNS fault cases are in test_dns (tests/adapters/test_dns_faults.cpp).
dmarc_test(test_milter_abuse e2e/test_milter_abuse.cpp ${PROJECT_SOURCE_DIR}/bench/src/milter_client.cpp)
target_link_libraries(test_milter_abuse PRIVATE dmarc_milter_lib)  # split_message (src/milter/eval.hpp)
add_dependencies(test_milter_abuse dmarc-milter)
set_tests_properties(test_milter_abuse PROPERTIES TIMEOUT 600 LABELS e2e)
