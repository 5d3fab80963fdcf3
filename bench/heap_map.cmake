# SPDX-License-Identifier: MIT
# The heap and map benchmarks (included from bench/CMakeLists.txt). Their
# baselines are optional: LMDB (liblmdb-dev), Redis (libhiredis-dev and
# redis-server at run time) and Boost.Interprocess (libboost-dev, through
# the C++ helper shmkit-bench-boost, the only C++ in the tree). Missing
# ones are reported as skipped when the benchmark runs.
shmkit_bench(heap bench_heap.c)
shmkit_bench(map bench_map.c)

find_path(SHMKIT_LMDB_INCLUDE lmdb.h)
find_library(SHMKIT_LMDB_LIB lmdb)
if(SHMKIT_LMDB_INCLUDE AND SHMKIT_LMDB_LIB)
  target_compile_definitions(shmkit-bench-map PRIVATE SHMKIT_BENCH_LMDB)
  target_include_directories(shmkit-bench-map PRIVATE ${SHMKIT_LMDB_INCLUDE})
  target_link_libraries(shmkit-bench-map PRIVATE ${SHMKIT_LMDB_LIB})
endif()
find_path(SHMKIT_HIREDIS_INCLUDE hiredis/hiredis.h)
find_library(SHMKIT_HIREDIS_LIB hiredis)
if(SHMKIT_HIREDIS_INCLUDE AND SHMKIT_HIREDIS_LIB)
  target_compile_definitions(shmkit-bench-map PRIVATE SHMKIT_BENCH_HIREDIS)
  target_include_directories(shmkit-bench-map PRIVATE
                             ${SHMKIT_HIREDIS_INCLUDE})
  target_link_libraries(shmkit-bench-map PRIVATE ${SHMKIT_HIREDIS_LIB})
endif()

include(CheckLanguage)
check_language(CXX)
find_path(SHMKIT_BOOST_IPC_INCLUDE
          boost/interprocess/managed_shared_memory.hpp)
if(CMAKE_CXX_COMPILER AND SHMKIT_BOOST_IPC_INCLUDE)
  enable_language(CXX)
  add_executable(shmkit-bench-boost bench_boost.cpp)
  set_target_properties(shmkit-bench-boost PROPERTIES CXX_STANDARD 11
                        CXX_STANDARD_REQUIRED ON)
  target_include_directories(shmkit-bench-boost PRIVATE
                             ${SHMKIT_BOOST_IPC_INCLUDE})
  target_link_libraries(shmkit-bench-boost PRIVATE Threads::Threads rt)
  # Built with the benchmarks that run it.
  add_dependencies(shmkit-bench-heap shmkit-bench-boost)
  add_dependencies(shmkit-bench-map shmkit-bench-boost)
else()
  message(STATUS "shmkit-bench-boost: skipped (no C++ compiler or no "
                 "Boost.Interprocess headers)")
endif()
