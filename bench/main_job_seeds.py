"""The README's main job (`safe-mm-dpo pipeline`, the embedded default) from a fresh folder, over seeds and config variants:
its wall time and stage timings, and the gold judges' safety, helpfulness and over-refusal of the SFT, aligned and student
models on the held-out prompts, with 95 % intervals (bootstrap over seeds and, within each, over prompts).

    python bench/main_job_seeds.py --out bench/_work/main_job --seeds 0 1 2 \\
        --variant 'before:mixed_precision=no' --variant 'after:' --results bench/results/main_job_seeds.jsonl
    python bench/main_job_seeds.py --render bench/results/main_job_seeds.jsonl

A variant is 'name:key=value;key=value' with keys of `safe-mm-dpo pipeline` (dotted for a section: sft.epochs=6); the
runs go variant by variant within each seed (alternated), one at a time. A run whose row is already in --results is
skipped (the file grows; delete it to start again). Each row: variant, seed, commit, wall seconds, stage seconds, and per
model and metric the per-prompt gold outcomes.
"""
import argparse, json, os, shutil, subprocess, sys, time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODELS = ('sft', 'aligned', 'student')


def commit():
    try: return subprocess.run(['git', 'rev-parse', '--short=12', 'HEAD'], cwd=HERE, capture_output=True, text=True).stdout.strip()
    except OSError: return None


def overrides(spec):
    args = []
    for kv in filter(None, spec.split(';')):
        k, v = kv.split('=', 1)
        args += [f'--{k}', v]                          # a section key is dotted: --sft.epochs 7
    return args


def run_one(out, name, spec, seed):
    from safe_mm_dpo.compare import METRICS
    d = Path(out)/f'{name}@s{seed}'
    if d.exists(): shutil.rmtree(d)
    cmd = [sys.executable, '-m', 'safe_mm_dpo.cli', 'pipeline', '--output_dir', str(d), '--seed', str(seed), '--progress', 'false', *overrides(spec)]
    t = time.time()
    subprocess.run(cmd, check=True, env={**os.environ, 'HF_HUB_OFFLINE': '1'})
    wall = time.time() - t
    row = {'variant': name, 'overrides': spec, 'seed': seed, 'commit': commit(), 'wall_seconds': round(wall, 1),
           'stages': {k: v['seconds'] for k, v in json.loads((d/'report'/'timings.json').read_text()).items()}, 'metrics': {}}
    row['judges'] = {}
    for j in ('helpful_rm', 'harmless_cm'):                # which epoch each judge kept, and its accuracies
        jm = json.loads((d/'models'/j/'metrics.json').read_text())
        row['judges'][j] = {'best_epoch': jm.get('best_epoch'), **{f'{s}_accuracy': jm[s]['pairwise_accuracy'] for s in ('train', 'val', 'test') if s in jm}}
    for m in MODELS:
        gens = [json.loads(l) for l in open(d/'eval'/m/'generations.jsonl')]
        row['metrics'][m] = {k: [int(bool(f(g['gold']))) for g in gens if g['kind'] == kind and g.get('gold')] for k, (kind, f) in METRICS.items()}
    return row


def render(path):
    import numpy as np
    from safe_mm_dpo.compare import METRICS, seed_prompt_ci
    rows = [json.loads(l) for l in open(path)]
    names = list(dict.fromkeys(r['variant'] for r in rows))
    print(f'{len(rows)} runs from {path}; commits {sorted({r["commit"] for r in rows})}')
    print('| variant | overrides | seeds | wall s (each seed) | mean wall |')
    print('|---|---|---|---|---|')
    for n in names:
        rs = [r for r in rows if r['variant'] == n]
        print(f"| {n} | `{rs[0]['overrides'] or '(defaults)'}` | {len(rs)} | {' / '.join(str(r['wall_seconds']) for r in rs)} | "
              f"{np.mean([r['wall_seconds'] for r in rs]):.0f} |")
    stages = list(dict.fromkeys(k for r in rows for k in r['stages'] if k != 'total'))
    print('\nstage seconds (mean over seeds):\n')
    print('| variant | ' + ' | '.join(stages) + ' |'); print('|---|' + '---|' * len(stages))
    for n in names:
        rs = [r for r in rows if r['variant'] == n]
        print(f'| {n} | ' + ' | '.join(f"{np.mean([r['stages'].get(s, 0) for r in rs]):.1f}" for s in stages) + ' |')
    jr = [r for r in rows if r.get('judges')]
    if jr:
        print('\njudges (runs that recorded them): epoch kept (best val accuracy) and test pairwise accuracy, per seed:\n')
        print('| variant | judge | epoch kept | test accuracy |'); print('|---|---|---|---|')
        for n in names:
            for j in ('helpful_rm', 'harmless_cm'):
                rs = [r for r in jr if r['variant'] == n]
                acc = ' / '.join('%.3f' % r['judges'][j]['test_accuracy'] for r in rs)
                if rs: print(f"| {n} | {j} | {' / '.join(str(r['judges'][j]['best_epoch']) for r in rs)} | {acc} |")
    print('\ngold judges on the held-out prompts, mean over seeds [95 % interval over seeds and prompts]:\n')
    print('| model | variant | ' + ' | '.join(METRICS) + ' |'); print('|---|---|' + '---|' * len(METRICS))
    for m in MODELS:
        for n in names:
            rs = [r for r in rows if r['variant'] == n]
            cells = []
            for k in METRICS:
                mean, lo, hi = seed_prompt_ci([r['metrics'][m][k] for r in rs])
                cells.append(f'{100*mean:.1f} % [{100*lo:.1f}–{100*hi:.1f}]')
            print(f'| {m} | {n} | ' + ' | '.join(cells) + ' |')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', default=str(HERE/'_work'/'main_job')); ap.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    ap.add_argument('--variant', action='append', default=[]); ap.add_argument('--results', default=None)
    ap.add_argument('--render', default=None)
    a = ap.parse_args()
    if a.render: return render(a.render)
    if not a.results or not a.variant: ap.error('--results and at least one --variant are needed (or --render FILE)')
    done = {(r['variant'], r['seed']) for r in map(json.loads, open(a.results))} if Path(a.results).exists() else set()
    for s in a.seeds:
        for v in a.variant:
            name, spec = v.split(':', 1)
            if (name, s) in done: continue
            row = run_one(a.out, name, spec, s)
            with open(a.results, 'a') as f: f.write(json.dumps(row) + '\n')
            print(f"[main_job_seeds] {name} seed {s}: {row['wall_seconds']} s", flush=True)
            shutil.rmtree(Path(a.out)/f'{name}@s{s}')           # the models of a run are not kept (the row is)
    render(a.results)


if __name__ == '__main__':
    main()
