"""Run pytest on one test tier, treating "no tests collected" as success.

pytest exits with 5 when a tier has no tests yet (or all of them were
deselected); for CI that is not a failure, so it is mapped to 0 here.
Every other exit code is passed through unchanged.
"""

import sys

import pytest

NO_TESTS_COLLECTED = 5

if __name__ == "__main__":
    code = pytest.main(sys.argv[1:])
    if code == NO_TESTS_COLLECTED:
        print("pytest collected no tests in this tier; treating it as a pass")
        sys.exit(0)
    sys.exit(int(code))
