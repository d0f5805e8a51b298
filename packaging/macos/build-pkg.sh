#!/bin/bash
# Build roomprobe's macOS installer package (macOS only: pkgbuild and productbuild ship with Xcode's
# command line tools). Called by packaging/build_release.py on the macOS runner.
#
#   packaging/macos/build-pkg.sh ONEDIR_BUILD VERSION OUT.pkg
#
# The payload goes to /usr/local/roomprobe (the one-folder build: nothing unpacked on each run),
# with /usr/local/bin/roomprobe linked to it by postinstall. ROOMPROBE_INSTALLER_IDENTITY
# ("Developer ID Installer: ...") signs the product; ROOMPROBE_NOTARY_PROFILE (a notarytool
# keychain profile) notarises and staples it. Without them the pkg is built unsigned, and says so.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# -eq 3 ] || { echo "usage: build-pkg.sh ONEDIR_BUILD VERSION OUT.pkg" >&2; exit 3; }
payload=$1 version=$2 out=$3
[ -x "$payload/roomprobe" ] || { echo "build-pkg: $payload/roomprobe missing: build the one-folder payload first" >&2; exit 3; }
work=$(mktemp -d "${TMPDIR:-/tmp}/roomprobe-pkg.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/root/usr/local"
cp -R "$payload" "$work/root/usr/local/roomprobe"
cp "$here/uninstall.sh" "$work/root/usr/local/roomprobe/uninstall.sh"
pkgbuild --root "$work/root" --identifier com.roomprobe.pkg --version "$version" \
    --scripts "$here/scripts" --install-location / "$work/roomprobe-component.pkg"
sed "s/@VERSION@/$version/g" "$here/distribution.xml" > "$work/distribution.xml"
sign=()
if [ -n "${ROOMPROBE_INSTALLER_IDENTITY:-}" ]; then
    sign=(--sign "$ROOMPROBE_INSTALLER_IDENTITY" --timestamp)
else
    echo "signing skipped: no ROOMPROBE_INSTALLER_IDENTITY (unsigned pkg)"
fi
productbuild --distribution "$work/distribution.xml" --package-path "$work" ${sign[@]+"${sign[@]}"} "$out"
if [ -n "${ROOMPROBE_NOTARY_PROFILE:-}" ] && [ ${#sign[@]} -gt 0 ]; then
    xcrun notarytool submit "$out" --keychain-profile "$ROOMPROBE_NOTARY_PROFILE" --wait
    xcrun stapler staple "$out"
else
    echo "notarisation skipped: no ROOMPROBE_NOTARY_PROFILE or no signature"
fi
echo "built $out"
