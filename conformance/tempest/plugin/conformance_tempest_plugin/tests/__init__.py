"""No tests: the plugin only adjusts Tempest's own compute tests."""
