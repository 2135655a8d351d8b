# `cmake --install` and CPack's .deb: the binaries, completions, the man page and the docs.
include(GNUInstallDirs)
install(TARGETS mlops RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}")
install(FILES completions/mlops.bash DESTINATION "${CMAKE_INSTALL_DATADIR}/bash-completion/completions"
        RENAME mlops)
install(FILES completions/_mlops DESTINATION "${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions")
install(FILES completions/mlops.fish DESTINATION "${CMAKE_INSTALL_DATADIR}/fish/vendor_completions.d")
install(FILES "${PROJECT_BINARY_DIR}/mlops.1.gz" DESTINATION "${CMAKE_INSTALL_MANDIR}/man1")
install(FILES README.md DESTINATION "${CMAKE_INSTALL_DOCDIR}")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME mlops)
set(CPACK_PACKAGE_VENDOR "mlops")
set(CPACK_PACKAGE_CONTACT "mlops maintainers <mlops@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "One-binary MLOps control plane: data, runs, registry, serving, rollouts")
set(CPACK_DEBIAN_PACKAGE_SECTION devel)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)  # Depends: computed from the linked libraries...
# ...plus those loaded on demand, which dpkg-shlibdeps cannot see.
string(JOIN ", " CPACK_DEBIAN_PACKAGE_DEPENDS ${MLOPS_LIBCURL_PACKAGE} ${MLOPS_LIBGIT2_PACKAGE})
set(CPACK_STRIP_FILES ON)
include(CPack)
