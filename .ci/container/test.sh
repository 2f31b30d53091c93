#!/usr/bin/env bash
# Builds the image without a Docker daemon (buildah, vfs storage, chroot isolation, runc) on a
# locally assembled Node 24 base, then runs the simulator and the proxy from it the way the README
# and docker-compose.yml do, and checks what an operator relies on:
#   read-only root file system, HEALTHCHECK healthy, not root, a request passes through,
#   SIGTERM saves the session state file with mode 0600.
# Everything lives in a fresh temporary storage that is deleted at the end (nothing is cached).
#
# usage: .ci/container/test.sh      (as root; see .ci/run for installing podman/buildah/runc/debootstrap)
set -euo pipefail
cd "$(dirname "$0")/../.."
here=.ci/container

fail() { echo "container test: FAILED: $*" >&2; exit 1; }
step_start=0
step() { step_start=$(date +%s); echo "container test: $*"; }
step_done() { echo "container test:   ... $(($(date +%s) - step_start)) s"; }

for tool in podman buildah runc debootstrap npm node; do
  command -v "$tool" >/dev/null 2>&1 || fail "'$tool' is not installed (apt-get install -y podman buildah runc debootstrap)"
done
[ "$(id -u)" = 0 ] || fail "must run as root (rootful podman with the vfs driver)"

work=$(mktemp -d /tmp/stp-container.XXXXXX)
storage=(--root "$work/storage" --runroot "$work/run" --storage-driver vfs)
pod=(podman "${storage[@]}" --runtime runc --cgroup-manager cgroupfs --events-backend file)
# runc here may not raise limits it was not given: pass them explicitly (lowered nproc on purpose).
nofile=$(ulimit -Hn)
ulimits=(--ulimit "nofile=$nofile:$nofile" --ulimit nproc=8192:8192)
base=localhost/stp-base:node24
image=localhost/session-timeout-proxy:ci

