#!/usr/bin/env bash
# Builds dolmen's container image from Debian packages and our own build only: no base image from
# a registry. mmdebstrap makes a bookworm root file system with exactly the runtime libraries the
# dolmen binary links (found with ldd + dpkg -S), etcdctl (etcd-client) and CA certificates;
# buildah turns it into a one-layer OCI image and stores it in the local containers storage
# (where podman finds it) under the tag. See docs/container.md.
#
#   deploy/container/build.sh [--dolmen PATH] [--tag TAG] [--out DIR] [--oci-archive]
#     --dolmen PATH   the Release binary (default build/cmd/dolmen/dolmen)
#     --tag TAG       image name in local storage (default localhost/dolmen:latest)
#     --out DIR       scratch and output folder (default build/container)
#     --oci-archive   also write DIR/dolmen.oci.tar (loadable with `podman load -i`)
#
# Run as root on Debian 12. The storage used is containers' default, or the one that
# CONTAINERS_STORAGE_CONF names (the test points it at a temporary one).
# DOLMEN_CONTAINER_CACHE (default ~/.cache/dolmen-container) keeps the downloaded .debs between
# runs; DOLMEN_CONTAINER_MIRROR (default deb.debian.org) is the Debian mirror.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)

dolmen=$root/build/cmd/dolmen/dolmen
tag=localhost/dolmen:latest
out=$root/build/container
oci_archive=0
usage() {
  sed -n '8,12p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case "$1" in
    --dolmen) [ $# -ge 2 ] || usage; dolmen=$2; shift 2 ;;
    --tag) [ $# -ge 2 ] || usage; tag=$2; shift 2 ;;
    --out) [ $# -ge 2 ] || usage; out=$2; shift 2 ;;
    --oci-archive) oci_archive=1; shift ;;
    -h | --help) usage ;;
    *) echo "build.sh: unknown argument '$1'" >&2; usage ;;
  esac
done

pkg_of() {
  case "$1" in ldd) echo libc-bin ;; flock) echo util-linux ;; *) echo "$1" ;; esac
}
die() {
  echo "build.sh: $*" >&2
  exit 1
}
[ "$(id -u)" -eq 0 ] || die "must run as root (mmdebstrap and buildah mount need it)"
for tool in mmdebstrap buildah ldd dpkg flock; do
  command -v "$tool" >/dev/null 2>&1 ||
    die "'$tool' not found; scripts/install-deps.sh installs it (Debian package: $(pkg_of "$tool"))"
done
[ -x "$dolmen" ] || die "no dolmen binary at '$dolmen' (scripts/build.sh release dolmen makes it)"
"$dolmen" --version >/dev/null 2>&1 || die "'$dolmen' does not run (--version failed)"

# The image takes the Release binary: an ASan build links libasan, which is in a -dev-like
# compiler package and would make the image several times larger and slower.
if ldd "$dolmen" | grep -q 'libasan\|libubsan'; then
  die "'$dolmen' is a sanitizer build; the image takes the Release binary (build/cmd/dolmen/dolmen)"
fi

