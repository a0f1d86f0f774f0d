"""docs/ops.md is what docs/make_ops.py makes from the code now, and every op has a sample."""

import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def make_ops():
    """docs/make_ops.py, imported as a module."""
    path = os.path.join(ROOT, "docs", "make_ops.py")
    spec = importlib.util.spec_from_file_location("make_ops", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_public_op_has_a_sample(make_ops):
    missing, extra = make_ops.sample_coverage()
    assert not missing, f"public ops without a sample in docs/make_ops.py (SAMPLES): {missing}"
    assert not extra, f"samples in docs/make_ops.py for names that are no public op: {extra}"


def test_ops_md_is_up_to_date(make_ops):
    text, problems, _ = make_ops.build()
    assert not problems, "docs/make_ops.py: " + "; ".join(problems)
    assert not make_ops.check(text), "docs/ops.md is out of date: run python docs/make_ops.py"
