"""Do the cost model's category heads see what the gold judge sees on subjects they never saw? (issue 15)

For a finished per-category comparison (default: nbs/results/categories_val), scores every policy answer to a harmful
*test* prompt (subjects that neither the policy nor the judges trained on) with each head of the comparison's cost
model, and prints per category: the share of answers the head flags unsafe (C_k > 0), the share the gold judge flags,
and how often the two agree. Same answers for both, so any gap is the head's, not the prompts'.

    python bench/category_heads_vs_gold.py [results_dir] [--settings per_category]

Needs the comparison's models (models/harmless_cm) and eval folders, which `safe-mm-dpo compare --config <its config>`
regenerates; one pass over the answers of every run, seconds on a CPU.
"""
import argparse, collections
from pathlib import Path

from safe_mm_dpo.core import read_jsonl
from safe_mm_dpo.reward import judge_heads, load_judge, score


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('results_dir', nargs='?', default='nbs/results/categories_val')
    ap.add_argument('--settings', default='per_category', help="comma-separated settings whose answers are scored ('' : all)")
    a = ap.parse_args()
    root = Path(a.results_dir); cm = root/'models'/'harmless_cm'
    if not cm.exists(): raise SystemExit(f'{cm} not found: run the comparison first (its models are not committed)')
    heads = judge_heads(cm)
    if len(heads) < 2: raise SystemExit(f'{cm} has no category heads (judge_heads: {heads})')
    model, tok = load_judge(cm)
    want = set(filter(None, a.settings.split(',')))
    rows = []
    for g in sorted((root/'eval').glob('*@s*/generations.jsonl')):
        if want and g.parent.name.split('@s')[0] not in want: continue
        rows += [r for r in read_jsonl(g) if r['kind'] == 'harmful' and r['category'] in heads]
    if not rows: raise SystemExit(f'no harmful test answers of settings {sorted(want) or "all"} under {root}/eval')
    c = -score(model, tok, [r['prompt'] for r in rows], [r['answer'] for r in rows], head=None)   # (N, heads): cost C = −R_S
    by = collections.defaultdict(lambda: [0, 0, 0, 0, 0])         # answers, head k flags, total head flags, gold flags, head k agrees
    for r, ck in zip(rows, c):
        k = r['category']; h = bool(ck[heads.index(k)] > 0); t = bool(ck[0] > 0); gold = bool(r['gold']['unsafe'])
        for key in (k, 'all categories'):
            b = by[key]; b[0] += 1; b[1] += h; b[2] += t; b[3] += gold; b[4] += h == gold
    print(f'{root}: {len(rows)} answers to harmful test prompts ({a.settings or "all settings"}); cost model heads: {len(heads) - 1} categories + total')
    print(f'| category | answers | head k: unsafe | total head: unsafe | gold: unsafe | head k agrees with gold |\n|---|---|---|---|---|---|')
    for k in sorted(by, key=lambda k: (k.startswith('all'), k)):
        n, h, t, gd, ag = by[k]
        print(f'| {k} | {n} | {h / n:.1%} | {t / n:.1%} | {gd / n:.1%} | {ag / n:.1%} |')


if __name__ == '__main__':
    main()
