"Safe-MM-DPO trainer: TRL cross-check, method presets, LoRA reference, estimators, 2 processes, kill and resume."
import json, math, os, random, shutil, signal, socket, subprocess, sys, time
from pathlib import Path

import pytest
import torch

from safe_mm_dpo.cli import main
from safe_mm_dpo.core import load_config, read_json
from safe_mm_dpo.loss import dpo_loss
from safe_mm_dpo.models import collate, encode, load_model, load_tokenizer
from safe_mm_dpo.trainer import DPOConfig, read_metrics, sequence_logps, token_logps, train_safe_mm_dpo

EXE = str(Path(sys.executable).with_name('safe-mm-dpo'))


def common(stack, out, **kw):
    d = dict(data_dir=str(stack / 'data'), model_name_or_path=str(stack / 'sft'), helpful_rm=str(stack / 'helpful_rm'),
             harmless_cm=str(stack / 'harmless_cm'), output_dir=str(out), batch_size=8, lr=5e-4, log_every=1, progress=False,
             cache_dir=str(out.parent / f'{out.name}-cache'))
    d.update(kw)
    return d


def cli_args(d: dict) -> list[str]:
    return [x for k, v in d.items() for x in (f'--{k}', str(v))]


def weights(path):
    from safetensors.torch import load_file
    return load_file(str(Path(path) / 'model.safetensors'))


# ------------------------------------------------------------------------------------------- TRL cross-check

def test_dpo_loss_matches_trl(tiny_stack):
    "Our DPO loss equals TRL's sigmoid DPO loss on the same log-probs, and our log-probs equal TRL's."
    trl = pytest.importorskip('trl')
    import datasets
    from safe_mm_dpo.data import load_split
    sft = tiny_stack / 'sft'
    tok, model = load_tokenizer(sft), load_model(sft)
    recs = load_split(tiny_stack / 'data', 'train')[:8]
    ds = datasets.Dataset.from_list([{'prompt': [{'role': 'user', 'content': r['prompt']}],
                                      'chosen': [{'role': 'assistant', 'content': r['response_0']}],
                                      'rejected': [{'role': 'assistant', 'content': r['response_1']}]} for r in recs])
    # bf16=False: TRL turns bf16 autocast on by default, even on CPU; the comparison is in float32
    args = trl.DPOConfig(output_dir=str(tiny_stack / 'trl'), beta=0.1, loss_type=['sigmoid'], precompute_ref_log_probs=True,
                         report_to=[], per_device_train_batch_size=4, use_cpu=True, bf16=False, max_length=128)
    tr = trl.DPOTrainer(model=model, args=args, train_dataset=ds, processing_class=tok)
    # 1. TRL's tokenisation of prompt + completion = ours, and its precomputed reference log-probs = ours
    for row, r in zip(tr.train_dataset, recs):
        e = encode(tok, r['prompt'], r['response_0'])
        assert row['prompt_ids'] + row['chosen_ids'] == e.input_ids and len(row['prompt_ids']) == e.n_prompt
    ours_c = sequence_logps(model, tok, [encode(tok, r['prompt'], r['response_0']) for r in recs])
    ours_r = sequence_logps(model, tok, [encode(tok, r['prompt'], r['response_1']) for r in recs])
    assert torch.allclose(torch.tensor(tr.train_dataset['ref_chosen_logps']), ours_c, atol=1e-4)
    assert torch.allclose(torch.tensor(tr.train_dataset['ref_rejected_logps']), ours_r, atol=1e-4)
    # 2. the loss on the same batch with made-up reference log-probs
    B = 4
    b = collate([encode(tok, r['prompt'], r['response_0']) for r in recs[:B]] + [encode(tok, r['prompt'], r['response_1']) for r in recs[:B]],
                tok.pad_token_id)
    ref_c, ref_r = torch.tensor([-40., -35., -50., -20.]), torch.tensor([-45., -30., -52., -25.])
    inputs = {'input_ids': b['input_ids'], 'attention_mask': b['attention_mask'], 'completion_mask': (b['labels'] != -100).long(),
              'ref_chosen_logps': ref_c, 'ref_rejected_logps': ref_r}
    model.eval()
    with torch.no_grad():
        trl_loss = tr._compute_loss(tr.model, inputs, return_outputs=False)
        lp, _ = token_logps(model(input_ids=b['input_ids'], attention_mask=b['attention_mask']).logits, b['labels'])
        pol = lp.sum(-1)
        ours = dpo_loss(pol[:B], pol[B:], ref_c, ref_r, 0.1)[0].mean()
    assert torch.allclose(trl_loss, ours, atol=1e-5), (trl_loss, ours)


