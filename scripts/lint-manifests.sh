#!/usr/bin/env bash
# Runs two third-party manifest checkers over every profile's synthesized YAML (dist/<profile>/)
# and fails on any finding that is neither fixed nor declared:
#
#   kube-score (Go module github.com/zegl/kube-score): fails on every CRITICAL finding; WARNINGs
#              are counted and named, not gated (see docs/profiles.md, "Manifest checkers").
#   checkov    (PyPI, --framework kubernetes): fails on every failed check.
#
# A finding is declared on the object it concerns (kube-score/ignore, checkov.io/skip<n>), written
# by lib/constructs/checker-declarations.ts. A declaration that silences nothing any more fails too:
# each tool runs a second time with the declarations off, and every declared check must be a finding
# there.
#
# Installs the pinned versions, once, into $SANDSTORE_CACHE_DIR (default ~/.cache/sandstore-deploy):
# kube-score with `go install` (Go module proxy, ~1 min cold), checkov with pip into a venv (PyPI,
# ~40 s cold). Cached: nothing is installed and the run takes a few seconds.
#
# Usage: lint-manifests.sh [--install-only | [--if-installed] [--outdir=<dir>]]
#   --outdir=<dir>  check <dir>/<profile>/ instead of dist/ (cdk8s synth's validation plugin: its output)
#   --if-installed  install nothing: exit 3, saying so, when a checker is not installed yet
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

KUBE_SCORE_VERSION=v1.20.0
CHECKOV_VERSION=3.3.30
# The API version the constructs write (cdk8s-plus-28): kube-score's deprecation checks follow it.
KUBERNETES_VERSION=v1.28

INSTALL_ONLY=0
IF_INSTALLED=0
OUTDIR=
for arg in "$@"; do
  case $arg in
    --install-only) INSTALL_ONLY=1 ;;
    --if-installed) IF_INSTALLED=1 ;;
    --outdir=?*) OUTDIR=$(cd "${arg#--outdir=}" && pwd) || { echo "lint-manifests: --outdir: no directory ${arg#--outdir=}" >&2; exit 2; } ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "lint-manifests: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done
