# Installation and the Debian package (docs/deployment.md): `cpack -G DEB` in a build directory
# makes genledger_<version>_amd64.deb with the three binaries, the systemd unit, the flags file
# /etc/default/genledger and the docs. tests/package_test.sh builds and checks it.
include(GNUInstallDirs)

install(TARGETS genledger genledger-inspect genledger-load RUNTIME DESTINATION bin COMPONENT genledger)
install(FILES packaging/genledger.service DESTINATION /lib/systemd/system COMPONENT genledger)
install(FILES packaging/genledger.default DESTINATION /etc/default RENAME genledger COMPONENT genledger)
install(FILES README.md DESTINATION share/doc/genledger COMPONENT genledger)
install(DIRECTORY docs/ DESTINATION share/doc/genledger COMPONENT genledger FILES_MATCHING PATTERN "*.md" PATTERN "*.yaml" PATTERN "*.png")

set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "genledger")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_CONTACT "genledger maintainers <genledger@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "metering and gating of AI generations (check-and-debit server)")
set(CPACK_PACKAGE_DESCRIPTION "genledger answers 'may this workspace spend N generations?' in microseconds,\n debits atomically and durably (write-ahead log with group commit, snapshots), over HTTP and WebSocket.")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_DEBIAN_FILE_NAME "DEB-DEFAULT")   # genledger_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION "net")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
# Dependencies from the binaries' shared libraries (dpkg-shlibdeps, from Debian's dpkg-dev).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# conffiles: /etc/default/genledger is configuration, so dpkg keeps an operator's edits across
# upgrades (only debhelper marks /etc files by itself; CPack needs the list).
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    "${CMAKE_CURRENT_SOURCE_DIR}/packaging/postinst;${CMAKE_CURRENT_SOURCE_DIR}/packaging/postrm;${CMAKE_CURRENT_SOURCE_DIR}/packaging/conffiles")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
