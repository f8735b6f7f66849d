#!/usr/bin/env bash
# Installs what tidepool's tests and demo need, if missing: the Debian packages
# prometheus (prometheus, promtool) and prometheus-alertmanager (alertmanager,
# amtool), haproxy (for `make bench`, --bench) and chromium (for the live
# page's browser tests, --browser). Runs apt only as root; otherwise it
# says what to install and fails.
set -euo pipefail

need=()
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || command -v alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
command -v amtool >/dev/null 2>&1 || need+=(prometheus-alertmanager)
if [ "${1:-}" = "--bench" ]; then
  command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
fi
if [ "${1:-}" = "--browser" ]; then # the live page's browser tests (headless Chromium)
  command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need+=(chromium)
fi
[ ${#need[@]} -eq 0 ] && exit 0
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)

if [ "$(id -u)" -ne 0 ]; then
  echo "tidepool needs these Debian/Ubuntu packages: ${need[*]}" >&2
  echo "install them with: sudo apt-get install -y --no-install-recommends ${need[*]}" >&2
  exit 1
fi
echo "installing ${need[*]} ..." >&2
export DEBIAN_FRONTEND=noninteractive
# Do not start the packages' own services (a system node exporter on :9100 or
# Prometheus on :9090 would be in the way of the local stack): tidepool starts
# its own Prometheus and Alertmanager.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
fi
trap '[ "$made_policy" = 1 ] && rm -f "$policy"' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
