"""The LoRA-adapter path end to end on the tiny model: adapter SFT → judges → Safe-MM-DPO → eval → distill, and the
defects it used to have (judges crashed on the adapter, π_ref lost the SFT, eval/distill ignored dtype and device)."""
import json, math
from pathlib import Path

import pytest
import torch

from safe_mm_dpo.cli import main
from safe_mm_dpo.core import ConfigError, load_config, read_json

SMALL = ['--data.safetyworld_size', '400', '--tiny_layers', '2', '--tiny_hidden_size', '64', '--tiny_intermediate_size', '128',
         '--sft.epochs', '1', '--sft.eval_max_new_tokens', '6', '--judges.epochs', '1', '--align.epochs', '1', '--student.epochs', '1',
         '--eval.max_new_tokens', '6', '--distill.max_new_tokens', '6', '--student.eval_max_new_tokens', '6',
         '--student.tiny_hidden_size', '32', '--student.tiny_intermediate_size', '64', '--progress', 'false']
LORA = ['--lora_r', '8', '--lora_dropout', '0', '--lora_target_modules', 'q_proj,v_proj']


@pytest.fixture(scope='module')
def chain(tmp_path_factory, tiny_stack):
    """The main job with LoRA adapters (the path that crashed in the judges stage), on a pretrained base as users run it:
    the tiny model after full SFT stands in for SmolLM2 or Mistral (LoRA on a random-initialised model learns little)."""
    out = tmp_path_factory.mktemp('chain') / 'p'
    assert main(['pipeline', '--output_dir', str(out), '--model_name_or_path', str(tiny_stack / 'sft')] + SMALL + LORA) == 0
    return out


def test_every_stage_of_the_adapter_chain_ran(chain):
    M = chain / 'models'
    for name in ('sft', 'aligned', 'student'): assert (M / name).exists()
    sft_ac = json.loads((M / 'sft' / 'adapter_config.json').read_text())
    assert sft_ac['task_type'] == 'CAUSAL_LM'
    for j in ('helpful_rm', 'harmless_cm'):                     # judges: their own SEQ_CLS adapters on the SFT's base model
        ac = json.loads((M / j / 'adapter_config.json').read_text())
        assert ac['task_type'] == 'SEQ_CLS' and ac['base_model_name_or_path'] == sft_ac['base_model_name_or_path']
    assert (M / 'aligned' / 'adapter_config.json').exists()
    report = (chain / 'report' / 'report.md').read_text()
    assert '| aligned |' in report and '| student |' in report


def test_judge_adapters_keep_their_score_head(chain):
    "A judge trained with LoRA reloads with its trained head: the scores of metrics.json are reproduced, and differ from a fresh head."
    from safe_mm_dpo.data import load_split
    from safe_mm_dpo.reward import judge_metrics, load_judge, score_records
    M = chain / 'models'
    val = load_split(chain / 'data', 'val')
    model, tok = load_judge(M / 'harmless_cm')
    m = judge_metrics(val, *score_records(model, tok, val, max_length=128, max_prompt_length=96), 'harmless')
    saved = read_json(M / 'harmless_cm' / 'metrics.json')['val']
    assert m['pairwise_accuracy'] == pytest.approx(saved['pairwise_accuracy'])
    assert m['mean_score_safe'] == pytest.approx(saved['mean_score_safe'], abs=1e-4)
    from peft import PeftModel
    assert isinstance(model, PeftModel) and any('score' in n for n, _ in model.named_parameters())


def test_first_dpo_step_from_an_adapter_sft_starts_at_log2(chain, tmp_path):
    "The reference is the SFT adapter itself, so the policy starts equal to it and the first DPO loss is log 2."
    from safe_mm_dpo.trainer import DPOConfig, read_metrics, train_safe_mm_dpo
    M = chain / 'models'
    cfg = load_config(DPOConfig, data_dir=str(chain / 'data'), model_name_or_path=str(M / 'sft'), helpful_rm=str(M / 'helpful_rm'),
                      harmless_cm=str(M / 'harmless_cm'), output_dir=str(tmp_path / 'dpo'), max_steps=1, log_every=1, batch_size=8,
                      lora_r=8, lora_dropout=0.0, lora_target_modules=['q_proj', 'v_proj'], method='dpo_helpful', progress=False,
                      save_epoch_models=False)
    train_safe_mm_dpo(cfg)
    first = [r for r in read_metrics(tmp_path / 'dpo') if 'train/loss' in r][0]
    assert first['train/loss'] == pytest.approx(math.log(2), abs=1e-4)


def test_eval_and_distill_load_models_as_configured(chain, tmp_path, monkeypatch):
    "dtype reaches every model eval and distill load; 4-bit and CUDA requests reach the loader (and fail clearly on a CPU)."
    import safe_mm_dpo.distill as distill_mod
    import safe_mm_dpo.eval as eval_mod
    from safe_mm_dpo.distill import DistillGenerateConfig, distill_generate
    from safe_mm_dpo.eval import EvalConfig, evaluate
    M = chain / 'models'
    seen = []
    real = eval_mod.load_frozen
    def spy(path, head='causal', args=None):
        model, tok = real(path, head, args); seen.append((Path(path).name, head, next(model.parameters()).dtype)); return model, tok
    monkeypatch.setattr(eval_mod, 'load_frozen', spy); monkeypatch.setattr(distill_mod, 'load_frozen', spy)
    ev = dict(model=str(M / 'aligned'), reference=str(M / 'sft'), judge=['rm', 'refusal'], data_dir=str(chain / 'data'),
              helpful_rm=str(M / 'helpful_rm'), harmless_cm=str(M / 'harmless_cm'), max_prompts=3, max_new_tokens=4, progress=False)
    res = evaluate(load_config(EvalConfig, **ev, dtype='bfloat16', output_dir=str(tmp_path / 'ev')))
    assert {(n, h) for n, h, _ in seen} == {('aligned', 'causal'), ('sft', 'causal'), ('helpful_rm', 'score'), ('harmless_cm', 'score')}
    assert all(d == torch.bfloat16 for _, _, d in seen) and res['dtype'] == 'bfloat16'
    seen.clear()
    dg = dict(model_path=str(M / 'aligned'), input_prompts=str(chain / 'data' / 'test' / 'records.jsonl'), max_prompts=2, best_of_n=2,
              helpful_rm=str(M / 'helpful_rm'), harmless_cm=str(M / 'harmless_cm'), max_new_tokens=4, progress=False)
    distill_generate(load_config(DistillGenerateConfig, **dg, dtype='bfloat16', output_path=str(tmp_path / 'd.jsonl')))
    assert len(seen) == 3 and all(d == torch.bfloat16 for _, _, d in seen)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match='CUDA'): evaluate(load_config(EvalConfig, **ev, load_in_4bit=True, output_dir=str(tmp_path / 'e4')))
        with pytest.raises(ConfigError, match='CUDA'): distill_generate(load_config(DistillGenerateConfig, **dg, load_in_4bit=True, output_path=str(tmp_path / 'd4.jsonl')))
        with pytest.raises(ConfigError, match='CUDA'): evaluate(load_config(EvalConfig, **ev, device='cuda', output_dir=str(tmp_path / 'ec')))
