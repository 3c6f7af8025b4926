"""A training step on this CPU in float32 against bfloat16 autocast, and with uniformly random against length-grouped batches.

The step is the SFT step of the embedded default (`sft_loss_fn`: the tiny Mistral policy, cross-entropy on the response
tokens of 32 SafetyWorld examples, AdamW). Precision modes:

- `fp32`: no autocast (attention by torch's CPU flash kernel, as `sdpa` picks);
- `bf16-flash`: bfloat16 autocast, attention still by the flash kernel;
- `bf16-math`: bfloat16 autocast with attention by the plain math kernel: the package's `training.autocast`, what a
  trainer runs under `mixed_precision: bf16` (or `auto` on a CPU with AMX / AVX-512 BF16) on a CPU.

Batch plans: `random` (every batch uniformly random, `group_by_length: false`) and `grouped` (`group_by_length: true`,
the default of SFT and the judges). Each (mode, plan) runs `--steps` timed steps after 3 warm-up steps, the
combinations alternated over `--reps` repetitions in one process; the median step time of every repetition is kept.

    python bench/train_precision.py [--stack bench/_work/stack] [--threads 2] [--steps 20] [--reps 3] [--results F]
    python bench/train_precision.py --model smollm2-135m --batch 8 --steps 2 --reps 1 --plans random   # SmolLM2-135M, LoRA r 16

With `--model smollm2-135m` the step is the same SFT step on SmolLM2-135M with LoRA adapters (r 16 on q, k, v, o) at
max_length 256, on `train_throughput.py`'s SmolLM2 stack (the longest hh-rlhf test pairs).

bf16 matmuls are fast only where the CPU multiplies bf16 natively (AMX, AVX-512 BF16); the script prints what this
CPU has. The stack is `train_throughput.py`'s (built on first use).
"""
import argparse, json, platform, statistics, sys, time
from contextlib import nullcontext
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--stack', default=str(HERE / '_work' / 'stack')); ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--steps', type=int, default=20); ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--batch', type=int, default=32); ap.add_argument('--results', default=None)
    ap.add_argument('--model', default='tiny', choices=['tiny', 'smollm2-135m']); ap.add_argument('--plans', default='random,grouped')
    ap.add_argument('--data', default=str(HERE.parent.parent / 'shared' / 'data'))
    a = ap.parse_args()
    sys.path.insert(0, str(HERE))
    import torch
    from accelerate import Accelerator
    from train_throughput import build_smollm2_stack, build_stack
    from safe_mm_dpo.training import ModelArgs
    from safe_mm_dpo.data import load_split
    from safe_mm_dpo.models import encode, load_model, load_tokenizer, sft_examples, sft_loss_fn
    from safe_mm_dpo.training import autocast, epoch_order, native_bf16
    torch.set_num_threads(a.threads)
    L, P = (256, 128) if a.model == 'smollm2-135m' else (128, 96)
    if a.model == 'smollm2-135m':
        stack = HERE / '_work' / 'smollm2-stack'; build_smollm2_stack(stack, a.threads, Path(a.data), L, P)
    else: stack = Path(a.stack); build_stack(stack, a.threads)
    sft = stack / 'models' / 'sft'
    lora = ModelArgs(lora_r=16, lora_alpha=32, lora_dropout=0.0, lora_target_modules=['q_proj', 'k_proj', 'v_proj', 'o_proj'])
    tok, model = load_tokenizer(sft), load_model(sft, 'causal', lora if a.model == 'smollm2-135m' else None)
    encs = [encode(tok, p, r, L, P) for p, r in sft_examples(load_split(stack / 'data', 'train'))]
    lengths = [len(e.input_ids) for e in encs]
    n, B = len(encs), a.batch
    plans = {k: v for k, v in {'random': epoch_order(n, 0, 0), 'grouped': epoch_order(n, 0, 0, lengths, B)}.items() if k in a.plans.split(',')}
    batches = {k: [o[s:s + B] for s in range(0, (n // B) * B, B)] for k, o in plans.items()}
    padded = {k: sum(B * max(lengths[i] for i in b) for b in bs) / sum(lengths[i] for b in bs for i in b) for k, bs in batches.items()}
    acc = Accelerator(cpu=True, mixed_precision='bf16')          # one per process (accelerate's state is a singleton)
    ctx = {'fp32': nullcontext, 'bf16-flash': lambda: torch.autocast('cpu', dtype=torch.bfloat16),
           'bf16-math': lambda: autocast(acc)}                    # what a trainer runs in bf16 on a CPU
    loss_fn = sft_loss_fn(tok, encs, acc)
    opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=1e-4, fused=True)

    def run(mode, plan, k):
        idx = batches[plan][k % len(batches[plan])]
        t = time.perf_counter()
        with ctx[mode]():
            loss, _ = loss_fn(model, idx)
        loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
        return time.perf_counter() - t

    combos = [(m, p) for p in plans for m in ctx]
    times = {c: [] for c in combos}
    for rep in range(a.reps):
        for c in (combos if rep % 2 == 0 else combos[::-1]):
            for k in range(3): run(*c, k)
            times[c].append(statistics.median(run(*c, 3 + k) for k in range(a.steps)))
    cpu = {'amx_tile': torch.cpu._is_amx_tile_supported(), 'avx512_bf16': torch.cpu._is_avx512_bf16_supported(), 'native_bf16': native_bf16(True)}
    res = {'model': a.model, 'date': time.strftime('%Y-%m-%d'), 'machine': platform.processor() or platform.machine(), 'cpu': cpu, 'threads': a.threads,
           'torch': torch.__version__, 'batch': B, 'steps': a.steps, 'reps': a.reps, 'examples': n,
           'padded_over_real_tokens': padded,
           'seconds_per_step': {f'{m}/{p}': v for (m, p), v in times.items()}}
    print(f"CPU: {res['machine']}; AMX {cpu['amx_tile']}, AVX-512 BF16 {cpu['avx512_bf16']}; torch {torch.__version__}; {a.threads} threads")
    print(f"{a.model}: padded / real tokens per batch of {B}: " + ', '.join(f'{k} {v:.3f}' for k, v in padded.items()))
    print('| precision | batches | s/step (median of each repetition) | speed-up vs fp32/random |')
    print('|---|---|---|---|')
    base = statistics.median(times[('fp32', 'random')])
    for (m, p), v in times.items():
        print(f"| {m} | {p} | {' / '.join(f'{x:.3f}' for x in v)} | {base / statistics.median(v):.2f}× |")
    if a.results: Path(a.results).write_text(json.dumps(res, indent=1) + '\n')


if __name__ == '__main__':
    main()
