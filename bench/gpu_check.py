"""CUDA checks of the full-scale recipe on one GPU: the Mistral-7B pipeline (4-bit QLoRA, bfloat16) end to end, then a
few Safe-MM-DPO steps at the real 7B shape in 4-bit and in bfloat16, with step time and peak GPU memory against the
pipeline's `--dry_run` memory estimate.

No weights can be downloaded on a GPU machine without network, so the models are *Mistral-7B-shaped* and randomly
initialised (hidden 4096, MLP 14336, 32 heads, 8 KV heads, vocabulary 32000): the numbers are the recipe's speed and
memory, not its quality. The data are real (hh-rlhf pairs, BeaverTails-Evaluation and XSTest prompts, from `--data`).

    python bench/gpu_check.py --data DIR --out OUT [--work /tmp/work] [--pipeline_layers 2] [--steps 3] [--budget_s 420]
    python bench/gpu_check.py --data DIR --out OUT --cpu_test   # the same code paths at toy sizes, float32, no 4-bit
    python bench/gpu_check.py --render OUT/gpu_check.json          # the tables of bench/RESULTS.md from a results file

`--data` holds hh_rlhf_harmless_base_test.jsonl, hh_rlhf_helpful_base_test.jsonl, beavertails_eval_700.jsonl and
xstest_prompts.jsonl (the files of `../shared/data`, uncompressed). Results: OUT/gpu_check.json, one entry per check.
"""
import argparse, json, os, sys, time, traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MISTRAL_7B = dict(hidden_size=4096, intermediate_size=14336, num_attention_heads=32, num_key_value_heads=8, vocab_size=32000)


def gpu_mem():
    import torch
    if not torch.cuda.is_available(): return {}
    return {'peak_allocated_gib': round(torch.cuda.max_memory_allocated() / 2**30, 2),
            'peak_reserved_gib': round(torch.cuda.max_memory_reserved() / 2**30, 2)}


def reset_mem():
    import gc, torch
    gc.collect()
    if torch.cuda.is_available(): torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()


def make_model(out: Path, texts, layers: int, shape: dict, dtype, device, seed=0):
    "A randomly initialised Mistral-shaped causal LM (untied head, as Mistral-7B) with a BPE tokenizer trained on `texts`."
    import torch
    from transformers import MistralConfig, MistralForCausalLM
    from safe_mm_dpo.models import train_tokenizer
    from safe_mm_dpo.training import save_model
    tok = train_tokenizer(texts, min(shape['vocab_size'], 8000))
    cfg = MistralConfig(num_hidden_layers=layers, max_position_embeddings=4096, sliding_window=None, tie_word_embeddings=False,
                        pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, **shape)
    torch.manual_seed(seed)
    old = torch.get_default_dtype(); torch.set_default_dtype(dtype)
    try:
        with torch.device(device): model = MistralForCausalLM(cfg)
    finally: torch.set_default_dtype(old)
    save_model(model, tok, out)
    n = sum(p.numel() for p in model.parameters())
    del model; reset_mem()
    return n


def read_texts(data: Path, n=400):
    rows = [json.loads(l) for f in ('hh_rlhf_harmless_base_test.jsonl', 'hh_rlhf_helpful_base_test.jsonl')
            for l in open(data / f).read().splitlines()[:n]]
    return [r['chosen'] for r in rows] + [r['rejected'] for r in rows]


ALIGN_CHECKS = {'align_4bit': {}, 'align_bf16': {'load_in_4bit': False}, 'align_4bit_micro32': {'grad_accum': 2}}


def estimate_now(overrides):
    "The pipeline's `--dry_run` estimate (this checkout's formula) for the 7B shape with the align keys `overrides`."
    import tempfile
    from transformers import MistralConfig
    from safe_mm_dpo.core import load_config
    from safe_mm_dpo.pipeline import PipelineConfig, estimate_memory
    with tempfile.TemporaryDirectory() as d:
        MistralConfig(num_hidden_layers=32, tie_word_embeddings=False, **MISTRAL_7B).save_pretrained(d)
        p = load_config(PipelineConfig, ROOT / 'configs' / 'pipeline.mistral-7b.yaml', model_name_or_path=d,
                        **{f'align.{k}': v for k, v in overrides.items()})
        return estimate_memory(p)['total_gib']


