"""Self-tests, module states and the auditor's report."""
