"""Model FLOPs utilisation of the Safe-MM-DPO step on this machine.

1. The machine's dense matmul rate (float32, torch.mm) at the model's shapes and at a large square;
2. the forward+backward FLOPs of each training step, counted from the *padded* batches the trainer really builds
   (2B sequences per step: y_0 and y_1 of B records; backward = 2 × forward);
3. the trainer's measured step time (a short run of `safe-mm-dpo train`, `step_seconds` in metrics.jsonl)
   → achieved FLOP/s and MFU = achieved / (large-square matmul rate).

    python bench/mfu.py [--stack bench/_work/stack] [--threads 2] [--steps 20]
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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--stack', default=str(HERE / '_work' / 'stack')); ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--steps', type=int, default=20); ap.add_argument('--batch', type=int, default=32)
    a = ap.parse_args()
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    import torch
    from transformers import AutoConfig
    sys.path.insert(0, str(HERE))
    from train_throughput import build_stack
    stack = Path(a.stack); build_stack(stack, a.threads)
    cfg = AutoConfig.from_pretrained(stack / 'models' / 'sft')
    H, I, V = cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size
    M = 2 * a.batch * 48                                                     # ~tokens of one step (2B sequences × ~48)
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
    from safe_mm_dpo.data import load_split
    from safe_mm_dpo.models import encode, load_tokenizer
    from safe_mm_dpo.trainer import DPOConfig, read_metrics, train_safe_mm_dpo
    from safe_mm_dpo.training import step_indices
    with tempfile.TemporaryDirectory() as d:
        c = load_config(DPOConfig, data_dir=str(stack / 'data'), model_name_or_path=str(stack / 'models' / 'sft'),
                        helpful_rm=str(stack / 'models' / 'helpful_rm'), harmless_cm=str(stack / 'models' / 'harmless_cm'),
                        output_dir=d + '/run', cache_dir=str(stack / 'cache'), max_steps=a.steps + 3, batch_size=a.batch, log_every=1,
                        progress=False, num_threads=a.threads, save_epoch_models=False, threshold_relative=0.3, kl_coef=0.05)
        train_safe_mm_dpo(c)
        rows = [r for r in read_metrics(d + '/run') if 'train/step_seconds' in r][3:]
    tok = load_tokenizer(stack / 'models' / 'sft')
    recs = load_split(stack / 'data', 'train')
    lens = [[len(encode(tok, r['prompt'], r[f'response_{i}']).input_ids) for i in (0, 1)] for r in recs]
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
    print(f'\n(torch {torch.__version__}, {os.cpu_count()} cores, {a.threads} threads)')


if __name__ == '__main__':
    sys.exit(main())
