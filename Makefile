# The two commands: `make up` runs the stack locally, `make test` runs every check CI runs.
# The cargo target dir lives outside the clone so CI and fresh clones reuse it.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/smsops/target

.PHONY: up test deps licenses dashboard deploy-check fmt lint unit-and-e2e

up: deps dashboard
	bash deploy/local/up.sh

# Licences first: a crate we may not ship fails in seconds, before any build.
# The dashboard before the gateway: the gateway embeds what it built.
test: licenses deps dashboard deploy-check fmt lint unit-and-e2e

deps:
	bash deploy/local/deps.sh

licenses:
	python3 .ci/licenses.py

# Its types come from dashboard/openapi.json, which a gateway test keeps
# equal to the API: a changed API fails this build, not the people using it.
dashboard:
	cd dashboard && npm ci --no-audit --no-fund && npm run build && npm test

# Every Kubernetes object against the API's own schemas, unknown fields
# refused, and the compose file against the compose-spec schema (there is
# no cluster and no container engine here); KEDA's and kustomize's own
# kinds have no schema there and are checked by tests/tests/api/deploy.rs.
deploy-check:
	python3 -m kubernetes_validate --strict --quiet deploy/k8s/*.yaml deploy/k8s/components/*/*.yaml
	python3 -m check_jsonschema --builtin-schema vendor.compose-spec deploy/compose/compose.yaml

fmt:
	cargo fmt --all --check

lint:
	cargo clippy --workspace --all-targets --locked -- -D warnings

unit-and-e2e:
	cargo test --workspace --locked

.PHONY: bench-sms
bench-sms: deps
	cargo build --release --locked -p smsops-tests --bin sandbox --bin bench-sms --bin replica
	SMSOPS_LOG=$${SMSOPS_LOG:-warn} $(CARGO_TARGET_DIR)/release/bench-sms $(BENCH_ARGS)

# The stack as `make up` runs it, every service from its release binary.
.PHONY: bench-rest
bench-rest: deps
	cargo build --release --locked -p smsops-tests --bin sandbox --bin replica --bin auth-replica --bin bench-rest
	SMSOPS_LOG=$${SMSOPS_LOG:-warn} $(CARGO_TARGET_DIR)/release/bench-rest $(BENCH_ARGS)

.PHONY: bench-pipeline
bench-pipeline: deps
	cargo build --release --locked -p smsops-tests --bin sandbox --bin process-replica --bin bench-pipeline
	SMSOPS_LOG=$${SMSOPS_LOG:-warn} $(CARGO_TARGET_DIR)/release/bench-pipeline $(BENCH_ARGS)

.PHONY: bench-metrics
bench-metrics: deps
	cargo build --release --locked -p smsops-tests --bin bench-metrics
	SMSOPS_LOG=$${SMSOPS_LOG:-warn} $(CARGO_TARGET_DIR)/release/bench-metrics $(BENCH_ARGS)

# A session mix at 1,000 msg/s for 10 minutes with a fault a minute:
# BENCH_ARGS="--rate 500 --minutes 3" to change them.
.PHONY: soak
soak: deps
	cargo build --release --locked -p smsops-tests --bin sandbox --bin replica --bin process-replica --bin soak
	SMSOPS_LOG=$${SMSOPS_LOG:-error} $(CARGO_TARGET_DIR)/release/soak $(BENCH_ARGS)
