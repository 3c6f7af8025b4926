"""Model FLOPs utilisation of the Safe-MM-DPO step on this machine.

1. The machine's dense matmul rate (float32, torch.mm) at the model's shapes and at a large square;
2. the forward+backward FLOPs of each training step, counted from the *padded* batches the trainer really builds
   (2B sequences per step: y_0 and y_1 of B records; backward = 2 × forward);
3. the trainer's measured step time (a short run of `safe-mm-dpo train`, `step_seconds` in metrics.jsonl)
   → achieved FLOP/s and MFU = achieved / (large-square matmul rate).

    python bench/mfu.py [--stack bench/_work/stack] [--threads 2] [--steps 20]
    python bench/mfu.py --model smollm2-135m --batch 4 --steps 3    # SmolLM2-135M, all weights, max_length 256

4. where the rest of the step goes: one step as the trainer runs it (`model_token_logps` on the 2B sequences, the
   Safe-MM-DPO loss's shape of work, backward, AdamW) under torch.profiler, its self CPU time grouped by operator kind
   (matmuls, attention, the LM head's log-softmax and gather, the optimizer, everything else).

With `--model smollm2-135m` the stack is `train_throughput.py`'s (the longest hh-rlhf pairs, the tiny judges).
"""
import argparse, json, os, statistics, sys, tempfile, time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def matmul_rate(m, k, n, threads, reps=None):
    import torch
    torch.set_num_threads(threads)
    a, b = torch.randn(m, k), torch.randn(k, n)
    for _ in range(3): a @ b
    reps = reps or max(3, int(2e9 / (2 * m * k * n)) + 1)
    t = time.perf_counter()
    for _ in range(reps): a @ b
    dt = (time.perf_counter() - t) / reps
    return 2 * m * k * n / dt


def forward_flops(cfg, batch_seqs, T):
    "Forward FLOPs of a decoder on `batch_seqs` sequences padded to T tokens (matmuls + attention)."
    H, I, L, A, KV, V = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.vocab_size
    hd = H // A
    tok = batch_seqs * T
    proj = 2 * tok * (H * H + 2 * H * KV * hd + H * H)
    attn = 2 * 2 * batch_seqs * T * T * H            # QK^T and AV
    mlp = 2 * tok * 3 * H * I
    head = 2 * tok * H * V
    return L * (proj + attn + mlp) + head


KINDS = [('matmuls (linear layers, LM head)', ('aten::mm', 'aten::addmm', 'aten::bmm', 'aten::matmul', 'aten::linear')),
         ('attention (SDPA)', ('scaled_dot_product', 'attention')),
         ('log-softmax / logsumexp / gather', ('logsumexp', 'log_softmax', 'gather', 'masked_scatter', 'index')),
         ('optimizer (AdamW)', ('_foreach', 'adam', 'lerp', 'addcdiv', 'sqrt')),
         ('elementwise (norms, rotary, SiLU, residual, casts)', ('aten::',))]


