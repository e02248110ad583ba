"""Shared fixtures. The test bed's real peers come from testbed/ as pytest plugins."""

pytest_plugins = ["testbed.fixtures_pool", "testbed.fixtures_nova"]
