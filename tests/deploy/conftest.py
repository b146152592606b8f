import pytest


@pytest.fixture(autouse=True)
def _clear_cache():
    """The deploy tests read files and run processes of their own: there is no cache to
    clear, so they need neither Redis nor any other service."""
