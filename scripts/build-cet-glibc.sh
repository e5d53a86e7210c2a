#!/bin/sh
# Build glibc 2.41 with --enable-cet from Debian's source package (trixie), the way the
# archive in ../shared/glibc-cet was built, into build/cet-glibc/install/{include,lib}.
# The tests use that tree when the archive is absent. About 30-40 minutes on 2 cores.
#
# Needs: gcc, make, gawk, bison, python3, dpkg-source (dpkg-dev) and network access to
# deb.debian.org. The build dependencies are checked first.
set -eu

VERSION=2.41
OUT="$(cd "$(dirname "$0")/.." && pwd)/build/cet-glibc"
APT="$OUT/apt"

missing=""
for tool in gcc make gawk bison python3 dpkg-source apt-get; do
    command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
if [ -n "$missing" ]; then
    echo "cet-glibc: missing tools:$missing" >&2
    echo "cet-glibc: on Debian: apt-get install gcc make gawk bison python3 dpkg-dev" >&2
    exit 1
fi

mkdir -p "$APT/lists/partial" "$OUT/src"
printf 'deb-src http://deb.debian.org/debian trixie main\n' > "$APT/sources.list"
APTOPTS="-o Dir::Etc::sourcelist=$APT/sources.list -o Dir::Etc::sourceparts=-
         -o Dir::State::Lists=$APT/lists -o APT::Sandbox::User=root"

cd "$OUT/src"
if [ ! -d "glibc-$VERSION" ]; then
    echo "cet-glibc: fetching Debian's glibc source package (trixie)"
    # shellcheck disable=SC2086
    apt-get -q $APTOPTS update
    # shellcheck disable=SC2086
    apt-get -q $APTOPTS source glibc
    src=$(ls -d glibc-2.41*/ | head -n 1)
    [ "$src" = "glibc-$VERSION/" ] || mv "$src" "glibc-$VERSION"
fi

# Debian's upstream tarball has no manual/: drop it from the subdirectory list.
sed -i 's/^\(subdirs *=.*\)\bmanual\b/\1/' "glibc-$VERSION/Makeconfig" || true

rm -rf "$OUT/obj" "$OUT/stage"
mkdir -p "$OUT/obj"
cd "$OUT/obj"
echo "cet-glibc: configure --enable-cet"
"$OUT/src/glibc-$VERSION/configure" --prefix=/opt/glibc-cet --enable-cet --disable-werror \
    CFLAGS="-O2 -fcf-protection=full" >configure.log
echo "cet-glibc: make (this takes a while)"
make -j"$(nproc)" >make.log 2>&1 || { tail -n 40 make.log >&2; exit 1; }
make install DESTDIR="$OUT/stage" >install.log 2>&1
rm -rf "$OUT/install"
mv "$OUT/stage/opt/glibc-cet" "$OUT/install"
# The linker scripts name their members by absolute path: make the tree relocatable.
for script in libc.so libm.so libm.a; do
    f="$OUT/install/lib/$script"
    if [ -f "$f" ] && head -c 200 "$f" | grep -q "GNU ld script"; then
        sed -i 's|/opt/glibc-cet/lib/||g' "$f"
    fi
done
echo "cet-glibc: done: $OUT/install (libc.so.6 and libc.a marked: $(readelf -n "$OUT/install/lib/libc.so.6" | grep -c SHSTK) note)"