# The Debian packages that ship the shared libraries dolmen links: exactly these go in, never
# their -dev packages. dpkg -S knows a library by the path it was installed at, which on a
# merged-/usr system may be either the /lib or the /usr/lib spelling, hence both tries.
runtime_packages() {
  local lib pkg
  ldd "$1" | awk '/=> \// { print $3 }' | while read -r lib; do
    pkg=$(dpkg -S "$lib" 2>/dev/null || dpkg -S "$(readlink -f "$lib")" 2>/dev/null) ||
      die "no Debian package ships $lib (dolmen must link Debian libraries only)"
    echo "${pkg%%:*}"
  done | sort -u
}
mapfile -t libs < <(runtime_packages "$dolmen")
[ ${#libs[@]} -gt 0 ] || die "ldd found no shared libraries in '$dolmen'"
# etcdctl for the lab's verification step (`docker exec ... etcdctl member list`), CA
# certificates for TLS clients in the container.
packages=("${libs[@]}" etcd-client ca-certificates)
echo "build.sh: packages: ${packages[*]}"

# The image's user: fixed ids, so a host data dir can be chowned to it ahead of time.
uid=10001
gid=10001

cache=${DOLMEN_CONTAINER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dolmen-container}/debs
mirror=${DOLMEN_CONTAINER_MIRROR:-http://deb.debian.org/debian}
security=${DOLMEN_CONTAINER_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
mkdir -p "$out" "$cache"

ctr=""
mnt=""
# shellcheck disable=SC2317  # run by the trap below
cleanup() {
  if [ -n "$ctr" ]; then
    buildah rm "$ctr" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

# The root file system is written straight into a scratch container's mount, so what goes into
# the layer is exactly what mmdebstrap left (owners, modes, links), with no copy in between.
ctr=$(buildah from --name "dolmen-build-$$" scratch)
mnt=$(buildah mount "$ctr")

# variant=essential: only Essential:yes packages (libc, coreutils, bash, dpkg, ...) plus the
# ones we name; no apt, no compiler. The dpkg path-excludes keep docs, man pages and locales out.
strip_paths=(/usr/share/doc /usr/share/man /usr/share/info /usr/share/locale /usr/share/lintian
  /usr/share/linda /usr/share/bug /usr/share/common-licenses)
dpkgopts=()
for p in "${strip_paths[@]}"; do
  dpkgopts+=(--dpkgopt="path-exclude=$p/*")
done
include=$(IFS=,; echo "${packages[*]}")
# One build at a time per deb cache (another worktree may build too): the hooks rewrite it.
exec 9>"$cache/.lock"
flock 9
# No Recommends: they would bring in e.g. the whole of perl for nothing dolmen runs. The
# merged-usr hook lays out /usr the way bookworm does without the usrmerge package (which would
# bring in perl too). force-unsafe-io: no fsync per file; a failed build is simply redone.
# Hooks are run by mmdebstrap with the root file system as "$1": single quotes are meant.
# shellcheck disable=SC2016
mmdebstrap --quiet --variant=essential --include="$include" \
  --aptopt='APT::Install-Recommends "false"' \
  --dpkgopt=force-unsafe-io \
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
  --skip=essential/unlink \
  "${dpkgopts[@]}" \
  --setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
  --setup-hook="sync-in '$cache' /var/cache/apt/archives/" \
  --customize-hook="find '$cache' -name '*.deb' -delete" \
  --customize-hook="sync-out /var/cache/apt/archives '$cache'" \
  bookworm "$mnt" \
  "deb $mirror bookworm main" "deb $mirror bookworm-updates main" \
  "deb $security bookworm-security main"

echo "build.sh: root file system done after ${SECONDS}s"

# Our part: the binary, /usr/local/bin/etcd for commands written for etcd's image, the user and
# its data volume. No home, no shell login.
install -m 0755 "$dolmen" "$mnt/usr/local/bin/dolmen"
ln -s dolmen "$mnt/usr/local/bin/etcd"
echo "dolmen:x:$uid:$gid:Dolmen:/etcd-data:/usr/sbin/nologin" >>"$mnt/etc/passwd"
echo "dolmen:x:$gid:" >>"$mnt/etc/group"
echo "dolmen:!:1::::::" >>"$mnt/etc/shadow"
install -d -m 0700 -o "$uid" -g "$gid" "$mnt/etcd-data"
# What a running container never needs: package caches and lists, docs that the excludes above
# did not catch (they were unpacked before dpkg read its options), logs of the build.
for p in "${strip_paths[@]}"; do
  rm -rf "${mnt:?}$p"
done
rm -rf "$mnt"/var/cache/apt/* "$mnt"/var/lib/apt/lists/* "$mnt"/var/log/* "$mnt"/tmp/*
buildah umount "$ctr" >/dev/null

# No entrypoint: the command is the whole argument list, as with etcd's image, so
# `IMAGE /usr/local/bin/etcd --data-dir=/etcd-data ...` runs exactly that.
buildah config \
  --user "$uid:$gid" \
  --workingdir /etcd-data \
  --volume /etcd-data \
  --port 2379/tcp --port 2380/tcp \
  --entrypoint '[]' \
  --cmd '["/usr/local/bin/etcd", "--data-dir=/etcd-data"]' \
  --env ETCDCTL_API=3 \
  --stop-signal SIGTERM \
  --label org.opencontainers.image.title=dolmen \
  --label org.opencontainers.image.description="Dolmen, an etcd v3 server; built from Debian bookworm packages" \
  "$ctr"
buildah commit --quiet --rm "$ctr" "$tag" >/dev/null
ctr=""
echo "build.sh: image committed after ${SECONDS}s"
if [ "$oci_archive" -eq 1 ]; then
  rm -f "$out/dolmen.oci.tar"
  buildah push --quiet "$tag" "oci-archive:$out/dolmen.oci.tar:$tag"
fi
size=$(buildah images --format '{{.Size}}' "$tag")
echo "build.sh: built $tag, size $size"
