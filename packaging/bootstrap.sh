#!/usr/bin/env bash
# From a fresh Debian 12 clone to a working mlops. Each step installs what it needs first, so
# every command works on its own on a new machine.
#
#   packaging/bootstrap.sh demo      install packages, build, install, run the main job (default)
#   packaging/bootstrap.sh test      install packages, build, run the whole test suite
#   packaging/bootstrap.sh sanitize  build with ASan+UBSan in build-asan/, run the unit tests
#                                    and the CUDA kernels' emulation
#   packaging/bootstrap.sh deps|build|install   one step alone
#
# Environment: BUILD_DIR (default build), PREFIX (default /usr/local for root, else ~/.local),
# MLOPS_CUDA (AUTO, ON or OFF; AUTO builds the CUDA paths when nvcc exists).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build}
if [ "$(id -u)" = 0 ]; then PREFIX=${PREFIX:-/usr/local}; else PREFIX=${PREFIX:-$HOME/.local}; fi

# The toolchain of shared/TOOLCHAIN.md, plus a compiler (a minimal Debian has none).
BUILD_PACKAGES=(g++ cmake ninja-build pkg-config libcli11-dev libcurl4-openssl-dev libsqlite3-dev
  nlohmann-json3-dev libssl-dev libgit2-dev libspdlog-dev doctest-dev
  libonnx-dev libprotobuf-dev protobuf-compiler libopenblas-dev)
# What the tests use as oracles and tools: pytest and jsonschema for the CLI suite, hyperfine and
# sqlite3 for the start-up benchmark, zsh and fish to check completions, dpkg-dev for the .deb,
# git for the repositories that lineage is checked against, numpy and onnx to make ONNX fixtures,
# ONNX's backend test cases for the runtime's conformance run, curl to call served models as users
# do, wrk and nginx for the serving benchmark (nginx is the HTTP floor it compares against).
TEST_PACKAGES=(python3-pytest python3-jsonschema hyperfine sqlite3 zsh fish dpkg-dev file util-linux git
  python3-numpy python3-onnx libonnx-testdata curl wrk nginx)

say() { printf 'bootstrap: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else say "need root to run: $*"; exit 1
  fi
}

install_packages() {
  local missing=() package
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]}"
  local apt=(env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends)
  # A fresh machine may have no package lists yet: update only when the first try fails.
  as_root "${apt[@]}" "${missing[@]}" || { as_root apt-get update && as_root "${apt[@]}" "${missing[@]}"; }
}

build() {
  local dir=$1; shift
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} \
    -DMLOPS_CUDA="${MLOPS_CUDA:-AUTO}" "$@" >/dev/null
  cmake --build "$dir"
}

step=${1:-demo}
case "$step" in
  deps)
    install_packages "${BUILD_PACKAGES[@]}" ;;
  build)
    install_packages "${BUILD_PACKAGES[@]}"
    build "$BUILD_DIR" ;;
  install)
    install_packages "${BUILD_PACKAGES[@]}"
    build "$BUILD_DIR"
    cmake --install "$BUILD_DIR" --prefix "$PREFIX" >/dev/null
    say "installed mlops into $PREFIX/bin" ;;
  demo)
    "$0" install
    # The main job makes a git repository (lineage), trains with numpy, exporting ONNX, and calls
    # the served model with curl.
    install_packages git python3-numpy python3-onnx curl
    MLOPS="$PREFIX/bin/mlops" packaging/demo/main_job.sh ;;
  test)
    install_packages "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
    build "$BUILD_DIR"
    ctest --test-dir "$BUILD_DIR" --output-on-failure ;;
  sanitize)
    # The CUDA emulation's cases need ONNX's node tests and python3-onnx to make its large ones.
    install_packages "${BUILD_PACKAGES[@]}" python3-numpy python3-onnx libonnx-testdata
    # CUDA stays off: nvcc's device code gains nothing from host sanitizers. The CUDA sources
    # still run, compiled as host C++ by the emulation (tests/cuda_emulation), sanitized.
    BUILD_TYPE=Debug MLOPS_CUDA=OFF build "${BUILD_DIR}-asan" -DMLOPS_SANITIZE=ON
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
      ctest --test-dir "${BUILD_DIR}-asan" --output-on-failure -L "unit|cuda_emulation" ;;
  *)
    sed -n '2,13p' "$0" >&2
    exit 2 ;;
esac
