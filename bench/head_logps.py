"""The LM head's share of a training step at a real vocabulary: `models.HeadLogps` against activation checkpointing.

`models.model_token_logps` sends the response tokens' hidden states through the LM head a chunk at a time and never
keeps the logits. Until 2026-12-01 each chunk ran under `torch.utils.checkpoint` (the backward pass recomputed the chunk's
logits and logsumexp and ran autograd through them); `HeadLogps` keeps each token's logsumexp and writes the chunk's
gradient g·(onehot − softmax) in place. This script times forward + backward of the head alone at SmolLM2-135M's shape
(hidden 576, vocabulary 49,152, chunks of 255 tokens), for a trainable head (full fine-tuning; SmolLM2 ties it to the
embedding) and a frozen one (LoRA), in float32 and under CPU bfloat16 autocast, the two ways alternated in one process,
and checks that they give the same log-probs and gradients. Nothing is asserted.

    python bench/head_logps.py --tokens 2040 --reps 5 --threads 2
"""
import argparse, json, statistics, time

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from safe_mm_dpo.models import HeadLogps


def checkpointed(h, weight, y, per):
    "The way before HeadLogps: each chunk's logits and logsumexp under activation checkpointing."
    def one(x, t):
        logits = F.linear(x, weight).float()
        return logits.gather(-1, t.unsqueeze(-1)).squeeze(-1) - logits.logsumexp(-1)
    return torch.cat([checkpoint(one, h[i:i + per], y[i:i + per], use_reentrant=False) for i in range(0, len(y), per)])


def fused(h, weight, y, per): return HeadLogps.apply(h, weight, None, y, per)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--tokens', type=int, default=2040, help='response tokens of a step (8 sequences × 255)')
    ap.add_argument('--hidden', type=int, default=576); ap.add_argument('--vocab', type=int, default=49152)
    ap.add_argument('--per', type=int, default=255, help='tokens per chunk'); ap.add_argument('--reps', type=int, default=5)
    ap.add_argument('--threads', type=int, default=2); ap.add_argument('--results', default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(0)
    h0 = torch.randn(a.tokens, a.hidden, generator=g)
    w0 = torch.randn(a.vocab, a.hidden, generator=g) * a.hidden ** -0.5
    y = torch.randint(0, a.vocab, (a.tokens,), generator=g)
    rows = []
    for head in ('trainable', 'frozen'):
        for amp in (False, True):
            times, out = {'checkpoint': [], 'HeadLogps': []}, {}
            for rep in range(a.reps + 1):                        # rep 0 warms up
                for name, f in (('checkpoint', checkpointed), ('HeadLogps', fused)):
                    h = h0.clone().requires_grad_(); w = w0.clone().requires_grad_(head == 'trainable')
                    t0 = time.perf_counter()
                    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=amp): lp = f(h, w, y, a.per)
                    lp.sum().backward()
                    if rep: times[name].append(time.perf_counter() - t0)
                    out[name] = (lp.detach(), h.grad, w.grad)
            diff = max(((x - z).abs().max() / z.abs().max().clamp(min=1e-30)).item()
                       for x, z in zip(out['HeadLogps'], out['checkpoint']) if z is not None)
            med = {k: statistics.median(v) for k, v in times.items()}
            rows.append({'head': head, 'precision': 'bf16 autocast' if amp else 'float32', **{f'{k}_s': v for k, v in med.items()},
                         'speedup': med['checkpoint'] / med['HeadLogps'], 'max_rel_diff': diff,
                         'range_s': {k: [min(v), max(v)] for k, v in times.items()}})
    print(f'{a.tokens} tokens × hidden {a.hidden} → vocabulary {a.vocab}, chunks of {a.per}, {a.threads} threads, '
          f'{a.reps} repetitions (median), the two ways alternated; torch {torch.__version__}\n')
    print('| head | precision | checkpoint s (min–max) | HeadLogps s (min–max) | speed-up | max relative difference |')
    print('|---|---|---|---|---|---|')
    for r in rows:
        c, f = r['range_s']['checkpoint'], r['range_s']['HeadLogps']
        print(f"| {r['head']} | {r['precision']} | {r['checkpoint_s']:.3f} ({c[0]:.3f}–{c[1]:.3f}) | {r['HeadLogps_s']:.3f} "
              f"({f[0]:.3f}–{f[1]:.3f}) | {r['speedup']:.2f}× | {r['max_rel_diff']:.1e} |")
    if a.results:
        with open(a.results, 'w') as fh: json.dump({'args': vars(a), 'torch': torch.__version__, 'rows': rows}, fh, indent=1)


if __name__ == '__main__':
    main()