def breakdown(stack, records, L, P, trainer_step_s):
    "One Safe-MM-DPO-shaped step (both responses of `records`, backward, AdamW) under torch.profiler, by operator kind."
    import torch
    from torch.profiler import ProfilerActivity, profile
    from safe_mm_dpo.data import chat_prompt
    from safe_mm_dpo.models import collate, encode, load_model, load_tokenizer, model_token_logps
    sft = stack / 'models' / 'sft'
    tok, model = load_tokenizer(sft), load_model(sft)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6)
    b = collate([encode(tok, chat_prompt(r), r[f'response_{i}'], L, P) for i in (0, 1) for r in records], tok.pad_token_id)
    def step():
        lp, mask = model_token_logps(model, b['input_ids'], b['attention_mask'], b['labels'])
        s = lp.sum(-1); n = len(records)
        loss = -torch.nn.functional.logsigmoid(0.1 * (s[:n] - s[n:])).mean()   # the DPO loss's shape (reference terms are constants)
        opt.zero_grad(); loss.backward(); opt.step()
    step()                                                                        # warm-up (AdamW state, allocator)
    t = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof: step()
    wall = time.perf_counter() - t
    ev = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in ev)
    groups = {k: 0.0 for k, _ in KINDS}; groups['other (Python, autograd, allocation)'] = 0.0
    for e in ev:
        for kind, keys in KINDS:
            if any(k in e.key.lower() for k in keys): groups[kind] += e.self_cpu_time_total; break
        else: groups['other (Python, autograd, allocation)'] += e.self_cpu_time_total
    print(f'\nWhere one step goes (profiled step: {wall:.2f} s wall with the profiler on; the trainer\'s median step {trainer_step_s:.2f} s):')
    print('| operator kind | share of self CPU time |\n|---|---|')
    for k, v in groups.items(): print(f'| {k} | {v / total:.1%} |')


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--stack', default=str(HERE / '_work' / 'stack')); ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--steps', type=int, default=20); ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--model', default='tiny', choices=['tiny', 'smollm2-135m'])
    ap.add_argument('--data', default=str(HERE.parent.parent / 'shared' / 'data'), help='hh-rlhf test files (smollm2-135m)')
    a = ap.parse_args()
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    import torch
    from transformers import AutoConfig
    sys.path.insert(0, str(HERE))
    from train_throughput import build_smollm2_stack, build_stack
    real = a.model == 'smollm2-135m'
    L, P = (256, 128) if real else (128, 96)
    if real:
        stack = HERE / '_work' / 'smollm2-stack' if a.stack == str(HERE / '_work' / 'stack') else Path(a.stack)
        build_smollm2_stack(stack, a.threads, Path(a.data), L, P)
    else: stack = Path(a.stack); build_stack(stack, a.threads)
    cfg = AutoConfig.from_pretrained(stack / 'models' / 'sft')
    H, I, V = cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size
    M = 2 * a.batch * (230 if real else 48)                                  # ~tokens of one step (2B sequences × typical length)
    print(f'matmul rate, float32, {a.threads} threads (GFLOP/s):')
    shapes = {f'({M}×{H})·({H}×{H}) attention projection': (M, H, H), f'({M}×{H})·({H}×{I}) MLP up': (M, H, I),
              f'({M}×{I})·({I}×{H}) MLP down': (M, I, H), f'({M}×{H})·({H}×{V}) LM head': (M, H, V), '2048² square': (2048, 2048, 2048)}
    rates = {}
    for name, (m, k, n) in shapes.items():
        rates[name] = statistics.median(matmul_rate(m, k, n, a.threads) for _ in range(3))
        print(f'  {name:<42} {rates[name] / 1e9:8.1f}')
    peak = rates['2048² square']
    # the trainer's real step time and its real padded batches
    from safe_mm_dpo.core import load_config
    from safe_mm_dpo.data import chat_prompt, load_split
    from safe_mm_dpo.models import encode, load_tokenizer
    from safe_mm_dpo.trainer import DPOConfig, read_metrics, train_safe_mm_dpo
    from safe_mm_dpo.training import step_indices
    with tempfile.TemporaryDirectory() as d:
        c = load_config(DPOConfig, data_dir=str(stack / 'data'), model_name_or_path=str(stack / 'models' / 'sft'),
                        helpful_rm=str(stack / 'models' / 'helpful_rm'), harmless_cm=str(stack / 'models' / 'harmless_cm'),
                        output_dir=d + '/run', cache_dir=str(stack / 'cache'), max_steps=a.steps + 3, batch_size=a.batch, log_every=1,
                        progress=False, num_threads=a.threads, save_epoch_models=False, threshold_relative=0.3, kl_coef=0.05,
                        max_length=L, max_prompt_length=P, final_check=0, max_train_examples=a.batch * (a.steps + 3))
        train_safe_mm_dpo(c)
        rows = [r for r in read_metrics(d + '/run') if 'train/step_seconds' in r][3:]
    tok = load_tokenizer(stack / 'models' / 'sft')
    recs = load_split(stack / 'data', 'train')
    recs = recs[:c.max_train_examples]
    lens = [[len(encode(tok, chat_prompt(r), r[f'response_{i}'], L, P).input_ids) for i in (0, 1)] for r in recs]
    flops, times = [], []
    for r in rows:
        idx = step_indices(len(recs), a.batch, c.seed, r['step'] - 1)
        T = max(max(lens[i]) for i in idx)
        flops.append(3 * forward_flops(cfg, 2 * a.batch, T)); times.append(r['train/step_seconds'])
    achieved = statistics.median(f / t for f, t in zip(flops, times))
    print(f'\nSafe-MM-DPO step ({a.batch} records = {2 * a.batch} sequences, padded to the batch max; fwd+bwd = 3× fwd):')
    print(f'  FLOPs per step (median)     {statistics.median(flops) / 1e9:8.2f} GFLOP')
    print(f'  step time (median)          {statistics.median(times):8.3f} s')
    print(f'  achieved                    {achieved / 1e9:8.1f} GFLOP/s')
    print(f'  MFU vs 2048² matmul rate    {achieved / peak:8.1%}')
    print(f'  MFU vs LM-head-shape rate   {achieved / rates[list(shapes)[3]]:8.1%}')
    breakdown(stack, recs[:a.batch], L, P, statistics.median(times))
    print(f'\n(torch {torch.__version__}, {os.cpu_count()} cores, {a.threads} threads)')


if __name__ == '__main__':
    sys.exit(main())
