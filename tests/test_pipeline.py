"The pipeline: reuse and resume, papermill, the README's main-job command, and the full-scale recipe's configs."
import json, os, re, shlex, signal, subprocess, sys, time
from pathlib import Path

import pytest
import yaml

from safe_mm_dpo.cli import main
from safe_mm_dpo.pipeline import PipelineConfig, run_pipeline
from safe_mm_dpo.core import load_config, read_json

ROOT = Path(__file__).resolve().parents[1]
EXE = str(Path(sys.executable).with_name('safe-mm-dpo'))
SMALL = ['--data.safetyworld_size', '400', '--tiny_layers', '2', '--tiny_hidden_size', '64', '--tiny_intermediate_size', '128',
         '--sft.epochs', '1', '--sft.eval_max_new_tokens', '8', '--judges.epochs', '1', '--align.epochs', '1', '--student.epochs', '1',
         '--eval.max_new_tokens', '8', '--distill.max_new_tokens', '8', '--student.eval_max_new_tokens', '8',
         '--student.tiny_hidden_size', '32', '--student.tiny_intermediate_size', '64', '--progress', 'false']


def test_pipeline_reuses_refuses_and_overwrites(tmp_path, capsys):
    out = str(tmp_path / 'p')
    assert main(['pipeline', '--output_dir', out, '--compare', 'dpo:dpo_helpful'] + SMALL) == 0
    rep = Path(out) / 'report'
    for f in ('report.md', 'frontier.png', 'training_curves.png', 'reward_cost.png', 'pipeline_config.yaml', 'timings.json'):
        assert (rep / f).exists(), f
    text = (rep / 'report.md').read_text()
    assert '| sft |' in text and '| aligned |' in text and '| dpo |' in text and '| student |' in text and '## Distillation' in text
    t = read_json(rep / 'timings.json')
    assert all(v['status'] == 'ran' for k, v in t.items() if k not in ('total', 'report'))
    capsys.readouterr()
    assert main(['pipeline', '--output_dir', out, '--compare', 'dpo:dpo_helpful'] + SMALL) == 0      # same inputs: all reused
    t = read_json(rep / 'timings.json')
    assert all(v['status'] == 'reused' for k, v in t.items() if k not in ('total', 'report'))
    assert main(['pipeline', '--output_dir', out, '--compare', 'dpo:dpo_helpful', '--align.lr', '2e-4'] + SMALL) == 1
    assert "stage 'aligned'" in capsys.readouterr().err                                              # changed inputs: asks first
    assert main(['pipeline', '--output_dir', out, '--compare', 'dpo:dpo_helpful', '--align.lr', '2e-4', '--overwrite'] + SMALL) == 0
    t = read_json(rep / 'timings.json')
    assert t['sft']['status'] == 'reused' and t['aligned']['status'] == 'ran' and t['eval/aligned']['status'] == 'ran'
    assert t['compare/dpo']['status'] == 'ran'                                                      # align.lr applies to variants too


