"""Hypothesis profiles: ``ci`` (deterministic; the default) and ``dev`` (random, more examples).

Choose with ``HYPOTHESIS_PROFILE=dev``; CI and the README's test command use ``ci``.
"""
import os

import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile("ci", derandomize=True, deadline=None, database=None, max_examples=25,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Tiny matrices run faster on one torch thread than split over two (2-core CI); restored after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
