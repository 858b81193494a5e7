#!/usr/bin/env bash
# Builds dingtail's .deb and .rpm, and on request its container image, from one release build.
#
#   packaging/build.sh [deb] [rpm] [image]        (default: deb rpm)
#
# Each package is a file tree staged here and packed by the distribution's own tool (dpkg-deb,
# rpmbuild), so both install the same files at the same paths; the man pages and completions
# come from the binary itself (`dingtail generate`), so they describe exactly what is shipped.
# The image (FROM scratch) is assembled by packaging/image/rootfs.sh and built with buildah
# without a registry.
#
# Needs: cargo, strip, gzip; dpkg-deb and dpkg-shlibdeps (dpkg-dev) for deb; rpmbuild (Debian's
# `rpm`) for rpm; buildah, ca-certificates and tzdata for image; root for image (file owners).
#
# Environment:
#   DINGTAIL_BINARY      package this release binary instead of running cargo build --release
#   OUT                  where the packages go (default target/packages)
#   PKG_RELEASE          the distribution release of the version (default 1)
#   DINGTAIL_MAINTAINER  the packages' maintainer, "Name <address>"
#   DINGTAIL_IMAGE_STORE containers storage for the image (vfs), instead of buildah's default
#   SOURCE_DATE_EPOCH    timestamp of every packaged file (default: the last commit's time)
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    targets=(deb rpm)
fi
for target in "${targets[@]}"; do
    case "$target" in
        deb | rpm | image) ;;
        *)
            echo "usage: $0 [deb] [rpm] [image]" >&2
            exit 2
            ;;
    esac
done

out=${OUT:-target/packages}
release=${PKG_RELEASE:-1}
maintainer=${DINGTAIL_MAINTAINER:-dingtail maintainers <maintainers@dingtail.invalid>}
homepage=https://github.com/dingtail/dingtail
summary="Watches log files and pushes the lines that matter into DingTalk group chats"
version=$(cargo pkgid | sed 's/.*[#@]//')

if [ -n "${DINGTAIL_BINARY:-}" ]; then
    binary=$DINGTAIL_BINARY
else
    cargo build --release --locked --bin dingtail
    binary=target/release/dingtail
fi
# Exported only now: C build scripts (cc) watch it, and a new value would rebuild them.
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
fi
export SOURCE_DATE_EPOCH
# `dingtail 0.1.0 (1a2b3c4)` → 1a2b3c4
commit=$("$binary" --version | sed -n 's/^dingtail [^ ]* (\(.*\))$/\1/p')

work=$top/target/packaging
rm -rf "$work"
mkdir -p "$work" "$out"
out=$(cd "$out" && pwd)

# The stripped binary every package and the image get, and what it generates from itself.
install -D -m 0755 "$binary" "$work/dingtail"
strip --strip-unneeded "$work/dingtail"
"$work/dingtail" generate man "$work/man"
for shell in bash zsh fish; do
    "$work/dingtail" generate completions "$shell" > "$work/completions.$shell"
done

# The unit as packaged: ExecStart and friends at /usr/bin, and a header for the package's
# reader instead of the repository's install-by-hand notes.
packaged_unit() {
    cat <<'EOF'
# dingtail: tails log files and pushes the lines that matter into DingTalk group chats.
# Installed by the dingtail package, not enabled. Configure /etc/dingtail/dingtail.yaml
# (see its top and `man dingtail`), then:
#   dingtail check && systemctl enable --now dingtail
# Local changes: `systemctl edit dingtail` (a drop-in that upgrades keep).

EOF
    sed -n '/^\[Unit\]/,$p' systemd/dingtail.service \
        | sed -E '/^Exec/ s#/usr/local/bin/dingtail#/usr/bin/dingtail#g'
}