def test_pipeline_resumes_after_a_kill(tmp_path):
    out = tmp_path / 'p'
    args = [EXE, 'pipeline', '--output_dir', str(out), '--stages', 'data,sft,judges,align'] + SMALL + ['--align.epochs', '3']
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ck = out / 'models' / 'aligned' / 'checkpoints'
    t0 = time.time()
    while p.poll() is None and time.time() - t0 < 600 and not (ck.exists() and any(ck.glob('step_*'))): time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL); p.wait()
    assert not read_json(out / '.stages' / 'aligned.json')['done']
    r = subprocess.run(args, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    t = read_json(out / 'report' / 'timings.json') if (out / 'report' / 'timings.json').exists() else None
    assert 'sft                    reused' in r.stdout and 'aligned                resumed' in r.stdout
    assert 'resumed from' in r.stderr and read_json(out / '.stages' / 'aligned.json')['done']


def test_pipeline_notebook_through_papermill(tmp_path):
    pm = pytest.importorskip('papermill')
    out = tmp_path / 'run'
    params = {'output_dir': str(out), 'data': {'safetyworld_size': 400}, 'tiny_layers': 2, 'tiny_hidden_size': 64, 'tiny_intermediate_size': 128,
              'sft': {'epochs': 1, 'eval_max_new_tokens': 8}, 'judges': {'epochs': 1}, 'align': {'epochs': 1}, 'eval': {'max_new_tokens': 8},
              'stages': ['data', 'sft', 'judges', 'align', 'eval', 'report']}
    (tmp_path / 'params.yaml').write_text(yaml.safe_dump(params))
    record = out / 'pipeline.ipynb'
    out.mkdir()
    pm.execute_notebook(str(ROOT / 'nbs' / 'runs' / 'pipeline.ipynb'), str(record), parameters=params, kernel_name='python3',
                        cwd=str(tmp_path), progress_bar=False)
    assert (out / 'report' / 'report.md').exists()
    nb = record.read_text()
    assert 'injected-parameters' in nb and 'safetyworld_size' in nb           # the executed notebook records the run
    assert read_json(out / '.stages' / 'eval__aligned.json')['done']


def test_readme_main_job_command_in_a_fresh_folder(tmp_path):
    "A newcomer copies the README's main-job command; with a size override it produces the report."
    readme = (ROOT / 'README.md').read_text()
    cmds = [l.strip() for l in readme.splitlines() if 'safe-mm-dpo pipeline' in l and l.strip().startswith('make install')]
    assert cmds, 'README has no main-job command (make install && ... safe-mm-dpo pipeline)'
    main_job = cmds[0].split('&&', 1)[1].strip()                               # the part after `make install &&`
    argv = shlex.split(main_job)
    assert argv[0].endswith('safe-mm-dpo') and argv[1] == 'pipeline'
    r = subprocess.run([EXE] + argv[1:] + SMALL, cwd=tmp_path, capture_output=True, text=True, env={**os.environ, 'HF_HUB_OFFLINE': '1'})
    assert r.returncode == 0, r.stderr[-2000:]
    reports = list(tmp_path.rglob('report/report.md'))
    assert len(reports) == 1 and '| aligned |' in reports[0].read_text()
    assert 'stage timings' in r.stdout


@pytest.mark.parametrize('name,cls_path', [
    ('pipeline.yaml', 'safe_mm_dpo.pipeline:PipelineConfig'), ('pipeline.mistral-7b.yaml', 'safe_mm_dpo.pipeline:PipelineConfig'),
    ('pipeline.smollm2-hh.yaml', 'safe_mm_dpo.pipeline:PipelineConfig'), ('peers.smollm2-hh.yaml', 'safe_mm_dpo.pipeline:PipelineConfig'),
    ('peers.yaml', 'safe_mm_dpo.pipeline:PipelineConfig'), ('comparison.yaml', 'safe_mm_dpo.pipeline:PipelineConfig'),
    ('noise.yaml', 'safe_mm_dpo.pipeline:PipelineConfig'), ('compare.yaml', 'safe_mm_dpo.compare:CompareConfig'),
    ('rm_config.yaml', 'safe_mm_dpo.reward:RMConfig'), ('rm_config.mistral-7b.yaml', 'safe_mm_dpo.reward:RMConfig'),
    ('dpo_config.yaml', 'safe_mm_dpo.trainer:DPOConfig'), ('dpo_config.mistral-7b.yaml', 'safe_mm_dpo.trainer:DPOConfig')])
def test_configs_load_and_validate(name, cls_path):
    import importlib
    mod, cls = cls_path.split(':')
    cfg = load_config(getattr(importlib.import_module(mod), cls), ROOT / 'configs' / name)
    if 'mistral' in name:
        assert cfg.load_in_4bit and cfg.lora_r > 0 and cfg.dtype == 'bfloat16'


def test_dry_run_reads_the_real_model_config(tmp_path, capsys):
    "The dry run reads the model's own config.json (a local folder or the Hub cache) and sizes the plan from it."
    from transformers import MistralConfig
    MistralConfig().save_pretrained(tmp_path / 'mistral-7b')           # Mistral-7B-v0.1's config.json, as a local folder holds it
    cfg = json.loads((tmp_path / 'mistral-7b' / 'config.json').read_text())
    assert main(['pipeline', '--config', str(ROOT / 'configs' / 'pipeline.mistral-7b.yaml'), '--output_dir', str(tmp_path / 'm'),
                 '--model_name_or_path', str(tmp_path / 'mistral-7b'), '--dry_run']) == 0
    out = capsys.readouterr().out
    assert 'aligned' in out and 'new' in out and '7.24B parameters' in out
    gibs = [float(x) for x in re.findall(r'per GPU\): ([0-9.]+) GiB', out)]
    assert len(gibs) == 2 and 3 < gibs[1] < gibs[0] < 40                        # 8 GPUs need less each than 1
    assert not (tmp_path / 'm').exists()                                        # a dry run writes nothing
    # the numbers follow the file, not a constant: half the layers, about half the parameters
    cfg['num_hidden_layers'] = 16; (tmp_path / 'mistral-7b' / 'config.json').write_text(json.dumps(cfg))
    assert main(['pipeline', '--config', str(ROOT / 'configs' / 'pipeline.mistral-7b.yaml'), '--output_dir', str(tmp_path / 'm'),
                 '--model_name_or_path', str(tmp_path / 'mistral-7b'), '--dry_run']) == 0
    assert '3.75B parameters' in capsys.readouterr().out


def test_dry_run_without_the_config_fails_clearly(tmp_path, capsys):
    "Offline with no cached copy, the dry run says it cannot read the config; it never substitutes a guess."
    assert main(['pipeline', '--config', str(ROOT / 'configs' / 'pipeline.mistral-7b.yaml'), '--output_dir', str(tmp_path / 'm'),
                 '--dry_run']) == 1
    err = capsys.readouterr().err
    assert "cannot read the config of 'mistralai/Mistral-7B-v0.1'" in err and 'Traceback' not in err
    assert not (tmp_path / 'm').exists()


def test_real_and_full_scale_recipes_have_the_same_keys():
    "configs/pipeline.smollm2-hh.yaml is the Mistral-7B recipe with other models, quantisation and sizes, key for key."
    import yaml
    small, big = (yaml.safe_load((ROOT / 'configs' / n).read_text()) for n in ('pipeline.smollm2-hh.yaml', 'pipeline.mistral-7b.yaml'))
    assert set(small) == set(big)
    extra = {'align': {'lambda_update_delay', 'warmup_ratio', 'min_lr_ratio', 'save_every'}, 'distill': {'max_new_tokens'}}
    for sec in ('data', 'sft', 'judges', 'align', 'eval', 'distill', 'student'):            # section by section, key for key
        assert set(small[sec]) == set(big[sec]) - extra.get(sec, set()), sec
    assert small['heldout_judges'] and big['heldout_judges'] and small['lora_r'] > 0 and big['lora_r'] > 0


def test_pipeline_expresses_the_full_scale_training_config():
    "Every key of configs/dpo_config.mistral-7b.yaml reaches the aligned stage of configs/pipeline.mistral-7b.yaml, with its value."
    from safe_mm_dpo.pipeline import WIRED, _build, stage_configs
    from safe_mm_dpo.trainer import DPOConfig
    dpo = yaml.safe_load((ROOT / 'configs' / 'dpo_config.mistral-7b.yaml').read_text())
    p = load_config(PipelineConfig, ROOT / 'configs' / 'pipeline.mistral-7b.yaml')
    aligned = _build(*stage_configs(p)['aligned'][:2])
    want = load_config(DPOConfig, ROOT / 'configs' / 'dpo_config.mistral-7b.yaml')
    keys = [k for k in dpo if k not in WIRED['align']]
    assert len(keys) >= 25
    assert {k: getattr(aligned, k) for k in keys} == {k: getattr(want, k) for k in keys}


def test_old_flat_keys_say_where_they_moved(capsys):
    assert main(['pipeline', '--dpo_lr', '1e-4', '--dry_run']) == 2
    assert "'align' section now" in capsys.readouterr().err


def test_pipeline_under_several_processes_says_how_to_launch_stages(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv('WORLD_SIZE', '2')
    assert main(['pipeline', '--output_dir', str(tmp_path / 'p')] + SMALL) == 1
    assert 'accelerate launch' in capsys.readouterr().err and not (tmp_path / 'p').exists()


def test_code_version_is_dirty_for_code_changes_only(tmp_path):
    "A changed module or notebook makes the recorded code dirty; results a run writes under nbs/results do not."
    import importlib.util, shutil, subprocess
    (tmp_path / 'safe_mm_dpo').mkdir(); (tmp_path / 'nbs' / 'results').mkdir(parents=True)
    shutil.copy(ROOT / 'safe_mm_dpo' / 'core.py', tmp_path / 'safe_mm_dpo' / 'core.py')
    (tmp_path / 'nbs' / '00_core.ipynb').write_text('{}'); (tmp_path / 'nbs' / 'results' / 'table.md').write_text('old')
    git = lambda *a: subprocess.run(['git', '-C', str(tmp_path), *a], check=True, capture_output=True)
    git('init', '-q'); git('add', '-A'); git('-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'c')
    spec = importlib.util.spec_from_file_location('core_copy', tmp_path / 'safe_mm_dpo' / 'core.py')
    core = importlib.util.module_from_spec(spec); spec.loader.exec_module(core)
    assert core.code_version()['dirty'] is False
    (tmp_path / 'nbs' / 'results' / 'table.md').unlink()                 # a comparison replacing its committed results
    assert core.code_version()['dirty'] is False
    (tmp_path / 'nbs' / '00_core.ipynb').write_text('{"cells": []}')
    assert core.code_version()['dirty'] is True
    git('checkout', '-q', '--', 'nbs/00_core.ipynb'); assert core.code_version()['dirty'] is False
    with open(tmp_path / 'safe_mm_dpo' / 'core.py', 'a') as f: f.write('# edited\n')     # a changed module
    assert core.code_version()['dirty'] is True
