import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models gain nothing from threads, and on a loaded 2-core machine OpenMP barriers
    turn a 4 ms Hessian-vector product into 250 ms; the thread count is put back after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
