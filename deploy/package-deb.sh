#!/usr/bin/env bash
# Builds gatehouse_VERSION_ARCH.deb with dpkg-deb: the binary, the systemd unit, the logrotate
# file and the quick-start config under /etc/gatehouse (conffiles); postinst creates the system
# user `gatehouse`. `Depends:` is computed from the libraries the binary links (ldd + dpkg -S).
#   deploy/package-deb.sh [BINARY] [OUTDIR]
# BINARY defaults to a release build with the Swift runtime linked statically (built when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-}
out=${2:-.}
if [ -z "$bin" ]; then
    swift build -c release --product gatehouse --static-swift-stdlib --scratch-path .build-release >&2
    bin=.build-release/release/gatehouse
fi
[ -x "$bin" ] || { echo "package-deb: no executable at $bin" >&2; exit 1; }
version=$("$bin" --version | awk '{print $NF}')
arch=$(dpkg --print-architecture)

# Depends: the package of every shared library the binary links; a library that no Debian
# package provides (a Swift runtime from a toolchain folder) is an error: build with
# --static-swift-stdlib.
depends=()
while read -r lib; do
    pkg=$(dpkg -S "$lib" 2>/dev/null | head -1 | cut -d: -f1) || true
    if [ -z "$pkg" ]; then
        real=$(readlink -f "$lib")
        pkg=$(dpkg -S "$real" 2>/dev/null | head -1 | cut -d: -f1) || true
    fi
    if [ -z "$pkg" ]; then
        # merged /usr: dpkg may know the file under the other prefix
        alt=${lib#/usr}; [ "$alt" = "$lib" ] && alt=/usr$lib
        pkg=$(dpkg -S "$alt" 2>/dev/null | head -1 | cut -d: -f1) || true
    fi
    [ -n "$pkg" ] || { echo "package-deb: no Debian package provides $lib (linked by $bin)" >&2; exit 1; }
    depends+=("$pkg")
done < <(ldd "$bin" | awk '/=> \// {print $3} /^\t\/[^ ]+ \(/ {print $1}')
depends_line=$(printf '%s\n' "${depends[@]}" ca-certificates adduser | sort -u | paste -sd, | sed 's/,/, /g')

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
install -D -m 0755 "$bin" "$root/usr/bin/gatehouse"
install -D -m 0644 deploy/gatehouse.service "$root/lib/systemd/system/gatehouse.service"
sed -i 's#/usr/local/bin/gatehouse#/usr/bin/gatehouse#g' "$root/lib/systemd/system/gatehouse.service"
install -D -m 0644 deploy/gatehouse.logrotate "$root/etc/logrotate.d/gatehouse"
install -D -m 0640 deploy/examples/quickstart.yaml "$root/etc/gatehouse/gatehouse.yaml"
install -D -m 0640 deploy/examples/users.htpasswd "$root/etc/gatehouse/users.htpasswd"
install -D -m 0640 deploy/examples/secrets/demo-hs256.key "$root/etc/gatehouse/secrets/demo-hs256.key"
install -d "$root/usr/share/doc/gatehouse"
install -m 0644 README.md "$root/usr/share/doc/gatehouse/README.md"
mkdir -p "$root/DEBIAN"
( cd "$root" && find etc -type f | sed 's#^#/#' | sort ) >"$root/DEBIAN/conffiles"
size=$(du -sk "$root" --exclude=DEBIAN | cut -f1)
cat >"$root/DEBIAN/control" <<CONTROL
Package: gatehouse
Version: $version
Architecture: $arch
Maintainer: gatehouse developers <gatehouse@localhost>
Installed-Size: $size
Depends: $depends_line
Section: net
Priority: optional
Description: authentication gateway in front of HTTP APIs
 A reverse proxy that checks Bearer JWTs and session cookies, answers CORS
 preflights, enforces per-route role policies and forwards what is allowed.
 The shipped /etc/gatehouse config is the quick-start demo: replace its
 secret and users file before enabling the service.
CONTROL
cat >"$root/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
    if ! getent passwd gatehouse >/dev/null; then
        adduser --system --group --no-create-home --home /nonexistent --shell /usr/sbin/nologin gatehouse >/dev/null
    fi
    chown -R root:gatehouse /etc/gatehouse
    chmod 0750 /etc/gatehouse /etc/gatehouse/secrets
    install -d -o gatehouse -g gatehouse -m 0750 /var/log/gatehouse
    if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null || true; fi
fi
exit 0
POSTINST
cat >"$root/DEBIAN/prerm" <<'PRERM'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
    systemctl stop gatehouse.service >/dev/null 2>&1 || true
fi
exit 0
PRERM
cat >"$root/DEBIAN/postrm" <<'POSTRM'
#!/bin/sh
set -e
if [ "$1" = purge ]; then
    rm -rf /var/log/gatehouse
fi
if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null 2>&1 || true; fi
exit 0
POSTRM
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"
mkdir -p "$out"
deb="$out/gatehouse_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zgzip --build "$root" "$deb" >/dev/null
echo "$deb"
