# MESH_GIT_COMMIT: the commit this tree was built from, "unknown" outside a git checkout.
find_package(Git QUIET)
set(MESH_GIT_COMMIT "unknown")
if(GIT_FOUND AND EXISTS ${PROJECT_SOURCE_DIR}/.git)
  execute_process(COMMAND ${GIT_EXECUTABLE} rev-parse --short=12 HEAD
                  WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
                  OUTPUT_VARIABLE _commit OUTPUT_STRIP_TRAILING_WHITESPACE
                  RESULT_VARIABLE _rc ERROR_QUIET)
  if(_rc EQUAL 0 AND _commit)
    set(MESH_GIT_COMMIT ${_commit})
  endif()
  # A new commit (or checkout) re-runs this at the next build, so that `version` never names
  # a commit the binaries were not built from: HEAD, the branch it points to (a loose ref),
  # and packed-refs.
  set(_watch HEAD packed-refs)
  execute_process(COMMAND ${GIT_EXECUTABLE} symbolic-ref -q HEAD
                  WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
                  OUTPUT_VARIABLE _branch OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(_branch)
    list(APPEND _watch ${_branch})
  endif()
  foreach(_ref IN LISTS _watch)
    execute_process(COMMAND ${GIT_EXECUTABLE} rev-parse --git-path ${_ref}
                    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
                    OUTPUT_VARIABLE _path OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    if(_path AND NOT IS_ABSOLUTE ${_path})
      set(_path ${PROJECT_SOURCE_DIR}/${_path})
    endif()
    if(_path AND EXISTS ${_path})
      set_property(DIRECTORY ${PROJECT_SOURCE_DIR} APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_path})
    endif()
  endforeach()
endif()
configure_file(${PROJECT_SOURCE_DIR}/base/version.h.in ${PROJECT_BINARY_DIR}/base/version.h @ONLY)
