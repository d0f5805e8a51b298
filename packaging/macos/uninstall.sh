#!/bin/bash
# Remove roomprobe installed by the pkg (Jamf/Kandji: run as a policy script, as root).
#
#   sudo /usr/local/roomprobe/uninstall.sh [--purge]
#
# Stops and deletes the LaunchDaemon and the machine config, removes the program and the link,
# and forgets the package receipt. The run history is kept unless --purge.
set -u
prefix=${ROOMPROBE_PKG_PREFIX:-}
app="$prefix/usr/local/roomprobe/roomprobe"
purge=()
case "${1:-}" in
    --purge) purge=(--purge) ;;
    "") ;;
    *) echo "usage: uninstall.sh [--purge]" >&2; exit 3 ;;
esac
if [ -x "$app" ]; then
    if [ -n "$prefix" ]; then
        "$app" schedule remove --platform macos --dir "$prefix/Library/LaunchDaemons" ${purge[@]+"${purge[@]}"}
    else
        "$app" schedule remove ${purge[@]+"${purge[@]}"}
    fi
fi
rm -f "$prefix/usr/local/bin/roomprobe"
rm -rf "$prefix/usr/local/roomprobe"
if [ -z "$prefix" ]; then
    /usr/sbin/pkgutil --forget com.roomprobe.pkg >/dev/null 2>&1 || true
fi
echo "roomprobe removed${purge[*]:+ (history deleted)}"
