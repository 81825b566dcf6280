"""Tests against a real Mesos 1.11 master and agent (and the real Consul agent)
from ../shared/ext: the cluster (cluster.py), a small v1 scheduler API
framework (framework.py), their pytest fixtures (conftest.py) and the tests.

cluster.py and framework.py do not need pytest, so tools/bench can start the
same cluster outside a test run."""
