"""How close can a target unsafe rate be met, given how it is measured? (issue 13)

For every setting of a comparison's results file that states a target unsafe rate d, prints:
- what measurement alone allows: the binomial standard deviation of the gold rate on the n harmful test prompts if the
  policy's true rate were exactly d, the chance that such a policy still lands within ±5 points on the test set, and the
  chance of that in at least 4 of 5 seeds (the goal); and the standard deviation of one λ update's estimate from
  `jc_prompts` greedy answers at d (what the controller reacts to);
- what the runs did: the mean gold rate and its bias from d, the standard deviation over seeds, and the part of it that
  test-set sampling does not explain (sqrt(max(0, SD² − mean binomial variance)));
- over training (each row's `constraint_curve`): the range over seeds of the first estimate λ reacted to, and of λ's peak;
- where the gold rate on test departs from what λ steered: the cost model's unsafe share at the end on the val prompts
  (what λ saw) and, where the evaluation also ran the trained judges (eval judge rm), on the same test answers the gold
  judge saw: val → test (cost model) is the shift between the subjects, test (cost model) → gold is the judge's bias.

    python bench/target_noise_floor.py nbs/results/compare [more results dirs ...]

Reads only results.jsonl (and compare_config.yaml beside it for a jc_prompts the variants do not set); instant.
"""
import argparse, math, statistics
from pathlib import Path

from safe_mm_dpo.core import read_jsonl, read_yaml


def within(n:int, p:float, tol:float=0.05)->float:
    "P(|X/n − p| ≤ tol) for X ~ Binomial(n, p), exactly (with a little slack for float rounding at the edges)."
    lo, hi = math.ceil(n * (p - tol) - 1e-9), math.floor(n * (p + tol) + 1e-9)
    return sum(math.comb(n, k) * p**k * (1 - p)**(n - k) for k in range(max(lo, 0), min(hi, n) + 1))

def at_least(k:int, m:int, q:float)->float:
    "P(at least k of m independent events of probability q)."
    return sum(math.comb(m, j) * q**j * (1 - q)**(m - j) for j in range(k, m + 1))

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('results_dirs', nargs='+')
    a = ap.parse_args()
    print('| results | setting | d | seeds | test n | binomial SD at d | P(±5) at d | P(≥4/5) at d | jc_prompts | update SD at d '
          '| gold mean | bias | seed SD | beyond sampling | within ±5 | first estimate | λ peak | cost model: val (end) | cost model: test |')
    print('|---' * 19 + '|')
    for d in a.results_dirs:
        root = Path(d); rows = read_jsonl(root/'results.jsonl')
        cfg = read_yaml(root/'compare_config.yaml') if (root/'compare_config.yaml').exists() else {}
        base_m = (cfg.get('align') or {}).get('jc_prompts', 32)
        by = {}
        for r in rows:
            if r.get('target_unsafe_rate') is not None: by.setdefault(r['setting'], []).append(r)
        for s, rs in by.items():
            t = rs[0]['target_unsafe_rate']
            n = round(statistics.mean(len(r['safety_rate_outcomes']) for r in rs))
            m = int((rs[0].get('overrides') or {}).get('jc_prompts', base_m))
            u = [r['unsafe_rate'] for r in rs]
            sd = statistics.stdev(u) if len(u) > 1 else float('nan')
            var_b = statistics.mean(x * (1 - x) / len(r['safety_rate_outcomes']) for x, r in zip(u, rs))
            beyond = math.sqrt(max(0.0, sd**2 - var_b)) if len(u) > 1 else float('nan')
            q = within(n, t)
            hits = sum(abs(x - t) <= 0.05 + 1e-9 for x in u)
            curves = [r.get('constraint_curve') or {} for r in rs]
            first = [c['unsafe'][0] for c in curves if c.get('unsafe')]
            peak = [max(c['lambda']) for c in curves if c.get('lambda')]
            span = lambda v, f: f'{f(min(v))}–{f(max(v))}' if v else '—'
            mean = lambda v: f'{100*statistics.mean(v):.1f}' if v else '—'
            val_cm = [(r.get('constraint') or {}).get('unsafe_rate') for r in rs]
            test_cm = [r['cost_model_unsafe_test'] for r in rs if r.get('cost_model_unsafe_test') is not None]
            print(f'| {root.name} | {s} | {t:.0%} | {len(rs)} | {n} | {100*math.sqrt(t*(1-t)/n):.1f} | {q:.2f} | {at_least(4, 5, q):.2f} '
                  f'| {m} | {100*math.sqrt(t*(1-t)/m):.1f} | {100*statistics.mean(u):.1f} | {100*(statistics.mean(u)-t):+.1f} '
                  f'| {100*sd:.1f} | {100*beyond:.1f} | {hits}/{len(rs)} | {span(first, lambda x: f"{100*x:.0f}%")} '
                  f'| {span(peak, lambda x: f"{x:.2f}")} | {mean([x for x in val_cm if x is not None])} | {mean(test_cm)} |')


if __name__ == '__main__':
    main()
