"""The precompute pass: records/s of reference log-probs and judge scores, and the cache hit of a second run.

    python bench/precompute.py [--stack bench/_work/stack] [--threads 2]
"""
import argparse, os, sys, tempfile, time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--stack', default=str(HERE / '_work' / 'stack')); ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args()
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    import torch; torch.set_num_threads(a.threads)
    sys.path.insert(0, str(HERE))
    from train_throughput import build_stack
    from accelerate import Accelerator
    from safe_mm_dpo.core import load_config
    from safe_mm_dpo.data import load_split
    from safe_mm_dpo.trainer import DPOConfig, precompute
    stack = Path(a.stack); build_stack(stack, a.threads)
    recs = load_split(stack / 'data', 'train')
    with tempfile.TemporaryDirectory() as d:
        cfg = load_config(DPOConfig, data_dir=str(stack / 'data'), model_name_or_path=str(stack / 'models' / 'sft'), cache_dir=d,
                          helpful_rm=str(stack / 'models' / 'helpful_rm'), harmless_cm=str(stack / 'models' / 'harmless_cm'), progress=False)
        acc = Accelerator(cpu=True)
        ref = str(stack / 'models' / 'sft')
        t = time.perf_counter(); p1 = precompute(cfg, recs, 'train', ref, acc); t1 = time.perf_counter() - t
        t = time.perf_counter(); p2 = precompute(cfg, recs, 'train', ref, acc); t2 = time.perf_counter() - t
        cfg2 = load_config(DPOConfig, **{**cfg.__dict__, 'helpful_rm': cfg.harmless_cm})   # another judge → another key
        t = time.perf_counter(); p3 = precompute(cfg2, recs[:200], 'train', ref, acc); t3 = time.perf_counter() - t
    n = len(recs)
    print(f'{n} records × 2 responses: reference log-probs + helpful RM + cost model scores')
    print(f'  first run (computed):  {t1:6.2f} s  = {n / t1:7.0f} records/s   cache hit: {p1.cache_hit}')
    print(f'  second run (cached):   {t2:6.2f} s  = {n / t2:7.0f} records/s   cache hit: {p2.cache_hit}')
    print(f'  changed judge, 200 records: cache hit: {p3.cache_hit} ({t3:.2f} s)')
    print(f'(torch {torch.__version__}, {os.cpu_count()} cores, {a.threads} threads)')


if __name__ == '__main__':
    sys.exit(main())
