# Install rules, the exported CMake package and the pkg-config file.
#
# Included from the top-level CMakeLists.txt after every subdirectory, so the
# targets the subdirectories define (xesvm, xesvm_sim, xesvm_xe, xesvm_cli,
# ze_xesvm, the samples) exist here.
#
# What a consumer gets under the prefix:
#   include/xesvm/                    the public headers
#   <libdir>/libxesvm.so.<soversion>  the runtime with every backend (SONAME
#                                     libxesvm.so.<soversion>), and libxesvm.a
#   <libdir>/cmake/xesvm/             find_package(xesvm CONFIG): xesvm::xesvm
#                                     (shared) and xesvm::xesvm_static
#   <libdir>/pkgconfig/xesvm.pc       pkg-config xesvm (--static for libxesvm.a)
#   bin/xesvm                         the command line
#   <libdir>/xesvm/libze_xesvm.so     the Level Zero driver, in a private
#                                     directory and under a name of its own:
#                                     it never shadows Intel's libze_intel_gpu,
#                                     the loader reaches it only through
#                                     ZE_ENABLE_ALT_DRIVERS (`xesvm run`)
#   <libexecdir>/xesvm/samples/       the Level Zero samples and their kernels
#
# Every path recorded in the installed files is relative to the prefix, so
# a tree unpacked somewhere else (dpkg -x, DESTDIR) works as it is.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# While the ABI is 0.x every minor version may break it, so the SONAME
# carries major.minor until 1.0; from 1.0 on, the major version alone.
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(XESVM_SOVERSION "0.${PROJECT_VERSION_MINOR}")
else()
  set(XESVM_SOVERSION "${PROJECT_VERSION_MAJOR}")
endif()

# The installable libraries are built from the objects of the in-tree static
# libraries (compiled once, position independent), so every backend and the
# C API are inside one libxesvm.
set(_xesvm_parts xesvm xesvm_sim)
if(TARGET xesvm_xe)
  list(APPEND _xesvm_parts xesvm_xe)
endif()
set(_xesvm_objects "")
foreach(_t ${_xesvm_parts})
  list(APPEND _xesvm_objects $<TARGET_OBJECTS:${_t}>)
endforeach()

add_library(xesvm_shared SHARED ${_xesvm_objects})
add_library(xesvm_static STATIC ${_xesvm_objects})
add_library(xesvm::xesvm ALIAS xesvm_shared)
add_library(xesvm::xesvm_static ALIAS xesvm_static)
set(_xesvm_deps TBB::tbb absl::btree absl::flat_hash_map absl::inlined_vector Threads::Threads)
set_target_properties(xesvm_shared PROPERTIES
  OUTPUT_NAME xesvm EXPORT_NAME xesvm
  VERSION ${PROJECT_VERSION} SOVERSION ${XESVM_SOVERSION}
  LIBRARY_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/lib)
target_link_libraries(xesvm_shared PRIVATE ${_xesvm_deps})
set_target_properties(xesvm_static PROPERTIES
  OUTPUT_NAME xesvm EXPORT_NAME xesvm_static
  ARCHIVE_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/lib)
target_link_libraries(xesvm_static INTERFACE ${_xesvm_deps})
if(TARGET xesvm_xe)
  target_link_libraries(xesvm_shared PRIVATE PkgConfig::LIBDRM)
  # A plain library name: the installed package must not need pkg-config
  # to recreate an imported libdrm target.
  target_link_libraries(xesvm_static INTERFACE drm)