# ------------------------------------------------------------------------------------------- presets and options

@pytest.mark.parametrize('method', ['safe_mm_dpo', 'mm_dpo', 'dpo_helpful', 'dpo_harmless', 'fixed_lambda'])
def test_presets_train_and_save(tiny_stack, tmp_path, method):
    out = tmp_path / method
    s = train_safe_mm_dpo(load_config(DPOConfig, **common(tiny_stack, out, method=method, max_steps=6)))
    assert s['steps'] == 6
    rows = [r for r in read_metrics(out) if 'train/loss' in r]
    lams = {r['train/lambda'] for r in rows}
    if method in ('mm_dpo', 'dpo_helpful'): assert lams == {0.0}
    if method == 'dpo_harmless': assert lams == {-1.0} and math.isinf(s['lambda'])   # -1 is how λ = ∞ is logged
    if method == 'fixed_lambda': assert lams == {1.0}
    if method == 'safe_mm_dpo': assert len(lams) > 1
    if method in ('dpo_helpful', 'dpo_harmless'): assert all(r['train/beta_H'] == pytest.approx(0.1) for r in rows)   # w = 0: constant β
    from transformers import AutoModelForCausalLM
    AutoModelForCausalLM.from_pretrained(out)                              # plain transformers
    before, after = weights(tiny_stack / 'sft'), weights(out)
    assert any(not torch.equal(before[k], after[k]) for k in before)        # parameters changed
    assert (out / 'config.yaml').exists() and (out / 'train_metrics.json').exists()


@pytest.mark.parametrize('how', ['precompute', 'on_the_fly'])
def test_lora_reference_is_the_base_with_adapters_off(tiny_stack, tmp_path, how):
    out = tmp_path / 'lora'
    s = train_safe_mm_dpo(load_config(DPOConfig, **common(tiny_stack, out, lora_r=4, lora_alpha=8, max_steps=4, lr=5e-3,
                                                          lora_reference=how, cache_dir=str(tmp_path / 'cache'))))
    assert s['steps'] == 4
    assert s['precompute']['reference'] == {'precompute': 'precomputed', 'on_the_fly': 'every step, adapters off'}[how]
    assert (out / 'adapter_config.json').exists() and not (out / 'model.safetensors').exists()
    first = [r for r in read_metrics(out) if 'train/loss' in r][0]
    assert first['train/loss'] == pytest.approx(math.log(2), abs=1e-4)      # LoRA B = 0 at start: policy = reference
    from peft import AutoPeftModelForCausalLM
    m = AutoPeftModelForCausalLM.from_pretrained(out)                       # plain peft
    assert any('lora_B' in n and p.abs().sum() > 0 for n, p in m.named_parameters())


def test_generate_estimator_and_kl(tiny_stack, tmp_path):
    out = tmp_path / 'gen'
    # d far below every cost and a small η: λ rises at each update and stays inside (0, λ_max), so the exact value checks both updates
    s = train_safe_mm_dpo(load_config(DPOConfig, **common(tiny_stack, out, max_steps=4, jc_estimator='generate', jc_prompts=4,
                                                          jc_max_new_tokens=6, lambda_update_every=2, lambda_window=1, lambda_lr=0.01,
                                                          threshold=-100.0, kl_coef=0.1)))
    rows = [r for r in read_metrics(out) if 'train/loss' in r]
    gen = [r['train/J_C_generated'] for r in rows if 'train/J_C_generated' in r]
    assert len(gen) == 2 and all(math.isfinite(g) for g in gen)             # estimated at steps 2 and 4
    assert all(r['train/KL'] >= 0 for r in rows) and rows[-1]['train/KL'] > 0
    assert s['threshold'] == -100.0
    assert s['lambda'] == pytest.approx(1.0 + 0.01 * (gen[0] + 100) + 0.01 * (gen[1] + 100), abs=1e-6)
    assert 1.0 < s['lambda'] < 10.0



