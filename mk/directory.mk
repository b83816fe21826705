# lockstep-directory: the fuzz target for the agent message dispatch.
.PHONY: fuzz-directory
FUZZ_EXTRA += fuzz-directory

fuzz-directory:
	$(GO) test ./directory -run '^$$' -fuzz FuzzDispatch -fuzztime 30s
