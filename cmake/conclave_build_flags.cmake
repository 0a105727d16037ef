option(CONCLAVE_WARNINGS_AS_ERRORS "Treat warnings as errors" OFF)
set(CONCLAVE_SANITIZE "" CACHE STRING "Sanitizers: 'address;undefined' or 'thread'")

add_library(conclave_build_flags INTERFACE)
target_compile_features(conclave_build_flags INTERFACE cxx_std_20)
target_compile_options(conclave_build_flags INTERFACE
    -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast
    -Woverloaded-virtual -Wimplicit-fallthrough
    $<$<BOOL:${CONCLAVE_WARNINGS_AS_ERRORS}>:-Werror>)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # GCC 12 reports Asio's awaitable frame operator delete as mismatched with its own
    # operator new (a false positive on every coroutine that holds a frame across a co_await).
    target_compile_options(conclave_build_flags INTERFACE -Wno-mismatched-new-delete)
    # GCC 12 warns about members left out of a designated initializer even when they have
    # default member initializers, which is the point of writing {.name = …}.
    target_compile_options(conclave_build_flags INTERFACE -Wno-missing-field-initializers)
endif()
if(CONCLAVE_SANITIZE)
    if("thread" IN_LIST CONCLAVE_SANITIZE AND "address" IN_LIST CONCLAVE_SANITIZE)
        message(FATAL_ERROR "TSan and ASan cannot be combined")
    endif()
    list(JOIN CONCLAVE_SANITIZE "," _san)
    target_compile_options(conclave_build_flags INTERFACE
        -fsanitize=${_san} -fno-sanitize-recover=all -fno-omit-frame-pointer)
    target_link_options(conclave_build_flags INTERFACE -fsanitize=${_san})
    if("thread" IN_LIST CONCLAVE_SANITIZE AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
        # GCC 12 warns that std::atomic_thread_fence (used by Asio) is not instrumented;
        # under -Werror that breaks the TSan build.
        target_compile_options(conclave_build_flags INTERFACE -Wno-tsan)
    endif()
endif()

# conclave_component(<name> SOURCES ... DEPS ...) -> target conclave_<name>, alias conclave::<name>
function(conclave_component name)
    cmake_parse_arguments(arg "" "" "SOURCES;DEPS" ${ARGN})
    add_library(conclave_${name} ${arg_SOURCES})
    add_library(conclave::${name} ALIAS conclave_${name})
    target_include_directories(conclave_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
    target_link_libraries(conclave_${name} PUBLIC ${arg_DEPS} PRIVATE conclave_build_flags)
    set_target_properties(conclave_${name} PROPERTIES CXX_EXTENSIONS OFF)
endfunction()
