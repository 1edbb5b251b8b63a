#!/usr/bin/env bash
# Builds the Debian package from a build directory (cpack -G DEB) and checks it: its name, its
# control fields, that it holds the three binaries, the systemd unit, /etc/default/genledger (a
# conffile) and the docs; that the unit verifies (systemd-analyze, where available); and that the
# extracted binaries run (--version). Usage: tests/package_test.sh BUILD_DIR
set -euo pipefail
build_dir=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
src_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "package_test: FAIL: $*" >&2; exit 1; }

version=$(sed -n 's/^project(genledger VERSION \([0-9.]*\).*/\1/p' "$src_dir/CMakeLists.txt")
[ -n "$version" ] || fail "no version in CMakeLists.txt"
arch=$(dpkg --print-architecture)

# A package directory of its own, so parallel runs do not share CPack's staging tree.
(cd "$build_dir" && cpack -G DEB -B "$work/out" >"$work/cpack.log" 2>&1) || { cat "$work/cpack.log" >&2; fail "cpack"; }
deb="$work/out/genledger_${version}_${arch}.deb"
[ -f "$deb" ] || { ls "$work/out" >&2; fail "expected $(basename "$deb")"; }

dpkg-deb --info "$deb" >"$work/info"
grep -q "^ Package: genledger$" "$work/info" || fail "Package field"
grep -q "^ Version: ${version}$" "$work/info" || fail "Version field"
grep -q "^ Architecture: ${arch}$" "$work/info" || fail "Architecture field"
grep -q "^ Depends: .*libc6" "$work/info" || fail "Depends (from dpkg-shlibdeps) missing libc6"
dpkg-deb --ctrl-tarfile "$deb" | tar -t >"$work/control_files"
for f in ./postinst ./postrm ./conffiles; do grep -qx "$f" "$work/control_files" || fail "control file $f"; done
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | grep -qx /etc/default/genledger || fail "conffiles"

dpkg-deb --contents "$deb" | awk '{print $NF}' >"$work/contents"
for f in ./usr/bin/genledger ./usr/bin/genledger-inspect ./usr/bin/genledger-load \
         ./lib/systemd/system/genledger.service ./etc/default/genledger \
         ./usr/share/doc/genledger/README.md ./usr/share/doc/genledger/api.md \
         ./usr/share/doc/genledger/durability.md; do
  grep -qx "$f" "$work/contents" || fail "missing $f"
done
# Nothing from the build tree besides what is listed (no tests, benchmarks or fuzzers).
if grep -E '_test$|_bench$|_fuzz$' "$work/contents"; then fail "test or benchmark programs packaged"; fi

dpkg-deb -x "$deb" "$work/root"
unit="$work/root/lib/systemd/system/genledger.service"
for key in DynamicUser=yes StateDirectory=genledger LimitNOFILE= 'Environment=GLIBC_TUNABLES=' \
           EnvironmentFile=-/etc/default/genledger NoNewPrivileges=yes ProtectSystem=strict; do
  grep -q "^$key" "$unit" || fail "unit lacks $key"
done
for b in genledger genledger-inspect genledger-load; do
  out=$("$work/root/usr/bin/$b" --version)
  case "$out" in *"$version"*) ;; *) fail "$b --version printed '$out'" ;; esac
done

if command -v systemd-analyze >/dev/null 2>&1; then
  # The packaged unit with ExecStart pointed at the extracted binary (verify checks that it
  # exists; genledger is not installed on this machine), every other line as shipped.
  mkdir -p "$work/unit"
  sed "s|^ExecStart=/usr/bin/genledger |ExecStart=$work/root/usr/bin/genledger |" "$unit" >"$work/unit/genledger.service"
  grep -q "^ExecStart=$work/root/usr/bin/genledger " "$work/unit/genledger.service" || fail "ExecStart not as expected"
  if ! systemd-analyze verify "$work/unit/genledger.service" >"$work/verify" 2>&1; then
    cat "$work/verify" >&2
    fail "systemd-analyze verify"
  fi
  if [ -s "$work/verify" ]; then echo "package_test: systemd-analyze said:"; cat "$work/verify"; fi
else
  echo "package_test: systemd-analyze not available; unit not verified"
fi
echo "package_test: ok ($(basename "$deb"), $(wc -l <"$work/contents") entries)"
