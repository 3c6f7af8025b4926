"Faults and hostile input: NaN, truncation, disk full, torn checkpoints, kill -9 of the judge trainer, pickles, remote code."
import errno, json, math, os, pickle, signal, subprocess, sys, time
from pathlib import Path

import pytest
import torch

from safe_mm_dpo.cli import main
from safe_mm_dpo.core import load_config, read_json, write_jsonl
from safe_mm_dpo.data import load_split
from safe_mm_dpo.trainer import DPOConfig, read_metrics, train_safe_mm_dpo
from safe_mm_dpo.training import NonFiniteError, latest_checkpoint

EXE = str(Path(sys.executable).with_name('safe-mm-dpo'))


def dpo(stack, out, **kw):
    d = dict(data_dir=str(stack / 'data'), model_name_or_path=str(stack / 'sft'), helpful_rm=str(stack / 'helpful_rm'),
             harmless_cm=str(stack / 'harmless_cm'), output_dir=str(out), batch_size=8, max_steps=6, log_every=1, progress=False,
             cache_dir=str(out.parent / 'cache'), save_every=2)
    d.update(kw)
    return load_config(DPOConfig, **d)


def poison_at(monkeypatch, step):
    "Make the loss NaN on the given optimizer step (1-based), through the real trainer."
    from safe_mm_dpo.loss import LOSSES
    real, calls = LOSSES['safe_mm_dpo'], {'n': 0}
    def fake(*a, **k):
        losses, m = real(*a, **k); calls['n'] += 1
        return (losses * float('nan') if calls['n'] == step else losses), m
    monkeypatch.setitem(LOSSES, 'safe_mm_dpo', fake)


def finite_weights(path):
    from safetensors.torch import load_file
    return all(torch.isfinite(t).all() for t in load_file(str(Path(path) / 'model.safetensors')).values())


def test_nan_loss_stops_with_the_step_and_leaves_weights_intact(tiny_stack, tmp_path, monkeypatch):
    poison_at(monkeypatch, 5)
    with pytest.raises(NonFiniteError, match='non-finite loss at step 5') as e:
        train_safe_mm_dpo(dpo(tiny_stack, tmp_path / 'stop'))
    assert 'weights not updated' in str(e.value)
    ck = latest_checkpoint(tmp_path / 'stop')
    assert ck.name == 'step_000004' and finite_weights(ck / 'model')           # the last checkpoint is before the NaN


def test_nan_loss_skipped_when_configured(tiny_stack, tmp_path, monkeypatch):
    poison_at(monkeypatch, 3)
    s = train_safe_mm_dpo(dpo(tiny_stack, tmp_path / 'skip', on_nonfinite='skip'))
    assert s['skipped_steps'] == 1 and s['steps'] == 6 and finite_weights(tmp_path / 'skip')


def test_nan_through_the_cli_is_a_clear_error(tiny_stack, tmp_path, capsys):
    # a learning rate of 1e30 overflows the weights; the guard stops before they are saved as inf
    code = main(['train', '--data_dir', str(tiny_stack / 'data'), '--model_name_or_path', str(tiny_stack / 'sft'),
                 '--helpful_rm', str(tiny_stack / 'helpful_rm'), '--harmless_cm', str(tiny_stack / 'harmless_cm'),
                 '--output_dir', str(tmp_path / 'o'), '--lr', '1e30', '--max_steps', '6', '--batch_size', '8', '--progress', 'false',
                 '--cache_dir', str(tmp_path / 'c'), '--max_grad_norm', '0'])
    err = capsys.readouterr().err
    if code == 0:                                                              # a run that stayed finite saved finite weights
        assert finite_weights(tmp_path / 'o')
    else:
        assert 'non-finite' in err and 'at step' in err and 'Traceback' not in err


def test_long_texts_are_truncated_by_the_rule_and_counted(tiny_stack, tmp_path, caplog):
    recs = load_split(tiny_stack / 'data', 'train')[:40]
    long = [{**r, 'response_0': r['response_0'] + ' and then' * 200} for r in recs]
    d = tmp_path / 'data'
    for s in ('train', 'val', 'test'): write_jsonl(d / s / 'records.jsonl', long if s == 'train' else recs[:8])
    import logging
    with caplog.at_level(logging.INFO):
        s = train_safe_mm_dpo(dpo(tiny_stack, tmp_path / 'long', data_dir=str(d), max_steps=2, max_length=64, max_prompt_length=32))
    assert s['truncated_records'] == 40 and 'truncated to max_length=64' in caplog.text
    from safe_mm_dpo.models import encode, load_tokenizer
    tok = load_tokenizer(tiny_stack / 'sft')
    e = encode(tok, long[0]['prompt'], long[0]['response_0'], 64, 32)
    assert len(e.input_ids) == 64 and e.truncated
    assert tok.decode(e.input_ids[:e.n_prompt]).endswith(long[0]['prompt'] + '\n<|assistant|>\n')   # the prompt is kept whole


def test_disk_full_while_checkpointing_is_reported_and_leaves_nothing_half_written(tiny_stack, tmp_path, monkeypatch, capsys):
    import safe_mm_dpo.training as TR
    real, n = torch.save, {'k': 0}
    def full(obj, path, *a, **k):
        n['k'] += 1
        if n['k'] == 2: raise OSError(errno.ENOSPC, 'No space left on device')
        return real(obj, path, *a, **k)
    monkeypatch.setattr(TR.torch, 'save', full)
    code = main(['train', '--data_dir', str(tiny_stack / 'data'), '--model_name_or_path', str(tiny_stack / 'sft'),
                 '--helpful_rm', str(tiny_stack / 'helpful_rm'), '--harmless_cm', str(tiny_stack / 'harmless_cm'),
                 '--output_dir', str(tmp_path / 'o'), '--max_steps', '6', '--save_every', '2', '--batch_size', '8',
                 '--progress', 'false', '--cache_dir', str(tmp_path / 'c')])
    err = capsys.readouterr().err
    assert code == 1 and 'could not write checkpoint' in err and 'step_000004' in err and 'No space left on device' in err
    ck = tmp_path / 'o' / 'checkpoints'
    assert sorted(p.name for p in ck.iterdir()) == ['step_000002']              # no partial step_000004, no .tmp left
    assert latest_checkpoint(tmp_path / 'o').name == 'step_000002'