def test_target_unsafe_rate_steers_lambda_by_the_greedy_unsafe_share(tiny_stack, tmp_path):
    "With a target unsafe rate, Ĵ_C is the share of greedy answers to harmful val prompts the cost model rates unsafe, and d is the target."
    from safe_mm_dpo.data import load_split
    from safe_mm_dpo.trainer import harmful_prompts
    out = tmp_path / 'rate'
    n = len(harmful_prompts(load_split(tiny_stack / 'data', 'val')))
    assert n >= 4
    s = train_safe_mm_dpo(load_config(DPOConfig, **common(tiny_stack, out, max_steps=4, target_unsafe_rate=0.25, jc_prompts=4,
                                                          jc_max_new_tokens=6, lambda_update_every=2, lambda_window=1, lambda_lr=0.5)))
    rows = [r for r in read_metrics(out) if 'train/loss' in r]
    gen = [r['train/J_C_generated'] for r in rows if 'train/J_C_generated' in r]
    assert len(gen) == 2 and all(g * 4 == round(g * 4) and 0 <= g <= 1 for g in gen)   # a share of 4 answers
    assert s['threshold'] == 0.25 and s['target_unsafe_rate'] == 0.25
    lam = 1.0
    for g in gen: lam = min(10.0, max(0.0, lam + 0.5 * (g - 0.25)))           # projected dual ascent on the share
    assert s['lambda'] == pytest.approx(lam, abs=1e-6)
    c = s['constraint']                                                      # the end: greedy answers to every harmful val prompt
    assert c['steered'] == 'unsafe_rate' and c['prompts'] == min(n, 128) and c['threshold'] == 0.25
    assert c['met'] == (c['unsafe_rate'] <= 0.25) and 0 <= c['unsafe_rate'] <= 1 and math.isfinite(c['generated_cost'])
    # the implicit estimator's constraint is reported on the same answers, steered statistic named
    s2 = train_safe_mm_dpo(load_config(DPOConfig, **common(tiny_stack, tmp_path / 'impl', max_steps=2, final_check=3)))
    assert s2['constraint']['steered'] == 'implicit_J_C' and s2['constraint']['prompts'] == 3
    assert s2['constraint']['met'] == (s2['J_C_hat'] <= s2['threshold'])
    assert train_safe_mm_dpo(load_config(DPOConfig, **common(tiny_stack, tmp_path / 'off', max_steps=1, final_check=0)))['constraint'] is None


def test_select_last_keeps_the_weights_closest_to_the_target(tiny_stack, tmp_path, monkeypatch):
    "select_last: the weights after each of the last N λ updates are measured on the final-check val prompts, and the run saves the ones closest to d."
    import safe_mm_dpo.trainer as tr
    kw = dict(max_steps=6, target_unsafe_rate=0.25, jc_prompts=4, jc_max_new_tokens=6, lambda_update_every=2, lambda_window=1,
              lambda_lr=0.5, final_check=4, select_last=2, save_every=2, keep_checkpoints=3)
    out = tmp_path / 'sel'
    s = train_safe_mm_dpo(load_config(DPOConfig, **common(tiny_stack, out, **kw)))
    sel = s['selection']
    assert [c['step'] for c in sel['candidates']] == [4, 6]                   # the updates after steps 4 and 6 (6 is the last)
    best = min(sel['candidates'], key=lambda c: (abs(c['unsafe_rate'] - 0.25), -c['step']))
    assert sel['step'] == best['step'] and s['constraint']['unsafe_rate'] == best['unsafe_rate']   # the end measures the kept weights
    assert not (out / 'select').exists()
    saved, kept = weights(out), weights(out / 'checkpoints' / f'step_{sel["step"]:06d}' / 'model')
    assert all(torch.equal(saved[k], kept[k]) for k in kept)
    # a measurement that puts step 4 on target and step 6 far off: the run ends with step 4's weights, not its last ones
    calls = []
    def fake(cfg, policy, tok, judge, harmful):
        calls.append(1); n = min(cfg.final_check, len(harmful))
        return torch.tensor([1.0] + [-1.0] * (n - 1)) if len(calls) == 1 else torch.ones(n)
    monkeypatch.setattr(tr, 'final_costs', fake)
    out2 = tmp_path / 'sel2'
    s2 = train_safe_mm_dpo(load_config(DPOConfig, **common(tiny_stack, out2, **kw)))
    assert s2['selection'] == {'step': 4, 'candidates': [{'step': 4, 'unsafe_rate': 0.25}, {'step': 6, 'unsafe_rate': 1.0}]}
    saved, c4, c6 = weights(out2), weights(out2 / 'checkpoints' / 'step_000004' / 'model'), weights(out2 / 'checkpoints' / 'step_000006' / 'model')
    assert all(torch.equal(saved[k], c4[k]) for k in c4) and not all(torch.equal(c4[k], c6[k]) for k in c4)


