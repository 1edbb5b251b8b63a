# Shared by tools/*.sh: where to build, and the configure+build step.
# shellcheck shell=bash
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${GENLEDGER_BUILD_DIR:-$repo_root/build}"
jobs="${GENLEDGER_JOBS:-$(nproc)}"

# Targets configure_and_build builds; empty means all. Set before calling.
build_targets=()

# configure_and_build BUILD_TYPE [extra cmake args...]
configure_and_build() {
  local type="$1"; shift
  local launcher=()
  # ccache (when installed) lets worktrees and sanitizer builds share compiled objects.
  if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
  cmake -S "$repo_root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="$type" "${launcher[@]}" "$@" >/dev/null
  cmake --build "$build_dir" -j "$jobs" ${build_targets[@]+--target "${build_targets[@]}"}
}
