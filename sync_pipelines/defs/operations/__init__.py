"""Cross-provider operations: failure alerts, the status report, run and inbox retention."""
