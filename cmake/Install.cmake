# cmake --install: headers, the library, a CMake package (find_package(vidkv) -> vidkv::vidkv) and
# a pkg-config file. The tools install beside them (tools/CMakeLists.txt).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS vidkv EXPORT vidkvTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/runtime/include/vidkv ${PROJECT_SOURCE_DIR}/cache/include/vidkv
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${CMAKE_BINARY_DIR}/generated/vidkv/version.hpp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/vidkv)

set(config_dir ${CMAKE_INSTALL_LIBDIR}/cmake/vidkv)
install(EXPORT vidkvTargets NAMESPACE vidkv:: DESTINATION ${config_dir})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/vidkvConfig.cmake.in
                              ${CMAKE_BINARY_DIR}/vidkvConfig.cmake INSTALL_DESTINATION ${config_dir})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/vidkvConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/vidkvConfig.cmake ${CMAKE_BINARY_DIR}/vidkvConfigVersion.cmake
        DESTINATION ${config_dir})

file(RELATIVE_PATH VIDKV_PC_TO_PREFIX "/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/")
configure_file(${PROJECT_SOURCE_DIR}/cmake/vidkv.pc.in ${CMAKE_BINARY_DIR}/vidkv.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/vidkv.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