# stage ROOT ZSH_DIR: the installed file tree of a package (ZSH_DIR differs by distribution).
stage() {
    local root=$1 zsh_dir=$2
    install -D -m 0755 "$work/dingtail" "$root/usr/bin/dingtail"
    install -d -m 0755 "$root/usr/lib/systemd/system"
    packaged_unit > "$root/usr/lib/systemd/system/dingtail.service"
    install -D -m 0644 packaging/dingtail.yaml "$root/etc/dingtail/dingtail.yaml"
    install -d -m 0755 "$root/etc/dingtail/rules.d"
    install -d -m 0755 "$root/usr/share/dingtail/rules"
    install -m 0644 rules/*.yaml "$root/usr/share/dingtail/rules/"
    install -d -m 0755 "$root/usr/share/man/man1"
    for page in "$work"/man/*.1; do
        gzip -9n < "$page" > "$root/usr/share/man/man1/$(basename "$page").gz"
    done
    install -D -m 0644 "$work/completions.bash" "$root/usr/share/bash-completion/completions/dingtail"
    install -D -m 0644 "$work/completions.zsh" "$root/$zsh_dir/_dingtail"
    install -D -m 0644 "$work/completions.fish" "$root/usr/share/fish/vendor_completions.d/dingtail.fish"
    install -D -m 0644 README.md "$root/usr/share/doc/dingtail/README.md"
    chmod 0644 "$root/usr/lib/systemd/system/dingtail.service"
    find "$root" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +
}

build_deb() {
    # Staged where dpkg-shlibdeps looks for a package's files (debian/PACKAGE).
    local root=$work/deb/debian/dingtail arch depends size deb
    arch=$(dpkg --print-architecture)
    stage "$root" usr/share/zsh/vendor-completions
    cat > "$root/usr/share/doc/dingtail/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: dingtail
Source: $homepage

Files: *
Copyright: $(date -u -d "@$SOURCE_DATE_EPOCH" +%Y) the dingtail authors
License: MIT or Apache-2.0
 dingtail is licensed under the MIT license or the Apache License 2.0, at your option.
 The Apache License 2.0 is in /usr/share/common-licenses/Apache-2.0.
EOF
    # Debian wants a changelog in every non-native package: one entry naming the build.
    gzip -9n > "$root/usr/share/doc/dingtail/changelog.Debian.gz" <<EOF
dingtail ($version-$release) unstable; urgency=medium

  * dingtail $version, built from commit $commit by packaging/build.sh.

 -- $maintainer  $(date -u -R -d "@$SOURCE_DATE_EPOCH")
EOF
    touch --date="@$SOURCE_DATE_EPOCH" "$root/usr/share/doc/dingtail/changelog.Debian.gz" \
        "$root/usr/share/doc/dingtail/copyright" "$root/usr/share/doc/dingtail"
    # Depends from the binary's own symbol versions (libc6 (>= 2.34), ...), as debhelper does
    # (dpkg-shlibdeps finds the package's root by its DEBIAN folder).
    install -d -m 0755 "$root/DEBIAN"
    printf 'Source: dingtail\n\nPackage: dingtail\nArchitecture: any\n' > "$work/deb/debian/control"
    depends=$(cd "$work/deb" && dpkg-shlibdeps -O debian/dingtail/usr/bin/dingtail | sed -n 's/^shlibs:Depends=//p')
    size=$(du -k -s --apparent-size --exclude=DEBIAN "$root" | cut -f1)
    install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$root/DEBIAN/"
    (cd "$root" && find etc -type f | sort | sed 's#^#/#') > "$root/DEBIAN/conffiles"
    (cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | sort | xargs md5sum) \
        > "$root/DEBIAN/md5sums"
    cat > "$root/DEBIAN/control" <<EOF
Package: dingtail
Version: $version-$release
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $size
Depends: $depends
Suggests: bash-completion
Section: admin
Priority: optional
Homepage: $homepage
Description: $summary
 dingtail tails log files, matches YAML rules (regexes with named captures,
 severity, which robot, whom to @) and pushes the lines that matter into
 DingTalk group chats through group robots: batched into readable summaries
 with exact counts, within DingTalk's rate limit, and stored durably until
 DingTalk confirms them. It runs as a hardened systemd service.
 .
 This package installs the daemon and its systemd unit (not enabled: configure
 /etc/dingtail/dingtail.yaml first), example rules in /usr/share/dingtail/rules,
 man pages and bash, zsh and fish completions.
EOF
    deb=$out/dingtail_${version}-${release}_${arch}.deb
    dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
    echo "$deb"
}

build_rpm() {
    local root=$work/rpm rpm
    stage "$root" usr/share/zsh/site-functions
    rpmbuild -bb --quiet \
        --define "stage $root" \
        --define "pkg_version $version" \
        --define "pkg_release $release" \
        --define "packager $maintainer" \
        --define "_topdir $work/rpmbuild" \
        --define "_rpmdir $out" \
        --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
        --define "use_source_date_epoch_as_buildtime 1" \
        --define "clamp_mtime_to_source_date_epoch 1" \
        --define "_buildhost reproducible" \
        --define "_binary_payload w6.xzdio" \
        packaging/rpm/dingtail.spec
    rpm=$(ls "$out"/dingtail-"$version"-"$release".*.rpm)
    echo "$rpm"
}

build_image() {
    local context=$work/image tag=localhost/dingtail:$version arch archive
    local store=()
    if [ -n "${DINGTAIL_IMAGE_STORE:-}" ]; then
        store=(--root "$DINGTAIL_IMAGE_STORE/root" --runroot "$DINGTAIL_IMAGE_STORE/run" --storage-driver vfs)
    fi
    arch=$(dpkg --print-architecture 2>/dev/null || uname -m)
    mkdir -p "$context"
    packaging/image/rootfs.sh "$context/rootfs" "$work/dingtail"
    find "$context/rootfs" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +
    tar -C "$context/rootfs" --sort=name --numeric-owner -cf "$context/rootfs.tar" .
    buildah "${store[@]}" build --quiet --layers=false --timestamp "$SOURCE_DATE_EPOCH" \
        --build-arg "DINGTAIL_VERSION=$version" --build-arg "DINGTAIL_COMMIT=$commit" \
        -f packaging/image/Containerfile -t "$tag" "$context" >/dev/null
    archive=$out/dingtail-image_${version}_${arch}.tar
    rm -f "$archive"
    buildah "${store[@]}" push --quiet "$tag" "docker-archive:$archive:$tag"
    echo "$tag"
    echo "$archive"
}

for target in "${targets[@]}"; do
    "build_$target"
done