((INSTALL_ONLY && (IF_INSTALLED || ${#OUTDIR}))) && { echo "lint-manifests: --install-only takes no other argument" >&2; exit 2; }

say() { echo "[lint-manifests] $*" >&2; }
die() { echo "[lint-manifests] FAILED: $*" >&2; exit 1; }

CACHE_DIR=${SANDSTORE_CACHE_DIR:-$HOME/.cache/sandstore-deploy}
KUBE_SCORE_DIR=$CACHE_DIR/kube-score-$KUBE_SCORE_VERSION
CHECKOV_DIR=$CACHE_DIR/checkov-$CHECKOV_VERSION
KUBE_SCORE=$KUBE_SCORE_DIR/bin/kube-score
CHECKOV=$CHECKOV_DIR/venv/bin/checkov
mkdir -p "$CACHE_DIR"

# --- install (each tool into a directory of its own version, marked complete when it is) -------
installed() { [[ -f $KUBE_SCORE_DIR/.complete && -x $KUBE_SCORE && -f $CHECKOV_DIR/.complete && -x $CHECKOV ]]; }
if ((IF_INSTALLED)) && ! installed; then
  say "kube-score $KUBE_SCORE_VERSION or checkov $CHECKOV_VERSION is not installed in $CACHE_DIR: not run (npm run lint:manifests installs them)"
  exit 3
fi
exec 9>"$CACHE_DIR/.lint-manifests.lock"
flock 9
if [[ ! -f $KUBE_SCORE_DIR/.complete || ! -x $KUBE_SCORE ]]; then
  command -v go >/dev/null 2>&1 || die "'go' is not on PATH: kube-score $KUBE_SCORE_VERSION is installed with 'go install' (scripts/local-cluster/install-prereqs.sh says which Go)"
  say "installing kube-score $KUBE_SCORE_VERSION into $KUBE_SCORE_DIR (go install, from the Go module proxy)"
  rm -rf "$KUBE_SCORE_DIR"
  (cd "$CACHE_DIR" && GOFLAGS= CGO_ENABLED=0 GOBIN=$KUBE_SCORE_DIR/bin \
    go install -ldflags "-s -w -X main.version=${KUBE_SCORE_VERSION#v}" "github.com/zegl/kube-score/cmd/kube-score@$KUBE_SCORE_VERSION") ||
    die "go install github.com/zegl/kube-score/cmd/kube-score@$KUBE_SCORE_VERSION failed"
  touch "$KUBE_SCORE_DIR/.complete"
fi
if [[ ! -f $CHECKOV_DIR/.complete || ! -x $CHECKOV ]]; then
  command -v python3 >/dev/null 2>&1 || die "'python3' is not on PATH: checkov $CHECKOV_VERSION is installed with pip into a venv"
  say "installing checkov $CHECKOV_VERSION into $CHECKOV_DIR/venv (pip, from PyPI)"
  rm -rf "$CHECKOV_DIR"
  python3 -m venv "$CHECKOV_DIR/venv" ||
    die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
  "$CHECKOV_DIR/venv/bin/pip" install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION" ||
    die "pip install checkov==$CHECKOV_VERSION failed"
  touch "$CHECKOV_DIR/.complete"
fi
flock -u 9
((INSTALL_ONLY)) && exit 0

# --- run ---------------------------------------------------------------------------------------
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Both checkers read a directory named dist (checkov's report names profiles by the files' paths there).
if [[ -n $OUTDIR ]]; then
  mkdir "$work/declared"
  cp -r "$OUTDIR" "$work/declared/dist"
  cd "$work/declared"
else
  cd "$ROOT"
fi
profiles=()
for d in dist/*/; do
  d=${d%/}
  compgen -G "$d/*.yaml" >/dev/null && profiles+=("${d#dist/}")
done
((${#profiles[@]})) || die "no dist/<profile>/*.yaml: run 'npm run synth' first"
mapfile -t profiles < <(printf '%s\n' "${profiles[@]}" | LC_ALL=C sort)

for p in "${profiles[@]}"; do
  for mode in declared raw; do
    flags=()
    [[ $mode == raw ]] && flags+=(--disable-ignore-checks-annotations)
    # Exit 1 means findings, which the report judges; anything else, or no JSON, is a failure to run.
    rc=0
    "$KUBE_SCORE" score --kubernetes-version "$KUBERNETES_VERSION" --output-format json "${flags[@]}" dist/"$p"/*.yaml \
      >"$work/kube-score.$p.$mode.json" 2>"$work/kube-score.$p.$mode.err" || rc=$?
    if ((rc > 1)) || [[ ! -s $work/kube-score.$p.$mode.json ]]; then
      cat "$work/kube-score.$p.$mode.err" >&2
      die "kube-score did not run on dist/$p (exit $rc)"
    fi
  done
done

# checkov has no switch to ignore its skip annotations: its second run reads a copy of dist/ without
# them. Both runs read a directory named dist, so that the files' paths match.
mkdir -p "$work/raw"
cp -r dist "$work/raw/dist"
find "$work/raw/dist" -name '*.yaml' -exec sed -i -E '/^ +checkov\.io\/skip[0-9]+: /d' {} +
run_checkov() { # dir output
  local rc=0
  (cd "$1" && "$CHECKOV" --framework kubernetes --directory dist --output json --compact \
    --soft-fail --skip-download) >"$2" 2>"$2.err" || rc=$?
  if ((rc != 0)) || [[ ! -s $2 ]]; then
    cat "$2.err" >&2
    die "checkov did not run in $1 (exit $rc)"
  fi
}
run_checkov "$PWD" "$work/checkov.declared.json"
run_checkov "$work/raw" "$work/checkov.raw.json"

node "$ROOT/scripts/lint-manifests-report.mjs" "$work" "$KUBE_SCORE_VERSION" "$CHECKOV_VERSION" "${profiles[@]}"
