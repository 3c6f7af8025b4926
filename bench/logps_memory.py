"""The policy's log-probabilities at a real vocabulary: all logits at once against the LM head one sequence at a time.

At SmolLM2-135M's 49,152-token vocabulary the (sequences, length, vocabulary) float32 logits of a DPO batch are larger
than the model (16 sequences × 256 tokens: 0.8 GB, and as much again for their gradient). `models.model_token_logps`
runs the backbone, then the LM head and the log-softmax one sequence at a time, recomputed in the backward pass, so no
such tensor exists. This script times one LoRA training step (forward + backward of the summed response log-probs) of
SmolLM2-135M both ways, each repetition in a fresh process (peak RSS is the process's own), the two ways alternated,
and checks that both give the same log-probs and gradients. Nothing is asserted.

    python bench/logps_memory.py                     # converts SmolLM2 into bench/_work/smollm2-135m on first use
    python bench/logps_memory.py --sequences 16 --length 256 --reps 3 --threads 2
"""
import argparse, json, statistics, subprocess, sys, time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def worker(a):
    import torch
    torch.set_num_threads(a.threads)
    from safe_mm_dpo.models import load_model, load_tokenizer, model_token_logps
    from safe_mm_dpo.trainer import peak_memory_mb
    from safe_mm_dpo.training import ModelArgs
    tok = load_tokenizer(a.model_dir)
    torch.manual_seed(0)                                  # here, not at the start: the same LoRA initialisation in every process
    model = load_model(a.model_dir, 'causal', ModelArgs(lora_r=16, lora_alpha=32, lora_dropout=0.0, gradient_checkpointing=a.gc))
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, tok.vocab_size, (a.sequences, a.length), generator=g)
    labels = ids.clone(); labels[:, : a.length // 4] = -100                 # the first quarter is the prompt
    mask = torch.ones_like(ids)
    times = []
    for step in range(a.steps + 1):
        model.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        lp, m = model_token_logps(model, ids, mask, labels, chunked=a.way == 'chunked')
        (lp.sum() / m.sum()).backward()
        if step: times.append(time.perf_counter() - t0)                       # step 0 warms up
    grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    json.dump({'way': a.way, 'step_seconds': statistics.median(times), 'peak_rss_mb': peak_memory_mb(torch.device('cpu')),
               'logp_sum': lp.detach().sum().item(), 'grad_norm': grads.norm().item(), 'grad_head': grads[:8].tolist()}, sys.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--model_dir', default=str(HERE / '_work' / 'smollm2-135m'))
    ap.add_argument('--sequences', type=int, default=16)
    ap.add_argument('--length', type=int, default=256)
    ap.add_argument('--steps', type=int, default=2)
    ap.add_argument('--reps', type=int, default=2)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--gc', type=int, default=0, help='activation checkpointing in the backbone (both ways alike)')
    ap.add_argument('--way', choices=['all_logits', 'chunked'], help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.way: return worker(a)
    if not (Path(a.model_dir) / 'config.json').exists():
        from safe_mm_dpo.core import load_config
        from safe_mm_dpo.models import FetchModelConfig, fetch_model
        fetch_model(load_config(FetchModelConfig, output_dir=a.model_dir))
    res = {'all_logits': [], 'chunked': []}
    for r in range(a.reps):
        for way in (('all_logits', 'chunked') if r % 2 == 0 else ('chunked', 'all_logits')):
            cmd = [sys.executable, __file__, '--way', way] + [f'--{k}={v}' for k, v in vars(a).items() if k != 'way' and v is not None]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            res[way].append(json.loads(out[out.index('{'):]))
            print(f"rep {r} {way:<10} {res[way][-1]['step_seconds']:6.2f} s/step  peak RSS {res[way][-1]['peak_rss_mb']:7.0f} MB", flush=True)
    V = 49152
    print(f"\nSmolLM2-135M, LoRA r=16 (q, v), {a.sequences} sequences × {a.length} tokens, {a.threads} threads, activation checkpointing "
          f"{'on' if a.gc else 'off'}; {a.steps} timed steps per process, {a.reps} processes per way, alternated. The full logits of the batch: "
          f"{a.sequences * a.length * V * 4 / 2**30:.2f} GiB in float32.\n")
    print('| way | s/step (median, min–max) | peak RSS MB (median, min–max) |\n|---|---|---|')
    for way, rs in res.items():
        t, m = [x['step_seconds'] for x in rs], [x['peak_rss_mb'] for x in rs]
        print(f"| {way} | {statistics.median(t):.2f} ({min(t):.2f}–{max(t):.2f}) | {statistics.median(m):.0f} ({min(m):.0f}–{max(m):.0f}) |")
    a0, c0 = res['all_logits'][0], res['chunked'][0]
    tm = lambda w: statistics.median(x['step_seconds'] for x in res[w]); mm = lambda w: statistics.median(x['peak_rss_mb'] for x in res[w])
    print(f"\n- ratio chunked/all (s/step): {tm('chunked') / tm('all_logits'):.2f}; peak RSS: {mm('chunked') / mm('all_logits'):.2f}")
    print(f"- same result: log-prob sums {a0['logp_sum']:.4f} vs {c0['logp_sum']:.4f}; gradient norms {a0['grad_norm']:.6g} vs {c0['grad_norm']:.6g}")


if __name__ == '__main__':
    main()
