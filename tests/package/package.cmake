# package.cmake - the Debian package (issue 15), include()d from
# tests/CMakeLists.txt.
#
# tests/package/test-deb.sh builds the .deb with packaging/build-deb.sh (a
# second, package-only build of the whole project in build-deb/: a few
# minutes on 2 cores; its own limit is 30 min), runs lintian (errors fail),
# installs it with dpkg, starts the milter with the unit's own ExecStart as
# the unit's user, speaks the milter protocol to it, upgrades the package
# with a changed conffile kept and purges it. It needs root and changes the
# system while it runs (a package, a user, /etc): nothing runs beside it,
# and it removes all of it again, also when it fails.
add_test(NAME package_deb COMMAND ${CMAKE_CURRENT_LIST_DIR}/test-deb.sh)
set_tests_properties(package_deb PROPERTIES TIMEOUT 2400 RUN_SERIAL TRUE LABELS package)