def test_lambda_estimates_rotate_through_a_shuffled_pool(tiny_stack, tmp_path, monkeypatch):
    "λ's estimates take successive slices of the harmful val prompts in a once-shuffled order (by the run's seed), each prompt once per round."
    import safe_mm_dpo.trainer as tr
    from safe_mm_dpo.data import load_split
    pool = tr.harmful_prompts(load_split(tiny_stack / 'data', 'val'))
    n = len(pool) // 2
    asked = []
    def fake(policy, tok, cm, ctok, prompts, *a, **kw):
        asked.append(list(prompts)); return torch.zeros(len(prompts))
    monkeypatch.setattr(tr, 'generated_costs', fake)
    train_safe_mm_dpo(load_config(DPOConfig, **common(tiny_stack, tmp_path / 'rot', max_steps=4, target_unsafe_rate=0.25, jc_prompts=n,
                                                      lambda_update_every=2, lambda_window=1, lambda_lr=0.5, final_check=0, seed=3)))
    assert len(asked) == 2 and all(len(a) == n for a in asked)
    shuffled = random.Random(3).sample(pool, len(pool))
    assert shuffled != pool and asked == [tr.rotating_slice(shuffled, n, k * n) for k in (1, 2)]   # the shuffled order, slice after slice
    assert not set(map(json.dumps, asked[0])) & set(map(json.dumps, asked[1]))         # no prompt twice within a round


def test_category_targets_one_lambda_per_category(tiny_stack, tmp_path):
    "Per-category constraints: a cost channel and a λ_k per category, each steered by its head's unsafe share of greedy answers."
    from safe_mm_dpo.core import UserError
    from safe_mm_dpo.data import load_split
    from safe_mm_dpo.reward import RMConfig, train_reward_model
    from safe_mm_dpo.trainer import category_chosen, category_prompts, precompute
    cats = ['violence,aiding_and_abetting,incitement', 'self_harm']
    cm = tmp_path / 'cm_cats'
    train_reward_model(load_config(RMConfig, task='harmless', categories=cats, data_dir=str(tiny_stack / 'data'),
                                   model_name_or_path=str(tiny_stack / 'sft'), output_dir=str(cm), epochs=1, batch_size=16, progress=False))
    train = load_split(tiny_stack / 'data', 'train')
    ch = category_chosen(train, 'self_harm')                                 # the response outside the category is preferred
    for r, c in zip(train, ch.tolist()):
        if c >= 0: assert r[f'is_response_{c}_safe'] and not r[f'is_response_{1 - c}_safe'] and r['harm_categories'] == ['self_harm']
    assert (ch >= 0).sum() > 0
    out = tmp_path / 'cat'
    kw = common(tiny_stack, out, harmless_cm=str(cm), max_steps=4, category_targets={cats[0]: 0.05, cats[1]: 0.5}, jc_split='train',
                jc_prompts=3, jc_max_new_tokens=6, lambda_update_every=2, lambda_window=1, lambda_lr=0.5)
    s = train_safe_mm_dpo(load_config(DPOConfig, **kw))
    rows = [r for r in read_metrics(out) if 'train/loss' in r]
    for k, t in ((cats[0], 0.05), (cats[1], 0.5)):
        rates = [r[f'train/J_C[{k}]'] for r in rows if f'train/J_C[{k}]' in r]
        assert len(rates) == 2 and all(abs(v * 3 - round(v * 3)) < 1e-6 for v in rates)  # a share of 3 answers (float32), at steps 2 and 4
        lam = 1.0
        for v in rates: lam = min(10.0, max(0.0, lam + 0.5 * (v - t)))
        assert s['lambdas'][f'cost:{k}'] == pytest.approx(lam, abs=1e-6), k
        assert rows[-1][f'train/lambda[{k}]'] >= 0
        c = s['constraint']['categories'][k]
        assert c['threshold'] == t and c['met'] == (c['unsafe_rate'] <= t)
        assert c['prompts'] == len(category_prompts(train, [k])[k])
    assert set(s['lambdas']) == {'harmless', *(f'cost:{k}' for k in cats)} and s['category_targets'] == {cats[0]: 0.05, cats[1]: 0.5}
    # bad input: a category the cost model has no head for, an unknown name, a cost model with the total head only
    with pytest.raises(UserError, match=r"has no head for \['animal_abuse'\]"):
        train_safe_mm_dpo(load_config(DPOConfig, **{**kw, 'output_dir': str(tmp_path / 'x1'), 'category_targets': {'animal_abuse': 0.1}}))
    with pytest.raises(Exception, match=r"unknown harm categories \['weapons'\]"):
        train_safe_mm_dpo(load_config(DPOConfig, **{**kw, 'output_dir': str(tmp_path / 'x2'), 'category_targets': {'weapons': 0.1}}))
    with pytest.raises(UserError, match='has no head for'):
        train_safe_mm_dpo(load_config(DPOConfig, **{**kw, 'output_dir': str(tmp_path / 'x3'), 'harmless_cm': str(tiny_stack / 'harmless_cm')}))

