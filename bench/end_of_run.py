"""What the policy does over the last updates of a target-rate run, against what λ saw (issue 13).

For every row of a comparison's results file whose run kept `select_last` candidates, prints: the target; λ's own
estimates over the candidates' steps (64 greedy answers each to a slice rotating through the val pool: each update a
different slice) and the largest jump between consecutive ones; the same steps' weights measured on one fixed set of
val prompts (the candidates, `train_metrics.json` → selection) and their largest change per update; the step kept and
its share; and the gold unsafe rate on the unseen test prompts. Then, per setting, the seeds within ±5 points: gold on
test, and on val (fixed prompts) for the kept weights against the last weights (what the run would have ended with
without `select_last`).

    python bench/end_of_run.py nbs/results/controller_pilot9 [more results dirs ...]

Reads only results.jsonl; instant.
"""
import argparse
from pathlib import Path

from safe_mm_dpo.core import read_jsonl

ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
ap.add_argument('dirs', nargs='+')
a = ap.parse_args()
pct = lambda x: f'{100 * x:.1f}'
near = lambda x, t: abs(x - t) <= 0.05 + 1e-9          # within ±5 points of the target, as the comparison's table counts
for d in a.dirs:
    rows = [r for r in read_jsonl(Path(d)/'results.jsonl') if (r.get('train') or {}).get('selection')]
    print(f'\n**{d}**: {len(rows)} runs with select_last\n')
    print('| setting | seed | target | λ\'s estimates (rotating slices) | largest jump | fixed prompts (n) | largest change | kept step (of) | kept share | gold (test) |')
    print('|---|---|---|---|---|---|---|---|---|---|')
    within, val_kept, val_last = {}, {}, {}
    for r in rows:
        sel, c = r['train']['selection'], r['constraint_curve']
        cand = sel['candidates']; first = cand[0]['step']
        rot = [x for s, x in zip(c['step'], c['unsafe']) if s >= first and x is not None]
        jump = max((abs(b - a) for a, b in zip(rot, rot[1:])), default=float('nan'))
        fixed = [x['unsafe_rate'] for x in cand]
        change = max((abs(b - a) for a, b in zip(fixed, fixed[1:])), default=float('nan'))
        kept = next(x['unsafe_rate'] for x in cand if x['step'] == sel['step'])
        t = r['target_unsafe_rate']
        within.setdefault(r['setting'], []).append(near(r['unsafe_rate'], t))
        val_kept.setdefault(r['setting'], []).append(near(kept, t))
        val_last.setdefault(r['setting'], []).append(near(fixed[-1], t))   # the last candidate is the last step's weights
        print(f"| {r['setting']} | {r['seed']} | {pct(t)} | {' '.join(pct(x) for x in rot)} | {pct(jump)} | "
              f"{' '.join(pct(x) for x in fixed)} ({r['constraint']['prompts']}) | {pct(change)} | {sel['step']} ({r['train']['steps']}) | {pct(kept)} | {pct(r['unsafe_rate'])} |")
    n = lambda d: ', '.join(f'{k} {sum(v)}/{len(v)}' for k, v in d.items())
    print(f'\nwithin ±5 points of the target: gold on test {n(within)}; on val (fixed prompts), the kept weights {n(val_kept)}, '
          f'the last weights {n(val_last)}')
