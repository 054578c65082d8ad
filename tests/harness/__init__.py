"""Test infrastructure shared by the functional tests, the benchmarks and the demo."""
