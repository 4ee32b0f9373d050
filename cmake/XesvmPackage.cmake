# `cpack` (run in a build directory) makes a Debian package of everything the
# install rules put under the prefix, installed under /usr.
#
#   cd build/release && cpack        ->  xesvm_<version>_<arch>.deb
#
# One package: runtime library, development files, the command line, the
# Level Zero driver (in /usr/lib/xesvm/, a private directory: it never
# shadows Intel's driver, see `xesvm run`) and the samples. Dependencies come
# from dpkg-shlibdeps; the shlibs file from the SONAME.
set(XESVM_PACKAGE_MAINTAINER "xesvm maintainers <maintainers@xesvm.invalid>"
  CACHE STRING "Maintainer field of the Debian package")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME xesvm)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR xesvm)
set(CPACK_PACKAGE_CONTACT "${XESVM_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "shared virtual memory for GPUs (Intel Xe and a user-space device)")
# The body only: CPack puts the summary first and indents every line.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "xesvm gives a GPU the CPU's address space: a pointer from alloc_shared() or
into a mirrored buffer is valid on both sides, and data migrates on faults,
on prefetch and under device-memory pressure.

This package holds the runtime library (shared and static), its C and C++
headers, CMake and pkg-config files, the xesvm command line, a Level Zero
driver that applications reach through `xesvm run`, and Level Zero samples.")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${XESVM_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
# ldconfig runs from the dpkg trigger (CPack's postinst/postrm call it as well).
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${PROJECT_SOURCE_DIR}/packaging/triggers)
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "libze-dev, libtbb-dev, libabsl-dev, libdrm-dev, gnuplot-nox")
set(CPACK_STRIP_FILES ON)
set(CPACK_SOURCE_IGNORE_FILES "/build/;/\\\\.git/")

# Files Debian policy asks of every package: copyright and a compressed
# changelog in /usr/share/doc/<package>, lintian overrides with reasons.
set(_doc ${CMAKE_INSTALL_DATAROOTDIR}/doc/xesvm)
file(MAKE_DIRECTORY ${PROJECT_BINARY_DIR}/packaging)
add_custom_command(OUTPUT ${PROJECT_BINARY_DIR}/packaging/changelog.gz
  COMMAND gzip -9n -c ${PROJECT_SOURCE_DIR}/packaging/changelog > ${PROJECT_BINARY_DIR}/packaging/changelog.gz
  DEPENDS ${PROJECT_SOURCE_DIR}/packaging/changelog)
add_custom_command(OUTPUT ${PROJECT_BINARY_DIR}/packaging/xesvm.1.gz
  COMMAND gzip -9n -c ${PROJECT_SOURCE_DIR}/packaging/xesvm.1 > ${PROJECT_BINARY_DIR}/packaging/xesvm.1.gz
  DEPENDS ${PROJECT_SOURCE_DIR}/packaging/xesvm.1)
add_custom_target(xesvm_package_docs ALL
  DEPENDS ${PROJECT_BINARY_DIR}/packaging/changelog.gz ${PROJECT_BINARY_DIR}/packaging/xesvm.1.gz)
install(FILES ${PROJECT_SOURCE_DIR}/packaging/copyright DESTINATION ${_doc})
install(FILES ${PROJECT_BINARY_DIR}/packaging/changelog.gz DESTINATION ${_doc})
install(FILES ${PROJECT_SOURCE_DIR}/packaging/lintian-overrides
  DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/lintian/overrides RENAME xesvm)
if(TARGET xesvm_cli)
  install(FILES ${PROJECT_BINARY_DIR}/packaging/xesvm.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
endif()

include(CPack)
