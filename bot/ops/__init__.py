"""Process running: the supervisor, the service stacks, the cluster topology, the start-up check;
one launcher (launch.py) and one readiness probe (probe.py) for all of them."""