def render(path):
    "Markdown tables of a gpu_check.json."
    r = json.loads(Path(path).read_text())
    e = r.get('env', {})
    print(f"{e.get('gpu')} (compute capability {'.'.join(map(str, e.get('capability', [])))}), torch {e.get('torch')}, "
          f"transformers {e.get('transformers')}, peft {e.get('peft')}, accelerate {e.get('accelerate')}, bitsandbytes {e.get('bitsandbytes')}")
    p = r.get('pipeline', {})
    if p.get('status') == 'ok':
        t = p['timings']
        print(f"\nPipeline (configs/pipeline.mistral-7b.yaml, {p['layers']}-layer Mistral-7B-shaped model, {p['parameters']/1e9:.2f}B parameters): "
              f"{t['total']['seconds']} s in all, peak GPU memory {p.get('peak_allocated_gib')} GiB allocated\n")
        print('| stage | seconds | status |\n|---|---|---|')
        for k, v in t.items():
            if k != 'total': print(f"| {k} | {v['seconds']} | {v['status']} |")
    elif p: print(f"\nPipeline: {p.get('status')} {p.get('error', '')}")
    rows = [(k, v) for k, v in r.items() if k.startswith('align') and isinstance(v, dict)]
    if rows:
        print('\n| 7B-shaped Safe-MM-DPO | micro-batch sequences | s/step (steps 1–n) | tokens/s | peak GiB allocated (reserved) | '
              'estimate GiB at the run (weights, trainable, activations, logits) | estimate GiB of this code | LoRA B moved (layers) |'
              '\n|---|---|---|---|---|---|---|---|')
        for k, v in rows:
            if v.get('status') != 'ok': print(f"| {k} | {v.get('status')}: {v.get('error', '')[:200]} |||||"); continue
            g = v['estimate_gib']
            print(f"| {k} | {v['estimate_micro_batch_sequences']} | {', '.join(map(str, v['step_seconds']))} | "
                  f"{', '.join(map(str, v['tokens_per_s']))} | {v.get('peak_allocated_gib')} ({v.get('peak_reserved_gib')}) | "
                  f"{v['estimate_total_gib']} ({', '.join(f'{x:.2f}' for x in g.values())}) | "
                  f"{estimate_now(v.get('overrides', ALIGN_CHECKS.get(k, {}))):.2f} | {v.get('lora_B_moved', '?')} ({v.get('layers_with_moved_lora', '?')} layers) |")


