"""The benchmark harness: agents, suites, runs, metrics and reports (``pase-bench``)."""