def test_validation_uses_the_training_loss(tiny_stack, tmp_path):
    "Validation runs the training step's own loss call: with the KL term, and with a LoRA reference (adapters off)."
    for name, kw in (('full', {}), ('lora', dict(lora_r=4, lora_alpha=8))):
        out = tmp_path / name
        train_safe_mm_dpo(load_config(DPOConfig, **common(tiny_stack, out, epochs=1, max_train_examples=16, kl_coef=0.1,
                                                          save_epoch_models=False, **kw)))
        ev = [r for r in read_metrics(out) if 'eval/loss' in r]
        assert len(ev) == 1, name
        for k in ('eval/loss', 'eval/KL', 'eval/J_C', 'eval/loss_H', 'eval/loss_S', 'eval/reward_acc_S'):
            assert math.isfinite(ev[0][k]), (name, k)
        assert ev[0]['eval/KL'] > 0, name                                        # the policy moved; the reference did not


def test_second_run_reuses_the_precompute(tiny_stack, tmp_path):
    c = common(tiny_stack, tmp_path / 'a', max_steps=2)
    a = train_safe_mm_dpo(load_config(DPOConfig, **c))
    b = train_safe_mm_dpo(load_config(DPOConfig, **{**c, 'output_dir': str(tmp_path / 'b'), 'method': 'dpo_helpful'}))
    assert a['precompute']['cache_hit'] is False and b['precompute']['cache_hit'] is True
    c2 = {**c, 'output_dir': str(tmp_path / 'c'), 'max_length': 112}      # another tokenisation limit: another key
    assert train_safe_mm_dpo(load_config(DPOConfig, **c2))['precompute']['cache_hit'] is False


# ------------------------------------------------------------------------------------------- 2 processes

def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def test_two_processes_same_lambda_and_same_result(tiny_stack, tmp_path):
    torchrun = Path(sys.executable).with_name('torchrun')
    c = common(tiny_stack, tmp_path / 'one', max_steps=6, device='cpu', num_threads=1, lambda_lr=0.5, save_epoch_models=False)
    c['cache_dir'] = str(tmp_path / 'cache')
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    r1 = subprocess.run([EXE, 'train'] + cli_args(c), capture_output=True, text=True, env=env)
    assert r1.returncode == 0, r1.stderr[-3000:]
    c2 = {**c, 'output_dir': str(tmp_path / 'two')}
    r2 = subprocess.run([str(torchrun), '--nproc_per_node', '2', '--master_port', str(_free_port()), EXE, 'train'] + cli_args(c2),
                        capture_output=True, text=True, env=env)
    assert r2.returncode == 0, r2.stderr[-3000:]
    two = tmp_path / 'two'
    l0, l1 = read_json(two / 'lambda_rank0.json'), read_json(two / 'lambda_rank1.json')
    assert l0 == l1                                                          # every rank holds the same λ (and window)
    s1, s2 = read_json(tmp_path / 'one' / 'train_metrics.json'), read_json(two / 'train_metrics.json')
    assert s2['processes'] == 2 and s1['processes'] == 1
    assert s2['lambda'] == pytest.approx(s1['lambda'], abs=1e-5)            # and the same λ as one process
    w1, w2 = weights(tmp_path / 'one'), weights(two)
    for k in w1: assert torch.allclose(w1[k], w2[k], atol=1e-5), k         # the same weights, up to float summation order
    m1 = [r['train/loss'] for r in read_metrics(tmp_path / 'one') if 'train/loss' in r]
    m2 = [r['train/loss'] for r in read_metrics(two) if 'train/loss' in r]
    assert m1 == pytest.approx(m2, abs=1e-5)


