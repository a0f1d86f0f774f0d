import numpy as np
import pytest

from helpers import check

pytestmark = pytest.mark.usefixtures("device")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_mlp(dtype):
    check(lambda x, w: (x @ w).tanh().sum(dim=1), [(3, 4), (4, 5)], dtype=dtype)
