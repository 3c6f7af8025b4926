"""Generation throughput on SmolLM2-135M-Instruct: plain `model.generate` one prompt at a time and at batch 8, against
the package's `models.generate` (prompts sorted by length, batches of 32, KV cache, each answer stopped at its end
token), in float32 and under bfloat16 autocast. Greedy decoding everywhere, the same prompts, the same new-token cap.

It prints new tokens/s per method (new tokens counted the same way for all: the answer text re-tokenized), the speed-up
over one prompt at a time, and how many answers differ from the float32 one-prompt-at-a-time answers (batching pads
prompts on the left, and bfloat16 rounds: either can flip a greedy choice). Nothing is asserted.

    python bench/generation.py                       # converts SmolLM2 into bench/_work/smollm2-135m on first use
    python bench/generation.py --prompts 48 --max_new_tokens 64 --threads 2

Prompts: BeaverTails-Evaluation and XSTest from ../shared/data when present (half each), else SafetyWorld's test
prompts. The methods run one after another in this process, in the order listed, after one warm-up call each.
"""
import argparse, json, platform, time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / 'shared' / 'data'


def prompts_for(n: int) -> list[str]:
    from safe_mm_dpo.data import load_prompt_set
    if (SHARED / 'beavertails_eval_700.jsonl').exists() and (SHARED / 'xstest_prompts.jsonl').exists():
        bt = [p['prompt'] for p in load_prompt_set(SHARED / 'beavertails_eval_700.jsonl')[::7]]
        xs = [p['prompt'] for p in load_prompt_set(SHARED / 'xstest_prompts.jsonl')[::5]]
        mixed = [p for pair in zip(bt, xs) for p in pair]
        return mixed[:n]
    from safe_mm_dpo.safetyworld import all_tasks
    return sorted(all_tasks())[:: max(1, len(all_tasks()) // n)][:n]


def plain_generate(model, tok, prompts, max_new_tokens, batch):
    "transformers' generate as a user would call it: chat template, left padding, greedy, batches in the given order."
    import torch
    from safe_mm_dpo.models import end_token_id
    tok.padding_side = 'left'
    out = []
    for s in range(0, len(prompts), batch):
        texts = [tok.apply_chat_template([{'role': 'user', 'content': p}], tokenize=False, add_generation_prompt=True) for p in prompts[s:s + batch]]
        enc = tok(texts, return_tensors='pt', padding=True, add_special_tokens=False)
        with torch.no_grad():
            g = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id, eos_token_id=end_token_id(tok))
        out += [t.strip() for t in tok.batch_decode(g[:, enc['input_ids'].shape[1]:], skip_special_tokens=True)]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--model_dir', default=str(HERE / '_work' / 'smollm2-135m'))
    ap.add_argument('--prompts', type=int, default=48)
    ap.add_argument('--max_new_tokens', type=int, default=64)
    ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args()
    import torch, transformers
    torch.set_num_threads(a.threads)
    from safe_mm_dpo.core import load_config
    from safe_mm_dpo.models import FetchModelConfig, fetch_model, generate, load_model, load_tokenizer
    d = Path(a.model_dir)
    if not (d / 'config.json').exists(): fetch_model(load_config(FetchModelConfig, output_dir=str(d)))
    tok, model = load_tokenizer(d), load_model(d, trainable=False)
    prompts = prompts_for(a.prompts)
    count = lambda answers: sum(len(tok(x, add_special_tokens=False)['input_ids']) for x in answers)

    def ours(autocast):
        return lambda ps: [x[0] for x in generate(model, tok, ps, max_new_tokens=a.max_new_tokens, batch_size=32, max_prompt_length=256, autocast=autocast)]
    methods = {
        'hf_one_at_a_time': lambda ps: plain_generate(model, tok, ps, a.max_new_tokens, 1),
        'hf_batch8': lambda ps: plain_generate(model, tok, ps, a.max_new_tokens, 8),
        'ours_float32': ours(False),
        'ours_bf16_autocast': ours(True),
    }
    res, answers = {}, {}
    for name, fn in methods.items():
        fn(prompts[:2])                                    # warm-up
        t0 = time.perf_counter(); ans = fn(prompts); dt = time.perf_counter() - t0
        answers[name] = ans
        res[name] = {'seconds': dt, 'new_tokens': count(ans), 'tokens_per_s': count(ans) / dt}
        print(f"{name:<20} {dt:7.1f} s  {res[name]['new_tokens']:6d} new tokens  {res[name]['tokens_per_s']:7.1f} new tok/s", flush=True)
    base = res['hf_one_at_a_time']['tokens_per_s']
    print(f"\nMachine: {platform.processor() or platform.machine()}, {a.threads} threads; torch {torch.__version__}, transformers "
          f"{transformers.__version__}; {date.today()}; {len(prompts)} prompts, greedy, at most {a.max_new_tokens} new tokens.\n")
    print('| method | new tokens/s | × one at a time | answers differing from float32 one-at-a-time |')
    print('|---|---|---|---|')
    for name, r in res.items():
        diff = sum(x != y for x, y in zip(answers[name], answers['hf_one_at_a_time']))
        print(f"| {name} | {r['tokens_per_s']:.1f} | {r['tokens_per_s'] / base:.2f} | {diff} of {len(prompts)} |")
    out = HERE / '_work' / 'generation.json'
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({'results': res, 'answers': answers, 'prompts': prompts}, indent=1))


if __name__ == '__main__':
    main()
