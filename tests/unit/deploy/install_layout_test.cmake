# cmake -DBUILD_DIR=<build> -DLAYOUT=<build>/deploy/install_layout.cmake -DWORK_DIR=<tmp>
#       -P install_layout_test.cmake
# Checks, collecting every failure before it fails:
#   1. the generated meshd.service: Type=notify, KillMode=process (once), ExecStart with the
#      installed meshd and config, RuntimeDirectoryPreserve=yes, Restart=on-failure;
#   2. `cmake --install` into DESTDIR=<tmp> places meshd, meshctl, mesh-shim, the config, the
#      unit, the sysusers.d snippet and docs/deploy.md where the layout says;
#   3. mesh-shim is where meshd looks for it: <bindir>/../libexec/mesh/mesh-shim
#      (agent/daemon.cc, DefaultShimPath);
#   4. the only programs installed are meshd, meshctl and mesh-shim (no test or benchmark
#      binary, no static library ends up in the .deb);
#   5. the maintainer scripts parse (sh -n).
cmake_minimum_required(VERSION 3.25)
foreach(var BUILD_DIR LAYOUT WORK_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "install_layout_test: -D${var}=... is required")
  endif()
endforeach()
include(${LAYOUT})

set(failures "")
macro(fail text)
  list(APPEND failures "${text}")
endmacro()

# 1. The unit.
file(READ ${MESH_GENERATED_UNIT} unit)
set(unit "\n${unit}\n")
foreach(line IN ITEMS
        "Type=notify"
        "ExecStart=${MESH_MESHD_PATH} --config ${MESH_CONFIG_PATH}"
        "KillMode=process"
        "Restart=on-failure"
        "RuntimeDirectoryPreserve=yes")
  string(FIND "${unit}" "\n${line}\n" at)
  if(at EQUAL -1)
    fail("${MESH_GENERATED_UNIT}: no line \"${line}\"")
  endif()
endforeach()
string(REGEX MATCHALL "\nKillMode=[^\n]*" kill_modes "${unit}")
list(LENGTH kill_modes n)
if(NOT n EQUAL 1)
  fail("${MESH_GENERATED_UNIT}: ${n} KillMode= lines, want exactly one")
endif()

# 2. The install.
file(REMOVE_RECURSE ${WORK_DIR})
set(ENV{DESTDIR} ${WORK_DIR})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
unset(ENV{DESTDIR})
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake --install ${BUILD_DIR} (DESTDIR=${WORK_DIR}) failed (${rc}):\n${out}")
endif()
foreach(path IN ITEMS ${MESH_MESHD_PATH} ${MESH_MESHCTL_PATH} ${MESH_SHIM_PATH}
                      ${MESH_CONFIG_PATH} ${MESH_UNIT_PATH} ${MESH_SYSUSERS_PATH}
                      ${MESH_DEPLOY_DOC})
  if(NOT EXISTS ${WORK_DIR}${path})
    fail("not installed: ${path}")
  endif()
endforeach()
if(EXISTS ${WORK_DIR}${MESH_UNIT_PATH})
  file(READ ${WORK_DIR}${MESH_UNIT_PATH} installed_unit)
  if(NOT "\n${installed_unit}\n" STREQUAL "${unit}")
    fail("${MESH_UNIT_PATH} differs from ${MESH_GENERATED_UNIT}")
  endif()
endif()

# 3. meshd finds the shim relative to itself.
cmake_path(GET MESH_MESHD_PATH PARENT_PATH bindir)
cmake_path(GET bindir PARENT_PATH prefix)
cmake_path(SET looked_for NORMALIZE "${prefix}/libexec/mesh/mesh-shim")
cmake_path(SET shim NORMALIZE "${MESH_SHIM_PATH}")
if(NOT looked_for STREQUAL shim)
  fail("mesh-shim is installed as ${shim} but meshd looks for ${looked_for}")
endif()

# 4. Programs and libraries installed: ELF files ("\x7fELF") and ar archives ("!<arch>").
set(want_programs ${MESH_MESHD_PATH} ${MESH_MESHCTL_PATH} ${MESH_SHIM_PATH})
set(programs "")
file(GLOB_RECURSE installed LIST_DIRECTORIES false ${WORK_DIR}/*)
foreach(file IN LISTS installed)
  file(READ ${file} magic LIMIT 7 HEX)
  string(REPLACE "${WORK_DIR}" "" path "${file}")
  if(magic MATCHES "^7f454c46")
    list(APPEND programs ${path})
  elseif(magic STREQUAL "213c617263683e")
    fail("a static library is installed: ${path}")
  endif()
endforeach()
list(SORT programs)
list(SORT want_programs)
if(NOT programs STREQUAL want_programs)
  list(JOIN programs " " have)
  list(JOIN want_programs " " want)
  fail("installed programs are [${have}], want [${want}]: an install() rule in tests/ or \
bench/ would put test binaries into the .deb")
endif()
foreach(program IN LISTS want_programs)
  execute_process(COMMAND sh -c "test -x \"$1\"" sh ${WORK_DIR}${program} RESULT_VARIABLE rc)
  if(EXISTS ${WORK_DIR}${program} AND NOT rc EQUAL 0)
    fail("${program} is installed without its executable bit")
  endif()
endforeach()

# 5. The maintainer scripts.
foreach(script IN LISTS MESH_MAINTAINER_SCRIPTS)
  execute_process(COMMAND sh -n ${script} RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    fail("${script}: sh -n: ${err}")
  endif()
endforeach()

if(failures)
  list(JOIN failures "\n  " text)
  message(FATAL_ERROR "install layout:\n  ${text}")
endif()
file(REMOVE_RECURSE ${WORK_DIR})
list(LENGTH installed n)
message(STATUS "install layout: ${n} files under the prefix as expected; unit checked")