cleanup() {
  local status=$?
  if [ "$status" -ne 0 ]; then
    for c in stp-proxy stp-sim; do
      echo "---- last log lines of $c" >&2
      "${pod[@]}" logs --tail 30 "$c" >&2 2>/dev/null || true
    done
  fi
  "${pod[@]}" rm -f -t 0 stp-proxy stp-sim >/dev/null 2>&1 || true
  "${pod[@]}" system reset -f >/dev/null 2>&1 || true
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

step "assembling the base image (debootstrap bookworm + Node 24 from npm)"
STORAGE_OPTS="${storage[*]} --runtime runc --cgroup-manager cgroupfs --events-backend file" \
  "$here/base-image.sh" "$work" "$base"
step_done

# HTTPS interception (a company proxy): the host's CA bundle goes to `npm ci` as a build secret.
build_args=(--build-arg "BASE_IMAGE=$base")
ca=${NODE_EXTRA_CA_CERTS:-$(npm config get cafile 2>/dev/null || true)}
[ -n "$ca" ] && [ "$ca" != null ] && [ "$ca" != undefined ] && [ -s "$ca" ] || ca=/etc/ssl/certs/ca-certificates.crt
[ -s "$ca" ] && build_args+=(--secret "id=npm_ca,src=$ca")
for v in HTTPS_PROXY https_proxy HTTP_PROXY http_proxy NO_PROXY no_proxy; do
  [ -n "${!v:-}" ] && build_args+=(--build-arg "$v=${!v}")
done
registry=$(npm config get registry)
[ "$registry" != "https://registry.npmjs.org/" ] && build_args+=(--build-arg "npm_config_registry=$registry")

step "building the image (buildah, --format docker so HEALTHCHECK is kept)"
buildah "${storage[@]}" bud --isolation chroot --format docker --runtime runc "${ulimits[@]}" \
  "${build_args[@]}" -t "$image" . >"$work/build.log" 2>&1 || { tail -n 40 "$work/build.log" >&2; fail "image build failed (log above)"; }
step_done
echo "container test: image sizes: $("${pod[@]}" images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | tr '\n' ';')"
[ "$("${pod[@]}" image inspect --format '{{.Config.User}}' "$image")" = node ] || fail "the image does not run as user node"
"${pod[@]}" image inspect --format '{{json .Config.Healthcheck}}' "$image" | grep -q healthz || fail "the image has no HEALTHCHECK"

free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
sim_port=$(free_port); proxy_port=$(free_port); admin_port=$(free_port)
secret=ci-container-test-secret
admin_token=ci-container-admin-token

mkdir -p "$work/config" "$work/data"
cat >"$work/config/Panopticon.properties" <<'PROPS'
timeout.session.enabled=true
timeout.session.minutes=30
timeout.session.notification.minutes=5
PROPS
chown 1000:1000 "$work/data"   # the image's node user

step "starting the simulator and the proxy (host network, --read-only)"
"${pod[@]}" run -d --name stp-sim --network host --read-only "${ulimits[@]}" \
  -e SIM_HOST=127.0.0.1 -e SIM_PORT="$sim_port" -e SIM_CONTEXT_PATH=/panopticon \
  -e SIM_PUBLIC_ORIGIN="http://127.0.0.1:$sim_port" -e SIM_TOKEN_SECRET="$secret" \
  "$image" node dist/simulator/main.js >/dev/null 2>>"$work/podman-run.err" || { cat "$work/podman-run.err" >&2; fail "could not start the simulator container"; }
"${pod[@]}" run -d --name stp-proxy --network host --read-only --tmpfs /tmp "${ulimits[@]}" \
  -v "$work/config:/config:ro" -v "$work/data:/data" \
  -e PROXY_UPSTREAM="http://127.0.0.1:$sim_port" -e PROXY_HOST=127.0.0.1 -e PROXY_PORT="$proxy_port" \
  -e PROXY_ADMIN_HOST=127.0.0.1 -e PROXY_ADMIN_PORT="$admin_port" -e PROXY_ADMIN_TOKEN="$admin_token" \
  -e PROXY_TOKEN_SECRET="$secret" -e PROXY_STATE_SAVE_MS=60000 -e PROXY_SHUTDOWN_GRACE_MS=2000 \
  "$image" >/dev/null 2>>"$work/podman-run.err" || { cat "$work/podman-run.err" >&2; fail "could not start the proxy container"; }
# (without systemd, podman complains on stderr that it cannot schedule the periodic health check;
# the check itself is run below with `podman healthcheck run`)

# the image's own HEALTHCHECK command, run by podman (no systemd timer needed)
healthy=
for _ in $(seq 1 60); do
  if "${pod[@]}" healthcheck run stp-proxy >/dev/null 2>&1; then healthy=1; break; fi
  sleep 1
done
[ -n "$healthy" ] || fail "the proxy's HEALTHCHECK never passed"
status=$("${pod[@]}" inspect --format '{{.State.Health.Status}}' stp-proxy)
[ "$status" = healthy ] || fail "health status is '$status', expected healthy"
step_done

step "checking the running containers"
for c in stp-sim stp-proxy; do
  uid=$("${pod[@]}" exec "$c" sh -c "awk '/^Uid:/{print \$2}' /proc/1/status")
  [ "$uid" != 0 ] || fail "$c runs as root"
  if "${pod[@]}" exec "$c" sh -c 'touch /app/written 2>/dev/null'; then fail "$c: the root file system is writable"; fi
  echo "container test:   $c: uid $uid, root file system read-only"
done
node "$here/requests.mjs" "http://127.0.0.1:$proxy_port" "http://127.0.0.1:$admin_port" "$admin_token"
step_done

step "SIGTERM: the proxy stops gracefully and saves its state"
"${pod[@]}" kill --signal TERM stp-proxy >/dev/null
exit_code=$("${pod[@]}" wait stp-proxy)
[ "$exit_code" = 0 ] || fail "the proxy exited with $exit_code after SIGTERM"
state="$work/data/session-state.json"
[ -f "$state" ] || fail "no state file at /data/session-state.json after SIGTERM"
mode=$(stat -c %a "$state")
[ "$mode" = 600 ] || fail "state file mode is $mode, expected 600"
grep -q '"alice"' "$state" || fail "the saved state does not hold alice's session"
"${pod[@]}" logs stp-proxy 2>&1 | grep -q '"event":"shutdown"' || fail "no shutdown line in the proxy's log"
echo "container test:   exit 0, state file mode $mode, alice's session saved"
step_done
echo "container test: passed"
