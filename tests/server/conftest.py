import pytest
from support import Harness


@pytest.fixture
def harness() -> Harness:
    return Harness()
