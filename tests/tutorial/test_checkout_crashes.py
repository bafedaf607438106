"""The crash harness example of docs/testing.md: `checkout` killed at every store write."""

import pytest

from durable.testing import crash_test
from tests.tutorial.checkout import _lines


@pytest.mark.slow
def test_checkout_charges_exactly_once_whichever_write_a_crash_hits(tmp_path):
    def charged_once(run_dir, k, kind):
        lines = _lines(str(run_dir / "ledger"))
        assert lines.count("charge order-7 120") == 1, f"{kind}:{k}: {lines}"
        assert lines.count("ship order-7") >= 1, f"{kind}:{k}: {lines}"

    report = crash_test(
        "tests.tutorial.checkout:checkout",
        args=lambda run_dir: (str(run_dir / "ledger"), "order-7", 120),
        events=[("packed", None)],
        store_root=tmp_path,
        check=charged_once,
    )
    assert report.crash_points == 3 * report.writes  # before, after and torn, at each write
    print(report)