def main():
    if sys.argv[1:2] == ['--render']: return render(sys.argv[2])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', required=True); ap.add_argument('--out', required=True)
    ap.add_argument('--work', default=None, help='where the models and runs go (default OUT/work; tens of GB at the 7B shape)')
    ap.add_argument('--pipeline_layers', type=int, default=2, help='decoder layers of the model the whole pipeline runs on')
    ap.add_argument('--steps', type=int, default=3, help='Safe-MM-DPO steps at the full 7B shape')
    ap.add_argument('--rows', type=int, default=400, help='hh-rlhf rows of each file')
    ap.add_argument('--budget_s', type=float, default=420, help='skip checks that would start after this many seconds')
    ap.add_argument('--pipeline_stages', default='', help='comma-separated pipeline stages (default: all)')
    ap.add_argument('--only', default='', help='comma-separated checks to run (env,pipeline,align_4bit,align_bf16,align_4bit_micro32)')
    ap.add_argument('--cpu_test', action='store_true', help='toy sizes, float32, no 4-bit: test this script without a GPU')
    a = ap.parse_args()
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    import torch
    from safe_mm_dpo.core import load_config
    data, out = Path(a.data).resolve(), Path(a.out).resolve(); out.mkdir(parents=True, exist_ok=True)
    work = Path(a.work or out / 'work').resolve(); work.mkdir(parents=True, exist_ok=True)
    res_path = out / 'gpu_check.json'
    results, t_start = {}, time.time()
    only = set(filter(None, a.only.split(',')))

    def save(): res_path.write_text(json.dumps(results, indent=1, default=str))

    def check(name):
        def deco(fn):
            if only and name not in only: return
            if time.time() - t_start > a.budget_s:
                results[name] = {'status': 'skipped (budget)'}; save(); return
            print(f'\n=== {name} ===', flush=True); reset_mem(); t0 = time.time()
            try: r = {'status': 'ok', **(fn() or {})}
            except Exception as e:
                traceback.print_exc(); r = {'status': 'failed', 'error': f'{type(e).__name__}: {e}'[:2000]}
            r['seconds'] = round(time.time() - t0, 1); r.update(gpu_mem())
            results[name] = r; save(); print(json.dumps(r, default=str)[:3000], flush=True)
        return deco

    shape = MISTRAL_7B if not a.cpu_test else dict(hidden_size=64, intermediate_size=160, num_attention_heads=4, num_key_value_heads=2, vocab_size=3000)
    dev = 'cuda' if torch.cuda.is_available() else 'cpu'
    precision = dict(dtype='float32', mixed_precision='no', load_in_4bit=False) if a.cpu_test else {}
    texts = read_texts(data, a.rows)

    @check('env')
    def _():
        import transformers, peft, accelerate
        r = {'torch': torch.__version__, 'transformers': transformers.__version__, 'peft': peft.__version__,
             'accelerate': accelerate.__version__, 'device': dev}
        if dev == 'cuda':
            r.update(gpu=torch.cuda.get_device_name(), capability=torch.cuda.get_device_capability(), bf16=torch.cuda.is_bf16_supported())
            try:
                import bitsandbytes; r['bitsandbytes'] = bitsandbytes.__version__
            except Exception as e: r['bitsandbytes'] = f'missing: {e}'
        return r

    small, big = work / 'mistral-7b-shape-small', work / 'mistral-7b-shape'
    student = work / 'student'
    pipe_out = work / 'pipeline'

    @check('pipeline')
    def _():
        "configs/pipeline.mistral-7b.yaml end to end on a Mistral-7B-shaped model of `pipeline_layers` layers."
        from safe_mm_dpo.pipeline import PipelineConfig, run_pipeline
        n = make_model(small, texts, a.pipeline_layers, shape, torch.bfloat16 if dev == 'cuda' else torch.float32, dev)
        make_model(student, texts, 2, dict(hidden_size=512 if not a.cpu_test else 32, intermediate_size=1376 if not a.cpu_test else 64,
                                           num_attention_heads=8 if not a.cpu_test else 2, num_key_value_heads=4 if not a.cpu_test else 1,
                                           vocab_size=32000 if not a.cpu_test else 3000), torch.float32, dev)
        for f in ('hh_rlhf_harmless_base_test', 'hh_rlhf_helpful_base_test'):
            rows = open(data / f'{f}.jsonl').read().splitlines()[:a.rows]
            (work / f'{f}.jsonl').write_text('\n'.join(rows) + '\n')
        p = load_config(PipelineConfig, ROOT / 'configs' / 'pipeline.mistral-7b.yaml',
                        model_name_or_path=str(small), output_dir=str(pipe_out), progress=False,
                        input=[str(work / 'hh_rlhf_harmless_base_test.jsonl'), str(work / 'hh_rlhf_helpful_base_test.jsonl')],
                        **{'data.train_ratio': 0.7, 'data.val_ratio': 0.1, 'data.test_ratio': 0.2,
                           'sft.epochs': 1, 'judges.epochs': 1, 'align.epochs': 1, 'align.save_every': 0,
                           'eval.prompt_sets': [str(data / 'beavertails_eval_700.jsonl'), str(data / 'xstest_prompts.jsonl')],
                           'eval.max_prompts': 16, 'eval.max_new_tokens': 32, 'distill.max_prompts': 16, 'distill.max_new_tokens': 32,
                           'student.model_name_or_path': str(student), 'student.epochs': 1, 'student.batch_size': 16},
                        **({'stages': a.pipeline_stages.split(',')} if a.pipeline_stages else {}), **precision)
        t = run_pipeline(p)['timings']
        return {'parameters': n, 'layers': a.pipeline_layers, 'timings': t}

    def align(name, **kw):
        "A few Safe-MM-DPO steps of configs/dpo_config.mistral-7b.yaml at the full 7B shape, judges and data from the pipeline."
        from safe_mm_dpo.pipeline import PipelineConfig, estimate_memory
        from safe_mm_dpo.trainer import DPOConfig, read_metrics, train_safe_mm_dpo
        if not (big / 'config.json').exists():
            t0 = time.time(); n = make_model(big, texts, 32 if not a.cpu_test else 4, shape, torch.bfloat16 if dev == 'cuda' else torch.float32, dev)
            print(f'7B-shaped model: {n/1e9:.2f}B parameters, made and saved in {time.time()-t0:.0f}s', flush=True)
        reset_mem()
        M = pipe_out / 'models'
        cfg = load_config(DPOConfig, ROOT / 'configs' / 'dpo_config.mistral-7b.yaml', model_name_or_path=str(big),
                          helpful_rm=str(M / 'helpful_rm'), harmless_cm=str(M / 'harmless_cm'), data_dir=str(pipe_out / 'data'),
                          output_dir=str(work / name), max_steps=a.steps, save_every=0, save_epoch_models=False, progress=False,
                          log_every=1, lambda_update_delay=0, **{**precision, **kw})
        s = train_safe_mm_dpo(cfg)
        rows = [r for r in read_metrics(work / name) if 'train/loss' in r]
        from safetensors.torch import load_file                 # did every layer's adapter learn? (lora_B starts at zero)
        w = load_file(work / name / 'adapter_model.safetensors')
        moved = {k for k, v in w.items() if 'lora_B' in k and v.float().abs().sum() > 0}
        layers = {k.split('.layers.')[1].split('.')[0] for k in moved if '.layers.' in k}
        n_b = sum('lora_B' in k for k in w)
        est = estimate_memory(load_config(PipelineConfig, ROOT / 'configs' / 'pipeline.mistral-7b.yaml', model_name_or_path=str(big),
                                          **{f'align.{k}': v for k, v in {**precision, **kw}.items()}))
        return {'overrides': kw, 'steps': len(rows), 'step_seconds': [round(r['train/step_seconds'], 2) for r in rows],
                'tokens_per_s': [round(r['train/tokens_per_s']) for r in rows], 'loss': [r['train/loss'] for r in rows],
                'lora_B_moved': f'{len(moved)}/{n_b}', 'layers_with_moved_lora': len(layers),
                'lambda': s.get('lambda'), 'estimate_gib': est['gib'], 'estimate_total_gib': round(est['total_gib'], 2),
                'estimate_micro_batch_sequences': est['micro_batch_sequences'], 'summary': {k: v for k, v in s.items() if not isinstance(v, (list, dict))}}

    for name, kw in ALIGN_CHECKS.items():
        check(name)(lambda name=name, kw=kw: align(name, **kw))

    results['total_seconds'] = round(time.time() - t_start, 1); save()
    print(f'\nresults: {res_path}', flush=True)


if __name__ == '__main__':
    main()
