"""Process running: the supervisor, the service stacks, the cluster topology, the start-up check."""
