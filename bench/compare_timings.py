"""How long a comparison's runs took, from its results file (the figures the README's comparison section quotes).

Per group of settings (target-rate runs, SACPO, every other method), the range of `run_seconds` (training and
evaluation of one run: the stages' own timings, so reused stages count with the time they took when they ran), then
per setting; the compute of all runs plus the shared stages (SFT, judges; the same sum the rendered block states);
and the largest `compare_seconds` (wall time of the `compare` process that wrote the file: if the comparison was
restarted, only the last process's time, the reused stages not counted).

    python bench/compare_timings.py nbs/results/compare

Reads only results.jsonl; instant.
"""
import argparse
from pathlib import Path

from safe_mm_dpo.core import read_jsonl

ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
ap.add_argument('dir')
a = ap.parse_args()
rows = read_jsonl(Path(a.dir)/'results.jsonl')
group = lambda r: ('target-rate runs' if r.get('target_unsafe_rate') is not None else
                   'sacpo' if r['method'] == 'sacpo' else 'every other run')
rng = lambda xs: f'{min(xs):.0f}–{max(xs):.0f} s' if xs else '—'
print(f'**{a.dir}**: {len(rows)} runs\n')
print('| group | runs | run_seconds |')
print('|---|---|---|')
for g in ('target-rate runs', 'sacpo', 'every other run'):
    xs = [r['run_seconds'] for r in rows if group(r) == g and r.get('run_seconds') is not None]
    print(f'| {g} | {len(xs)} | {rng(xs)} |')
print('\n| setting | runs | run_seconds | mean |')
print('|---|---|---|---|')
for s in dict.fromkeys(r['setting'] for r in rows):
    xs = [r['run_seconds'] for r in rows if r['setting'] == s and r.get('run_seconds') is not None]
    print(f'| {s} | {len(xs)} | {rng(xs)} | {sum(xs) / max(len(xs), 1):.0f} s |')
compute = sum(r.get('run_seconds') or 0 for r in rows) + max((r.get('shared_seconds') or 0 for r in rows), default=0)
wall = max((r.get('compare_seconds') or 0 for r in rows), default=0)
print(f'\ncompute, all runs and the shared stages: {compute / 60:.0f} min; compare_seconds (the last compare process): {wall / 60:.0f} min')
