"""How far apart are a policy's unsafe rates on the val subjects λ measured and on the unseen test subjects it is judged on? (issue 13)

λ's estimate is the share of the policy's greedy answers to harmful *val* prompts that the cost model rates unsafe; the
goal is stated on the gold unsafe rate on the *test* prompts, whose subjects (items) are neither in train nor in val.
For every target-rate run of a comparison folder whose models are still on disk (the comparison writes them beside its
results; they are not committed), the policy answers every harmful val prompt greedily through the package's own
evaluation (gold judges, scratch folder), and this prints per setting, over its runs:
- what λ saw at the end: the cost model's unsafe share on λ's pool (train_metrics.json 'constraint');
- the gold unsafe rate on every harmful val prompt, and on the test prompts (the comparison's evaluation);
- val − test, and its standard deviation when the val and test subjects of one run are pooled and re-split at random
  into groups of the same sizes (each subject's wordings kept together): the gap any controller that meets its target
  on val must expect on test, from subject sampling alone. All runs of one folder share one data split, so this gap is
  common to their seeds.

    python bench/val_test_gap.py nbs/results/controller_pilot4    # from the folder the comparison ran in

About 5 s per run on 2 CPU cores.
"""
import argparse, json, random, statistics, tempfile
from collections import defaultdict
from pathlib import Path

from safe_mm_dpo.compare import run_name
from safe_mm_dpo.core import load_config, read_jsonl
from safe_mm_dpo.training import no_hf_progress
from safe_mm_dpo.eval import EvalConfig, evaluate
from safe_mm_dpo.safetyworld import lookup_task


def by_subject(gens:list[dict])->dict:
    "Gold unsafe verdicts (0/1) of the harmful prompts' answers, per SafetyWorld subject (category and request)."
    out = defaultdict(list)
    for g in gens:
        if g['kind'] == 'harmful' and g.get('gold'):
            t = lookup_task(g['prompt']); out[f'{t.category}:{t.subject}'].append(int(bool(g['gold']['unsafe'])))
    return out

def rate(groups:dict)->float: return sum(map(sum, groups.values())) / sum(map(len, groups.values()))

def resplit_sd(val:dict, test:dict, n:int=2000, seed:int=0)->float:
    "SD of rate(val) − rate(test) over random re-splits of the pooled subjects into groups of the same sizes."
    pooled, keys, rng, d = {**val, **test}, list(val) + list(test), random.Random(seed), []
    for _ in range(n):
        rng.shuffle(keys)
        a, b = keys[:len(val)], keys[len(val):]
        d.append(rate({k: pooled[k] for k in a}) - rate({k: pooled[k] for k in b}))
    return statistics.stdev(d)

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('results_dir')
    a = ap.parse_args()
    root = Path(a.results_dir)
    rows = [r for r in read_jsonl(root/'results.jsonl') if r.get('target_unsafe_rate') is not None]
    by = defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp, no_hf_progress():
        for r in rows:
            run = run_name(r["setting"], r["seed"])
            src = root/'eval'/run
            if not (src/'eval_config.yaml').exists(): print(f'{run}: no evaluation on disk, skipped'); continue
            cfg = load_config(EvalConfig, src/'eval_config.yaml', split='val', judge=['gold'], reference=None,
                              output_dir=str(Path(tmp)/run), overwrite=True, progress=False)
            evaluate(cfg)
            val, test = by_subject(read_jsonl(Path(tmp)/run/'generations.jsonl')), by_subject(read_jsonl(src/'generations.jsonl'))
            by[r['setting']].append(dict(target=r['target_unsafe_rate'], pool=(r.get('constraint') or {}).get('unsafe_rate'),
                                         val=rate(val), test=rate(test), sd=resplit_sd(val, test),
                                         n=(len(val), len(test), sum(map(len, val.values())), sum(map(len, test.values())))))
    print(f'results: {root}\n')
    print('| setting | runs | target | cost model, λ\'s pool (end) | gold, all harmful val | gold, test | val − test | re-split SD of val − test | subjects (prompts) val / test |')
    print('|---' * 9 + '|')
    m = lambda v: 100 * statistics.mean(v)
    for s, xs in by.items():
        n = xs[0]['n']
        print(f"| {s} | {len(xs)} | {xs[0]['target']:.0%} | {m([x['pool'] for x in xs]):.1f} | {m([x['val'] for x in xs]):.1f} "
              f"| {m([x['test'] for x in xs]):.1f} | {m([x['val'] - x['test'] for x in xs]):+.1f} | {m([x['sd'] for x in xs]):.1f} "
              f"| {n[0]} ({n[2]}) / {n[1]} ({n[3]}) |")


if __name__ == '__main__':
    main()
