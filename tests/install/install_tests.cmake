# Install, package, launcher and command-line tests, included from the
# top-level CMakeLists.txt (release-type builds only: they install and
# consume the build's artefacts). ctest label: install.
set(_it ${PROJECT_SOURCE_DIR}/tests/install)
set(_sh ${_it}/install_test.sh)
find_package(Python3 COMPONENTS Interpreter REQUIRED)

if(TARGET PkgConfig::LEVEL_ZERO)
  add_executable(ze_install_app ${_it}/ze_app.cpp)
  target_link_libraries(ze_install_app PRIVATE PkgConfig::LEVEL_ZERO)
  target_compile_options(ze_install_app PRIVATE -Wno-missing-field-initializers)
  # ctest runs it through `xesvm run`; make sure the driver is built.
  add_dependencies(ze_install_app ze_xesvm)
endif()

add_test(NAME install.InstallPutsHeadersLibrariesToolAndDriverUnderAMovablePrefix
  COMMAND bash ${_sh} tree ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR})
set_tests_properties(install.InstallPutsHeadersLibrariesToolAndDriverUnderAMovablePrefix PROPERTIES
  FIXTURES_SETUP xesvm_installed RESOURCE_LOCK xesvm_install_tree)
set(_consumers
  "FindPackageConsumerBuildsAndMovesBytes\;cmake"
  "FindPackageStaticConsumerNeedsNoSharedLibrary\;cmake-static"
  "PkgConfigConsumerBuildsAndMovesBytes\;pkg-config")
foreach(_c ${_consumers})
  list(GET _c 0 _name)
  list(GET _c 1 _mode)
  add_test(NAME install.${_name} COMMAND bash ${_sh} ${_mode} ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR})
  set_tests_properties(install.${_name} PROPERTIES FIXTURES_REQUIRED xesvm_installed
    RESOURCE_LOCK xesvm_install_tree LABELS install TIMEOUT 300)
endforeach()
if(TARGET ze_install_app)
  add_test(NAME install.RunStartsALoaderOnlyAppOnTheBuildTreeDriver
    COMMAND bash ${_sh} run-build ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR} $<TARGET_FILE:ze_install_app>)
  add_test(NAME install.RunStartsALoaderOnlyAppOnTheInstalledDriver
    COMMAND bash ${_sh} run-installed ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR} $<TARGET_FILE:ze_install_app>)
  set_tests_properties(install.RunStartsALoaderOnlyAppOnTheInstalledDriver PROPERTIES
    FIXTURES_REQUIRED xesvm_installed RESOURCE_LOCK xesvm_install_tree)
  set_tests_properties(install.RunStartsALoaderOnlyAppOnTheBuildTreeDriver
    install.RunStartsALoaderOnlyAppOnTheInstalledDriver PROPERTIES LABELS install TIMEOUT 300)
  set(_pkg_app $<TARGET_FILE:ze_install_app>)
else()
  set(_pkg_app "")
endif()
set_tests_properties(install.InstallPutsHeadersLibrariesToolAndDriverUnderAMovablePrefix PROPERTIES
  LABELS install TIMEOUT 300)

add_test(NAME install.DebianPackageIsLintianCleanAndWorksFromAThrowAwayRoot
  COMMAND bash ${_it}/package_test.sh ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR} ${_pkg_app})
set_tests_properties(install.DebianPackageIsLintianCleanAndWorksFromAThrowAwayRoot PROPERTIES
  LABELS install TIMEOUT 900 SKIP_RETURN_CODE 77)

# The command line's output: JSON parsed, CSV columns, PNG dimensions. One
# ctest entry per test method of cli_test.py.
file(STRINGS ${_it}/cli_test.py _cli_lines REGEX "^    def test_")
foreach(_l ${_cli_lines})
  string(REGEX REPLACE "^    def (test_[A-Za-z0-9_]+).*" "\\1" _m "${_l}")
  add_test(NAME cli.${_m} COMMAND ${Python3_EXECUTABLE} ${_it}/cli_test.py $<TARGET_FILE:xesvm_cli> Cli.${_m})
  set_tests_properties(cli.${_m} PROPERTIES LABELS install TIMEOUT 300
    SKIP_REGULAR_EXPRESSION "skipped '")
endforeach()
