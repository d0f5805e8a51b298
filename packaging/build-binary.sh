#!/bin/sh
# Build roomprobe for this OS with PyInstaller: the single-file binary and/or the one-folder build.
#
#   packaging/build-binary.sh [OUTDIR]      (default: dist/)
#
# ROOMPROBE_LAYOUT=onefile (default) writes OUTDIR/roomprobe[.exe]; =onedir writes the installers'
# payload OUTDIR/onedir/roomprobe/ (roomprobe[.exe] beside _internal/); =both builds the two.
#
# On Windows it also builds roomprobe-w.exe, the windowless twin for scheduled runs
# (ROOMPROBE_WINDOWED=1 builds it elsewhere too, =0 skips it).
#
# Needs: the Python that has roomprobe's dependencies and PyInstaller ($PYTHON, default
# python3; e.g. PYTHON=.venv/bin/python after '.venv/bin/pip install pyinstaller').
# The package is staged from this repo exactly as it installs (probes/ becomes roomprobe/probes),
# so the binary is built from the tree, whatever roomprobe is installed.
set -eu
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
OUT=$(mkdir -p "${1:-$REPO/dist}" && cd "${1:-$REPO/dist}" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/roomprobe-build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT INT TERM

"$PY" -m PyInstaller --version >/dev/null 2>&1 || {
    echo "build-binary: PyInstaller is not installed for $PY; run: $PY -m pip install pyinstaller" >&2
    exit 3
}
mkdir -p "$WORK/stage"
cp -R "$REPO/roomprobe" "$WORK/stage/roomprobe"
rm -rf "$WORK/stage/roomprobe/probes"
cp -R "$REPO/probes" "$WORK/stage/roomprobe/probes"
cp -R "$REPO/packaging/schedule" "$WORK/stage/roomprobe/schedule_templates"
find "$WORK/stage" -name __pycache__ -type d -prune -exec rm -rf {} +

LAYOUT=${ROOMPROBE_LAYOUT:-onefile}
case "$LAYOUT" in onefile) LAYOUTS=onefile ;; onedir) LAYOUTS=onedir ;; both) LAYOUTS="onefile onedir" ;;
    *) echo "build-binary: ROOMPROBE_LAYOUT=$LAYOUT: choose onefile, onedir or both" >&2; exit 3 ;;
esac
for layout in $LAYOUTS; do
    dist="$OUT"; [ "$layout" = onedir ] && dist="$OUT/onedir"
    ROOMPROBE_STAGE="$WORK/stage" ROOMPROBE_LAYOUT="$layout" "$PY" -m PyInstaller --noconfirm --clean \
        --log-level WARN --distpath "$dist" --workpath "$WORK/build-$layout" \
        "$REPO/packaging/pyinstaller/roomprobe.spec"
    exe="$dist/roomprobe"; [ "$layout" = onedir ] && exe="$dist/roomprobe/roomprobe"
    "$exe" --version
    echo "built $exe ($layout)"
    # The windowless twin (Windows by default, ROOMPROBE_WINDOWED=1 elsewhere): it has no console
    # to print --version to, so only its presence is checked here.
    for w in "$exe-w" "$exe-w.exe"; do
        if [ -f "$w" ]; then echo "built $w (windowless, for scheduled runs)"; fi
    done
done