def test_half_written_checkpoints_are_never_picked_up(tiny_stack, tmp_path):
    out = tmp_path / 'r'
    train_safe_mm_dpo(dpo(tiny_stack, out))                                    # checkpoints step_4 and step_6 kept
    ck = out / 'checkpoints'
    (ck / 'step_000006' / 'state.json').unlink()                               # torn: its state never landed
    (ck / '.tmp-step_000008').mkdir()                                          # a crash mid-write of another one
    assert latest_checkpoint(out).name == 'step_000004'
    s = train_safe_mm_dpo(dpo(tiny_stack, out, resume=True))
    assert s['steps'] == 6 and not (ck / '.tmp-step_000008').exists()
    assert latest_checkpoint(out).name == 'step_000006' and (ck / 'step_000006' / 'state.json').exists()


def test_judge_trainer_sigkill_and_resume_is_bitwise(tiny_stack, tmp_path):
    args = lambda out: [EXE, 'train-rm', '--task', 'harmless', '--data_dir', str(tiny_stack / 'data'), '--model_name_or_path',
                        str(tiny_stack / 'sft'), '--output_dir', str(out), '--epochs', '2', '--batch_size', '8', '--save_every', '4',
                        '--num_threads', '1', '--progress', 'false']
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    assert subprocess.run(args(tmp_path / 'full'), capture_output=True, env=env).returncode == 0
    p = subprocess.Popen(args(tmp_path / 'k'), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    target = tmp_path / 'k' / 'checkpoints' / 'step_000008'
    t0 = time.time()
    while not target.exists() and p.poll() is None and time.time() - t0 < 300: time.sleep(0.02)
    os.kill(p.pid, signal.SIGKILL); p.wait()
    assert not (tmp_path / 'k' / 'metrics.json').exists()
    r = subprocess.run(args(tmp_path / 'k') + ['--resume'], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    from safetensors.torch import load_file
    a, b = load_file(str(tmp_path / 'full' / 'model.safetensors')), load_file(str(tmp_path / 'k' / 'model.safetensors'))
    assert all(torch.equal(a[k], b[k]) for k in a)                              # the kept (best) judge is bit-identical
    ma, mb = read_json(tmp_path / 'full' / 'metrics.json'), read_json(tmp_path / 'k' / 'metrics.json')
    assert ma['best_epoch'] == mb['best_epoch'] and ma['test'] == mb['test']


def test_pickled_weights_do_not_run_code(tiny_stack, tmp_path):
    "A model folder whose weights are a malicious pickle: loading refuses, and the payload never runs."
    import shutil
    d = tmp_path / 'evil'; shutil.copytree(tiny_stack / 'sft', d, ignore=shutil.ignore_patterns('checkpoints', 'bootstrap', 'metrics.jsonl'))
    (d / 'model.safetensors').unlink()
    marker = tmp_path / 'pwned'
    class Evil:
        def __reduce__(self): return (os.system, (f'touch {marker}',))
    with open(d / 'pytorch_model.bin', 'wb') as f: pickle.dump({'x': Evil()}, f)
    from safe_mm_dpo.models import load_model
    with pytest.raises(Exception):
        load_model(d)
    assert not marker.exists()


def test_remote_code_is_not_run_unless_asked(tmp_path, capsys):
    d = tmp_path / 'custom'; d.mkdir()
    marker = tmp_path / 'ran'
    (d / 'config.json').write_text(json.dumps({'model_type': 'custom_thing', 'architectures': ['Thing'],
                                               'auto_map': {'AutoConfig': 'modeling_thing.ThingConfig', 'AutoModelForCausalLM': 'modeling_thing.Thing'}}))
    (d / 'modeling_thing.py').write_text(f'open({str(marker)!r}, "w").write("ran")\n')
    from safe_mm_dpo.models import load_model
    with pytest.raises(Exception) as e:
        load_model(d)
    assert 'trust_remote_code' in str(e.value) and not marker.exists()


def test_output_folder_blocked_by_a_file_is_a_clear_error(tmp_path, capsys):
    blocker = tmp_path / 'runs'; blocker.write_text('a file where a folder should be')
    code = main(['prepare-data', '--input', 'safetyworld', '--safetyworld_size', '200', '--output_dir', str(blocker / 'data')])
    err = capsys.readouterr().err
    assert code == 1 and 'could not write' in err and str(blocker) in err and 'Traceback' not in err


def test_permission_denied_while_writing_is_a_clear_error(tmp_path, monkeypatch, capsys):
    "Root ignores chmod, so the refusal is injected where every file write ends: the atomic rename."
    import safe_mm_dpo.core as C
    def denied(src, dst): raise PermissionError(errno.EACCES, 'Permission denied')
    monkeypatch.setattr(C.os, 'replace', denied)
    code = main(['prepare-data', '--input', 'safetyworld', '--safetyworld_size', '200', '--output_dir', str(tmp_path / 'd')])
    err = capsys.readouterr().err
    assert code == 1 and 'could not write' in err and 'Permission denied' in err and 'Traceback' not in err
    assert not list((tmp_path / 'd').rglob('*.tmp*'))                        # no temp files left behind
