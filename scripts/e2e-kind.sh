#!/usr/bin/env bash
# End to end on a real cluster: kind, the image built here, the Helm chart, a PostgreSQL,
# examples/healthcare.yaml, then the operator scenario tests against the same cluster.
#
# Needs docker, kind and kubectl on PATH (helm comes from .tools/bin, see `make tools`).
# It creates the kind cluster "dbkeeper-e2e" and deletes it at the end, even on failure;
# KEEP_CLUSTER=1 keeps it for a look around. Run it as `make e2e-kind`.
#
# The machines dbkeeper is developed and tested on have no Docker engine, so this script
# has not been run there; CI runs the same scenarios against an emulated API instead.
set -euo pipefail

cd "$(dirname "$0")/.."
CLUSTER=${CLUSTER:-dbkeeper-e2e}
IMAGE=dbkeeper:e2e
OPERATOR_NS=dbkeeper-system
APP_NS=health
DB_NS=e2e-db
HELM=${HELM:-$(command -v helm || echo .tools/bin/helm)}
WORK=$(mktemp -d)
export KUBECONFIG="$WORK/kubeconfig"

for tool in docker kind kubectl "$HELM"; do
  command -v "$tool" >/dev/null || { echo "e2e-kind: $tool is needed and not found" >&2; exit 2; }
done

cleanup() {
  status=$?
  if [ "$status" != 0 ]; then
    echo "--- operator log (last 100 lines) ---"
    kubectl -n "$OPERATOR_NS" logs deployment/keeper-dbkeeper --tail=100 2>/dev/null || true
    kubectl -n "$APP_NS" describe dbs clinic 2>/dev/null || true
  fi
  if [ "${KEEP_CLUSTER:-0}" = 1 ]; then
    echo "kept cluster $CLUSTER; KUBECONFIG=$KUBECONFIG"
  else
    kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
    rm -rf "$WORK"
  fi
  exit "$status"
}
trap cleanup EXIT

step() { echo; echo "==> $*"; }

step "kind cluster $CLUSTER"
kind create cluster --name "$CLUSTER" --kubeconfig "$KUBECONFIG" --wait 120s

step "image $IMAGE"
docker build -t "$IMAGE" .
kind load docker-image "$IMAGE" --name "$CLUSTER"

step "namespaces (operator and application: Pod Security restricted, enforced)"
for ns in "$OPERATOR_NS" "$APP_NS"; do
  kubectl create namespace "$ns"
  kubectl label namespace "$ns" pod-security.kubernetes.io/enforce=restricted
done
kubectl create namespace "$DB_NS"

step "PostgreSQL for the test"
password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
for ns in "$DB_NS" "$APP_NS"; do
  name=$([ "$ns" = "$DB_NS" ] && echo postgres || echo clinic-owner)
  kubectl -n "$ns" create secret generic "$name" \
    --from-literal=username=clinic_owner --from-literal=password="$password" >/dev/null
done
kubectl apply -f tests/e2e/manifests/postgres.yaml
kubectl -n "$DB_NS" rollout status statefulset/postgres --timeout=180s

step "helm install"
"$HELM" install keeper charts/dbkeeper --namespace "$OPERATOR_NS" \
  --set image.repository=dbkeeper --set image.tag=e2e --set image.pullPolicy=Never \
  --wait --timeout 180s

step "examples/healthcare.yaml, pointed at the test PostgreSQL"
kubectl apply -f tests/e2e/manifests/clinic-backups.yaml
sed "s/host: 127.0.0.1/host: postgres.$DB_NS.svc/" examples/healthcare.yaml | kubectl apply -f -
kubectl -n "$APP_NS" wait dbs/clinic --for=jsonpath='{.status.phase}'=Ready --timeout=300s
kubectl -n "$APP_NS" get dbs
kubectl -n "$APP_NS" get deployments,services,cronjobs

step "operator scenario tests against the cluster"
# The scenario tests run their own operator in the test process; the installed one
# must not handle the same resources meanwhile.
kubectl -n "$OPERATOR_NS" scale deployment/keeper-dbkeeper --replicas=0
kubectl -n "$OPERATOR_NS" wait pod -l app.kubernetes.io/component=operator \
  --for=delete --timeout=120s
DBKEEPER_E2E_KUBECONFIG="$KUBECONFIG" .venv/bin/pytest -q -p no:xdist tests/k8s/scenarios

step "e2e-kind passed"