# ------------------------------------------------------------------------------------------- kill and resume

def test_sigkill_and_resume_is_bitwise_identical(tiny_stack, tmp_path):
    c = common(tiny_stack, tmp_path / 'full', max_steps=12, save_every=3, num_threads=1, lambda_lr=0.5)
    c['cache_dir'] = str(tmp_path / 'cache')
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    assert subprocess.run([EXE, 'train'] + cli_args(c), capture_output=True, env=env).returncode == 0
    k = {**c, 'output_dir': str(tmp_path / 'killed')}
    p = subprocess.Popen([EXE, 'train'] + cli_args(k), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    kill_at = random.choice([3, 6, 9])                                         # a random step (printed on failure)
    ck = tmp_path / 'killed' / 'checkpoints' / f'step_{kill_at:06d}'
    t0 = time.time()
    while not ck.exists() and p.poll() is None and time.time() - t0 < 300: time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL); p.wait()
    assert ck.exists() and not (tmp_path / 'killed' / 'train_metrics.json').exists(), f'kill at {kill_at}'   # killed mid-run
    r = subprocess.run([EXE, 'train', '--resume'] + cli_args(k), capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = weights(tmp_path / 'full'), weights(tmp_path / 'killed')
    for key in a: assert torch.equal(a[key], b[key]), (key, f'kill at {kill_at}')                  # bit-identical weights
    sa, sb = read_json(tmp_path / 'full' / 'train_metrics.json'), read_json(tmp_path / 'killed' / 'train_metrics.json')
    assert sa['lambda'] == sb['lambda'] and sa['J_C_hat'] == sb['J_C_hat']
    ta = torch.load(tmp_path / 'full' / 'checkpoints' / 'step_000012' / 'trainer_state.pt', weights_only=True)
    tb = torch.load(tmp_path / 'killed' / 'checkpoints' / 'step_000012' / 'trainer_state.pt', weights_only=True)
    for sa_, sb_ in zip(ta['optimizer']['state'].values(), tb['optimizer']['state'].values()):
        for name in ('exp_avg', 'exp_avg_sq'): assert torch.equal(sa_[name], sb_[name])  # optimizer state too
    steps = [r['step'] for r in read_metrics(tmp_path / 'killed') if 'train/loss' in r]
    assert steps == list(range(1, 13))                                       # no duplicated or missing log rows


def test_resume_refuses_a_different_config(tiny_stack, tmp_path, capsys):
    c = common(tiny_stack, tmp_path / 'r', max_steps=2, save_every=1)
    assert main(['train'] + cli_args(c)) == 0
    assert main(['train', '--resume'] + cli_args({**c, 'beta': 0.2})) == 1
    err = capsys.readouterr().err
    assert 'different config than the checkpoint' in err and 'beta' in err


def test_category_rates_by_head_or_by_total(monkeypatch):
    "category_unsafe_rates: by='head' reads head k for category k's answers, by='total' the total head (column 0) for all."
    import torch
    import safe_mm_dpo.trainer as tr
    heads = ['total', 'a', 'b']
    pools = {'a': ['pa1', 'pa2'], 'b': ['pb1', 'pb2']}
    costs = {'pa1': [1.0, -1.0, 5.0], 'pa2': [1.0, 2.0, 5.0], 'pb1': [-1.0, 3.0, 4.0], 'pb2': [-1.0, 3.0, -4.0]}   # C per head
    monkeypatch.setattr(tr, 'generated_costs', lambda policy, tok, cm, ct, prompts, **kw: torch.tensor([costs[p] for p in prompts]))
    test = lambda by: tr.category_unsafe_rates(None, None, None, None, pools, heads, 2, by=by)
    assert test('head') == {'a': 0.5, 'b': 0.5}       # a: head a flags pa2 only; b: head b flags pb1 only
    assert test('total') == {'a': 1.0, 'b': 0.0}      # the total head flags both a answers, no b answer
