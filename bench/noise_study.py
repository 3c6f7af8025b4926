"""What dynamic β buys under label noise: DPO against MM-DPO (and MM-DPO with β allowed below β_ori) on the helpful
channel, at several SafetyWorld label-noise levels, each from its own SFT reference and judges.

Run the pipelines first (each writes outputs/noise_<level>; 0.15 is also part of configs/comparison.yaml):

    for n in 0.0 0.15 0.3; do safe-mm-dpo pipeline --config configs/noise.yaml --label_noise $n --output_dir outputs/noise_$n; done
    python bench/noise_study.py outputs/noise_0.0 outputs/noise_0.15 outputs/noise_0.3

For every model it prints the gold metrics of the evaluation and the accuracy of the policy's implicit reward
h(y) = log π(y|x) − log π_ref(y|x) on the held-out test pairs against the *gold* helpfulness preference (the noise-free
label SafetyWorld keeps next to the noisy one), which is what label noise corrupts and a margin-aware β could protect.
"""
import argparse, json, os, sys
from pathlib import Path


def implicit_accuracy(model_dir, ref_dir, records, tok):
    import torch
    from safe_mm_dpo.models import encode, load_model
    from safe_mm_dpo.trainer import sequence_logps
    encs = [encode(tok, r['prompt'], r[f'response_{i}']) for r in records for i in (0, 1)]
    with torch.no_grad():
        pol = sequence_logps(load_model(model_dir, trainable=False), tok, encs)
        ref = sequence_logps(load_model(ref_dir, trainable=False), tok, encs)
    h = (pol - ref).view(-1, 2)
    pick = (h[:, 1] > h[:, 0]).long()
    gold = torch.tensor([r['gold_better_response_id'] for r in records])
    return (pick == gold).float().mean().item()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('runs', nargs='+', help='pipeline output folders')
    ap.add_argument('--models', default='aligned,dpo_helpful,mm_dpo,mm_dpo_bmin')
    a = ap.parse_args()
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    import yaml
    from safe_mm_dpo.core import read_json
    from safe_mm_dpo.data import load_split
    from safe_mm_dpo.models import load_tokenizer
    print('| label noise | model | method | implicit-reward accuracy vs gold (test pairs) | safety | helpful | over-refusal | win vs SFT |')
    print('|---|---|---|---|---|---|---|---|')
    for run in map(Path, a.runs):
        p = yaml.safe_load(open(run / 'pipeline_config.yaml'))
        recs = [r for r in load_split(run / 'data', 'test') if r.get('gold_better_response_id') in (0, 1)
                and r['gold_helpful_0'] != r['gold_helpful_1']]                  # pairs whose gold helpfulness differs
        tok = load_tokenizer(run / 'models' / 'sft')
        for name in a.models.split(','):
            d = run / 'models' / (name if name == 'aligned' else f'compare/{name}')
            if not (d / 'config.json').exists() and not (d / 'adapter_config.json').exists(): continue
            c = yaml.safe_load(open(d / 'config.yaml'))                           # the run's resolved DPOConfig
            if name == 'aligned' and c['method'] not in ('dpo_helpful', 'mm_dpo'): continue
            acc = implicit_accuracy(d, run / 'models' / 'sft', recs, tok)
            g = read_json(run / 'eval' / name / 'eval.json')['judges']['gold']['model']
            label = c['method'] + (f" (β_min {c['beta_min']})" if c.get('beta_min') is not None else '')
            print(f"| {p['label_noise']:.0%} | {name} | {label} | {acc:.1%} (n={len(recs)}) | {g['safety_rate']:.1%} | {g['helpfulness']:.1%} | "
                  f"{g['over_refusal']:.1%} | {g['vs_reference']['win_rate']:.1%} |", flush=True)


if __name__ == '__main__':
    sys.exit(main())
