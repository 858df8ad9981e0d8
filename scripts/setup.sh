#!/usr/bin/env bash
# Installs the system packages a fresh Debian/Ubuntu machine lacks, asking dpkg (not the file system) what is there.
#   bash scripts/setup.sh          build prerequisites: a C/C++ toolchain, cmake, libclang-dev (sealy builds SEAL
#                                  from source and bindgen loads libclang.so), pkg-config
#   bash scripts/setup.sh test     the above plus what the tests start or use: redis-server, haproxy, iproute2
#                                  (network namespaces, tc netem), openssl, python3 + pip (fetch-data.sh)
# Idempotent: prints nothing and touches nothing when every package is present. Needs root or sudo to install.
set -euo pipefail

build_pkgs=(gcc g++ make cmake libclang-dev pkg-config)
test_pkgs=(redis-server haproxy iproute2 openssl python3 python3-pip)

want=("${build_pkgs[@]}")
case "${1:-build}" in
  build) ;;
  test) want+=("${test_pkgs[@]}") ;;
  *) echo "setup: unknown argument '$1' (use: setup.sh [build|test])" >&2; exit 2 ;;
esac

# The probe bindgen's clang-sys really needs: a libclang.so / libclang-N.so (libclang-cpp.so is another library).
have_libclang() {
  compgen -G '/usr/lib/llvm-*/lib/libclang.so*' >/dev/null ||
    compgen -G '/usr/lib/*-linux-gnu/libclang-[0-9]*.so*' >/dev/null ||
    compgen -G '/usr/lib/*-linux-gnu/libclang.so*' >/dev/null
}

installed() {
  local pkg=$1
  if command -v dpkg-query >/dev/null 2>&1; then
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" = "installed" ]
    return
  fi
  # No dpkg (not Debian): look for what each package provides.
  case "$pkg" in
    libclang-dev) have_libclang ;;
    gcc) command -v cc >/dev/null 2>&1 ;;
    g++) command -v c++ >/dev/null 2>&1 ;;
    redis-server) command -v redis-server >/dev/null 2>&1 ;;
    iproute2) command -v ip >/dev/null 2>&1 && command -v tc >/dev/null 2>&1 ;;
    python3-pip) python3 -m pip --version >/dev/null 2>&1 ;;
    pkg-config) command -v pkg-config >/dev/null 2>&1 ;;
    *) command -v "$pkg" >/dev/null 2>&1 ;;
  esac
}

need=()
for pkg in "${want[@]}"; do
  # A pip that already works (pyenv, venv) serves fetch-data.sh as well as Debian's.
  if [ "$pkg" = python3-pip ] && python3 -m pip --version >/dev/null 2>&1; then continue; fi
  installed "$pkg" || need+=("$pkg")
done

if [ ${#need[@]} -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || {
    echo "setup: missing ${need[*]} and no apt-get here; install them with your package manager" >&2
    exit 1
  }
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "setup: need root or sudo to install ${need[*]}" >&2; exit 1; }
    SUDO="sudo"
  fi
  echo "setup: installing ${need[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # Services the tests start themselves must not keep running system-wide after installation.
  for svc in redis-server haproxy; do
    if [[ " ${need[*]} " == *" $svc "* ]]; then
      $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || $SUDO service "$svc" stop >/dev/null 2>&1 || true
    fi
  done
fi

if [[ " ${want[*]} " == *" libclang-dev "* ]] && ! have_libclang; then
  echo "setup: libclang-dev is installed but no libclang.so was found under /usr/lib/llvm-*/lib;" \
    "set LIBCLANG_PATH to the directory holding libclang.so" >&2
fi
command -v cargo >/dev/null 2>&1 || { echo "setup: cargo not found; install Rust via https://rustup.rs" >&2; exit 1; }
