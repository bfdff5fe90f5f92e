# Warnings as errors for mesh's own targets only; generated protobuf code links without them.
add_library(mesh_warnings INTERFACE)
target_compile_options(mesh_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Werror
  # Designated initializers leave defaulted members out on purpose (gcc 12 warns anyway).
  -Wno-missing-field-initializers)
if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  # A dropped absl::Status is an error (absl marks Status [[nodiscard]]).
  target_compile_options(mesh_warnings INTERFACE -Werror=unused-result)
endif()

# Repo-rooted includes: #include "netplane/nft/batch.h".
add_library(mesh_includes INTERFACE)
target_include_directories(mesh_includes INTERFACE ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})

# mesh_library(NAME SOURCES ... DEPS ...): one static library per module, with our warnings.
function(mesh_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_link_libraries(${name} PUBLIC mesh_includes ${ARG_DEPS} PRIVATE mesh_warnings)
endfunction()
