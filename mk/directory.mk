# lockstep-directory: the fuzz target for the agent message dispatch.
.PHONY: fuzz-directory
FUZZ_EXTRA += fuzz-directory

fuzz-directory:
	$(GO) test ./directory -run '^$$' -fuzz FuzzDispatch -fuzztime 30s

# The directory's whole test suite again on PostgreSQL (the throwaway
# server of internal/tools/pgtest; skipped without PostgreSQL unless
# CI=true). The replica and store tests run on PostgreSQL in `unit` already.
.PHONY: directory-pg
TEST_EXTRA += directory-pg

directory-pg:
	LOCKSTEP_TEST_STORE=postgres $(GO) test $(RACE) -count=1 -timeout 5m ./directory/

## bench-directory-replicas: two replicas on PostgreSQL, reset push latency across them
.PHONY: bench-directory-replicas
bench-directory-replicas:
	$(GO) test ./cmd/lockstep-directory -run '^$$' -bench ReplicaResetPush -benchtime 1x
