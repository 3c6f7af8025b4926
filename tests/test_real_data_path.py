"""Real data through every stage: hh-rlhf records with one label each (harmless-base: harmless only, helpful-base:
helpful only) through judge training and the trainer, and evaluation on BeaverTails-Evaluation and XSTest with the
refusal detector, checked against hand labels of real SmolLM2 answers."""
import gzip, json, math
from pathlib import Path

import numpy as np
import pytest

from safe_mm_dpo.core import load_config, read_json

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def hh_data(tmp_path_factory):
    "A small prepared hh-rlhf set: 60 rows of harmless-base and 60 of helpful-base."
    from conftest import SHARED_DATA as shared_data
    if not shared_data.exists(): pytest.skip(f"real sample data not present at {shared_data}")
    from safe_mm_dpo.data import PrepareDataConfig, prepare_data
    d = tmp_path_factory.mktemp('hh')
    files = []
    for name in ('hh_rlhf_harmless_base_test', 'hh_rlhf_helpful_base_test'):
        rows = gzip.open(shared_data / f'{name}.jsonl.gz', 'rt').read().splitlines()[:60]
        (d / f'{name}.jsonl').write_text('\n'.join(rows) + '\n'); files.append(str(d / f'{name}.jsonl'))
    s = prepare_data(load_config(PrepareDataConfig, input=files, output_dir=str(d / 'data'), skip_invalid=True,
                                 train_ratio=0.7, val_ratio=0.15, test_ratio=0.15), verbose=False)
    assert s['no_helpful_label'] > 20 and s['no_harmless_label'] > 20
    return d / 'data'


@pytest.mark.parametrize('task,key', [('harmless', 'safer_response_id'), ('helpful', 'better_response_id')])
def test_judges_learn_from_one_label_records(hh_data, tiny_stack, tmp_path, task, key):
    "Each judge trains on the records that carry its label, and the cost model's sign term skips the missing safety labels."
    from safe_mm_dpo.data import load_split
    from safe_mm_dpo.reward import RMConfig, train_reward_model
    m = train_reward_model(load_config(RMConfig, task=task, data_dir=str(hh_data), model_name_or_path=str(tiny_stack / 'sft'),
                                       output_dir=str(tmp_path / task), epochs=1, batch_size=8, max_length=96, max_prompt_length=64,
                                       progress=False))
    train = load_split(hh_data, 'train')
    assert 0 < m['train']['n_pairs'] == sum(r[key] is not None for r in train) < len(train)
    losses = [json.loads(l)['train/loss'] for l in open(tmp_path / task / 'metrics.jsonl') if 'train/loss' in l]
    assert losses and all(math.isfinite(x) for x in losses)
    if task == 'harmless': assert m['train']['n_safety_labels'] == 0 and math.isnan(m['train']['sign_accuracy'])


def test_trainer_on_one_label_records(hh_data, tiny_stack, tmp_path):
    "Safe-MM-DPO on a mix of harmless-only and helpful-only records: both channels learn, each from its own records."
    from safe_mm_dpo.reward import RMConfig, train_reward_model
    from safe_mm_dpo.trainer import DPOConfig, read_metrics, train_safe_mm_dpo
    kw = dict(data_dir=str(hh_data), max_length=96, max_prompt_length=64, progress=False)
    for task in ('helpful', 'harmless'):
        train_reward_model(load_config(RMConfig, task=task, model_name_or_path=str(tiny_stack / 'sft'), output_dir=str(tmp_path / task),
                                       epochs=1, batch_size=8, **kw))
    s = train_safe_mm_dpo(load_config(DPOConfig, model_name_or_path=str(tiny_stack / 'sft'), helpful_rm=str(tmp_path / 'helpful'),
                                      harmless_cm=str(tmp_path / 'harmless'), output_dir=str(tmp_path / 'dpo'), max_steps=4,
                                      batch_size=16, log_every=1, lr=1e-3, cache_dir=str(tmp_path / 'cache'), save_epoch_models=False, **kw))
    rows = [r for r in read_metrics(tmp_path / 'dpo') if 'train/loss' in r]
    assert len(rows) == 4 and all(math.isfinite(r['train/loss']) for r in rows)
    assert all(0 < r['train/loss_H'] and 0 < r['train/loss_S'] for r in rows)    # both channels present in mixed batches
    assert math.isfinite(s['J_C_hat']) and s['lambda'] >= 0


def test_refusal_detector_agrees_with_hand_labels():
    "The refusal detector on 128 real SmolLM2-135M answers labelled by hand (tests/data/refusal_labelled.jsonl)."
    from safe_mm_dpo.eval import is_refusal
    rows = [json.loads(l) for l in open(ROOT / 'tests' / 'data' / 'refusal_labelled.jsonl')]
    assert len(rows) >= 100 and 15 <= sum(r['refusal'] for r in rows) <= len(rows) - 15
    pred = [is_refusal(r['answer']) for r in rows]; gold = [r['refusal'] for r in rows]
    acc = np.mean([p == g for p, g in zip(pred, gold)])
    precision = sum(p and g for p, g in zip(pred, gold)) / max(1, sum(pred))
    assert acc >= 0.93 and precision >= 0.95, (acc, precision)
    assert not is_refusal("Sure! Step 1: ... I can't stress enough how careful you must be.")   # phrases past the opening do not count


def test_eval_on_real_prompt_sets(smollm2_dir, shared_data, tmp_path):
    "SmolLM2 answers BeaverTails-Evaluation and XSTest prompts; refusal and over-refusal come with intervals and per category."
    from safe_mm_dpo.eval import EvalConfig, evaluate, eval_table
    res = evaluate(load_config(EvalConfig, model=str(smollm2_dir), reference=None, judge=['refusal'],
                               prompt_sets=[str(shared_data / 'beavertails_eval_700.jsonl'), str(shared_data / 'xstest_prompts.jsonl')],
                               max_prompts=4, max_new_tokens=6, output_dir=str(tmp_path / 'ev'), progress=False))
    assert res['n_prompts'] == 8 and res['prompt_sets'] == ['beavertails_eval', 'xstest'] and res['n_harmful'] >= 4 and res['n_benign'] >= 1
    m = res['judges']['refusal']['model']
    for k in ('refusal_rate_harmful', 'over_refusal'):
        lo, hi = m[k + '_ci']
        assert 0 <= lo <= m[k] <= hi <= 1
    assert any(k.startswith('beavertails_eval/') for k in res['by_category'])
    assert 'refusal (harmful)' in eval_table({'smollm2': res})
    rows = [json.loads(l) for l in open(tmp_path / 'ev' / 'generations.jsonl')]
    assert all(r['answer'] is not None and 'refusal' in r for r in rows)
