#!/usr/bin/env bash
# Lays out the container image's whole file system: the binary and exactly what it needs at run
# time, nothing else (no shell, no package manager). Used by packaging/build.sh (the image built
# offline with buildah) and by the Dockerfile's build stage, so both images have one layout.
#
#   packaging/image/rootfs.sh ROOTFS BINARY
#
# ROOTFS must not exist yet. Run as root, from the repository's top folder (for the config and
# the rules), on a Debian-like system with ca-certificates and tzdata installed. It lays out:
#   /usr/bin/dingtail                      the binary
#   the shared libraries `ldd` names       at the paths it names, with the ELF interpreter
#   /etc/ssl/certs/ca-certificates.crt     for TLS that trusts the system store
#   /usr/share/zoneinfo                    for `timezone:` (without right/, the leap-second zones)
#   /etc/passwd, /etc/group                root and dingtail (10001:10001), no shells
#   /etc/nsswitch.conf                     hosts from /etc/hosts, then DNS
#   /etc/dingtail/dingtail.yaml            the packages' config (valid, sends nowhere)
#   /etc/dingtail/rules.d/                 empty: mount rules here
#   /usr/share/dingtail/rules/             the example rules
#   /var/lib/dingtail/                     state, owned by 10001, mode 0700 (a volume)
#   /tmp                                   1777, for SQLite's temporary files
set -euo pipefail

if [ "$#" -ne 2 ]; then
    echo "usage: $0 ROOTFS BINARY" >&2
    exit 2
fi
rootfs=$1
binary=$2
uid=10001

if [ -e "$rootfs" ]; then
    echo "$0: $rootfs exists" >&2
    exit 1
fi
for needed in /etc/ssl/certs/ca-certificates.crt /usr/share/zoneinfo/Asia/Shanghai \
    packaging/dingtail.yaml rules; do
    if [ ! -e "$needed" ]; then
        echo "$0: $needed is missing (install ca-certificates and tzdata; run from the repository)" >&2
        exit 1
    fi
done

install -d -m 0755 "$rootfs"/{usr/bin,etc/ssl/certs,etc/dingtail/rules.d,usr/share/dingtail/rules,var/lib}
install -m 0755 "$binary" "$rootfs/usr/bin/dingtail"

# Shared libraries, e.g. `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)` and the interpreter
# `/lib64/ld-linux-x86-64.so.2 (0x…)`; the vDSO has no path. Copied as files (not the symlinks
# that lead to them) at the path the loader asks for.
if ldd "$binary" >/dev/null 2>&1; then
    ldd "$binary" | grep -o '/[^ ]*' | sort -u | while read -r lib; do
        install -D -m 0755 "$(readlink -f "$lib")" "$rootfs$lib"
    done
fi

install -m 0644 /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
mkdir -p "$rootfs/usr/share/zoneinfo"
tar -C /usr/share/zoneinfo --exclude=./right -cf - . | tar -C "$rootfs/usr/share/zoneinfo" -xf -

printf 'root:x:0:0:root:/root:/usr/sbin/nologin\ndingtail:x:%s:%s:dingtail:/var/lib/dingtail:/usr/sbin/nologin\n' \
    "$uid" "$uid" > "$rootfs/etc/passwd"
printf 'root:x:0:\ndingtail:x:%s:\n' "$uid" > "$rootfs/etc/group"
printf 'hosts: files dns\n' > "$rootfs/etc/nsswitch.conf"
chmod 0644 "$rootfs"/etc/{passwd,group,nsswitch.conf}

install -m 0644 packaging/dingtail.yaml "$rootfs/etc/dingtail/dingtail.yaml"
install -m 0644 rules/*.yaml "$rootfs/usr/share/dingtail/rules/"

install -d -m 0700 -o "$uid" -g "$uid" "$rootfs/var/lib/dingtail"
install -d -m 1777 "$rootfs/tmp"
