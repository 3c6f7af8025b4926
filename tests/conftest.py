import os
# Tests never reach the Hub: anything that would download must fail fast instead.
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('HF_DATASETS_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_NO_ADVISORY_WARNINGS', '1')
os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')

from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / 'tests' / 'fixtures'
SHARED_DATA = ROOT.parent / 'shared' / 'data'


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: longer end-to-end tests (run in CI when they fit)')


@pytest.fixture
def fixtures():
    return FIXTURES


@pytest.fixture
def shared_data():
    if not SHARED_DATA.exists():
        pytest.skip(f'real sample data not present at {SHARED_DATA}')
    return SHARED_DATA
