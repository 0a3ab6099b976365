#!/usr/bin/env bash
# Checks the Prometheus artefacts with promtool (Debian: apt-get install prometheus). Run by .ci/run.
#   rules:  syntax and PromQL of alerts.yml and alerts-jetstream.yml
#   tests:  the alert unit tests (which alerts fire on which series)
#   config: prometheus.yml. Debian's Prometheus is built without Kubernetes service discovery, so the
#           check runs on a copy whose kubernetes_sd_configs is swapped for a static target; everything
#           else (relabelling, rule files) is checked as written.
set -euo pipefail
cd "$(dirname "$0")"
promtool check rules alerts.yml alerts-jetstream.yml
promtool test rules alerts.test.yml alerts.lowthroughput.test.yml
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cp alerts.yml alerts-jetstream.yml "$tmp/"
sed -e 's/^\( *\)kubernetes_sd_configs:$/\1static_configs:/' -e "s/^\( *\)- role: pod$/\1- targets: ['127.0.0.1:3000']/" \
  prometheus.yml > "$tmp/prometheus.yml"
if grep -q kubernetes_sd_configs "$tmp/prometheus.yml"; then echo "check.sh: could not swap kubernetes_sd_configs" >&2; exit 1; fi
promtool check config "$tmp/prometheus.yml"