endif()
foreach(_t xesvm_shared xesvm_static)
  target_include_directories(${_t} INTERFACE
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include> $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  # The public header uses std::span.
  target_compile_features(${_t} INTERFACE cxx_std_20)
endforeach()

set(XESVM_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/xesvm)
set(XESVM_INSTALL_ZE_DRIVER_DIR ${CMAKE_INSTALL_LIBDIR}/xesvm)
set(XESVM_INSTALL_SAMPLES_DIR ${CMAKE_INSTALL_LIBEXECDIR}/xesvm/samples)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/xesvm DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.h" PATTERN "*.hpp")
install(TARGETS xesvm_shared EXPORT xesvmTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS xesvm_static EXPORT xesvmStaticTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(EXPORT xesvmTargets NAMESPACE xesvm:: DESTINATION ${XESVM_INSTALL_CMAKEDIR})
install(EXPORT xesvmStaticTargets NAMESPACE xesvm:: DESTINATION ${XESVM_INSTALL_CMAKEDIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/xesvmConfig.cmake.in
  ${PROJECT_BINARY_DIR}/cmake/xesvmConfig.cmake INSTALL_DESTINATION ${XESVM_INSTALL_CMAKEDIR}
  PATH_VARS CMAKE_INSTALL_INCLUDEDIR CMAKE_INSTALL_BINDIR XESVM_INSTALL_ZE_DRIVER_DIR)
# 0.x: only the same minor version is compatible (as the SONAME says).
write_basic_package_version_file(${PROJECT_BINARY_DIR}/cmake/xesvmConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/cmake/xesvmConfig.cmake ${PROJECT_BINARY_DIR}/cmake/xesvmConfigVersion.cmake
  DESTINATION ${XESVM_INSTALL_CMAKEDIR})

# pkg-config: prefix-relative, so a relocated tree (dpkg -x, DESTDIR) works
# with PKG_CONFIG_PATH alone.
file(RELATIVE_PATH XESVM_PC_PREFIX_FROM_PCDIR ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_PREFIX})
string(REGEX REPLACE "/$" "" XESVM_PC_PREFIX_FROM_PCDIR "${XESVM_PC_PREFIX_FROM_PCDIR}")
set(XESVM_PC_LIBS_PRIVATE "-ltbb -lpthread")
set(XESVM_PC_REQUIRES_PRIVATE "tbb absl_btree absl_flat_hash_map absl_inlined_vector")
if(TARGET xesvm_xe)
  string(APPEND XESVM_PC_REQUIRES_PRIVATE " libdrm")
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/xesvm.pc.in ${PROJECT_BINARY_DIR}/xesvm.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/xesvm.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# The command line links the runtime statically: it runs from any prefix
# without a library path or an RPATH.
if(TARGET xesvm_cli)
  install(TARGETS xesvm_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

# The Level Zero driver. `xesvm run` finds it relative to its own binary
# (bindir -> this directory), or in the build tree when run from there.
if(TARGET ze_xesvm)
  install(TARGETS ze_xesvm LIBRARY DESTINATION ${XESVM_INSTALL_ZE_DRIVER_DIR})
  file(RELATIVE_PATH _rel ${CMAKE_INSTALL_FULL_BINDIR} ${CMAKE_INSTALL_FULL_LIBDIR}/xesvm)
  if(TARGET xesvm_cli)
    target_compile_definitions(xesvm_cli PRIVATE
      XESVM_ZE_DRIVER_FROM_BINDIR="${_rel}/$<TARGET_FILE_NAME:ze_xesvm>"
      XESVM_ZE_DRIVER_IN_BUILD_TREE="$<TARGET_FILE:ze_xesvm>")
    add_dependencies(xesvm_cli ze_xesvm)
  endif()
endif()

# The Level Zero samples and their kernels module. The samples look for the
# module where the build put it unless XESVM_ZE_KERNELS names it; `xesvm run`
# sets XESVM_ZE_KERNELS to the installed module when it is not set.
if(TARGET ze_sample_kernels)
  install(TARGETS ze_sample_kernels LIBRARY DESTINATION ${XESVM_INSTALL_SAMPLES_DIR})
  foreach(_s ze_vector_add ze_oversubscribe ze_spirv_vector_add)
    if(TARGET ${_s})
      install(TARGETS ${_s} RUNTIME DESTINATION ${XESVM_INSTALL_SAMPLES_DIR})
    endif()
  endforeach()
  # The SPIR-V sample finds its module next to itself.
  if(TARGET ze_spirv_vector_add)
    install(FILES ${PROJECT_BINARY_DIR}/samples/ze_spirv_kernels.spv DESTINATION ${XESVM_INSTALL_SAMPLES_DIR})
  endif()
  file(RELATIVE_PATH _rel ${CMAKE_INSTALL_FULL_BINDIR} ${CMAKE_INSTALL_FULL_LIBEXECDIR}/xesvm/samples)
  if(TARGET xesvm_cli)
    target_compile_definitions(xesvm_cli PRIVATE
      XESVM_SAMPLE_KERNELS_FROM_BINDIR="${_rel}/$<TARGET_FILE_NAME:ze_sample_kernels>")
  endif()
endif()
