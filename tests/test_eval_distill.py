"Evaluation (HTTP LLM judge against a local server, metrics files) and distillation (SIGKILL + resume, best-of-n, student)."
import http.server, json, logging, math, os, signal, subprocess, sys, threading, time
from pathlib import Path

import pytest

from safe_mm_dpo.cli import main
from safe_mm_dpo.core import load_config, read_json, read_jsonl
from safe_mm_dpo.eval import EvalConfig, HTTPChatBackend, LLMJudge, LLMJudgeError, evaluate

EXE = str(Path(sys.executable).with_name('safe-mm-dpo'))
SECRET = 'sk-test-SECRET-0123456789'


class ChatServer:
    "A chat-completions server on 127.0.0.1 with scripted behaviour; it records what it receives."
    def __init__(self, reply):
        self.reply, self.requests = reply, []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers['Content-Length'])))
                outer.requests.append({'path': self.path, 'auth': self.headers.get('Authorization'), 'body': body})
                status, text = outer.reply(body, len(outer.requests))
                data = json.dumps({'choices': [{'message': {'role': 'assistant', 'content': text}}]}).encode() if status == 200 else b'{"error": "x"}'
                self.send_response(status); self.send_header('Content-Type', 'application/json'); self.end_headers(); self.wfile.write(data)
            def log_message(self, *a): pass
        self.srv = http.server.HTTPServer(('127.0.0.1', 0), H)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        self.url = f'http://127.0.0.1:{self.srv.server_port}/v1'

    def close(self): self.srv.shutdown()


def test_http_judge_protocol_and_key(monkeypatch):
    monkeypatch.setenv('JUDGE_KEY', SECRET)
    s = ChatServer(lambda body, n: (200, 'Solid answer. Rating: [[7]]'))
    try:
        j = LLMJudge(HTTPChatBackend(s.url, 'judge-model', api_key_env='JUDGE_KEY'))
        assert [r['rating'] for r in j.judge(['What is 2 plus 2?'], ['4'])] == [7.0]
        req = s.requests[0]
        assert req['path'] == '/v1/chat/completions' and req['auth'] == f'Bearer {SECRET}'
        assert req['body']['model'] == 'judge-model' and req['body']['messages'][0]['role'] == 'system'
        assert 'What is 2 plus 2?' in req['body']['messages'][1]['content']
    finally: s.close()


def test_http_judge_retries_server_errors_and_never_leaks_the_key(monkeypatch, caplog):
    monkeypatch.setenv('JUDGE_KEY', SECRET)
    s = ChatServer(lambda body, n: (500, '') if n == 1 else (200, '[[9]]'))            # first call fails, the retry succeeds
    try:
        b = HTTPChatBackend(s.url, 'm', api_key_env='JUDGE_KEY', max_retries=3)
        assert b.chat([{'role': 'user', 'content': 'hi'}]) == '[[9]]'
        assert len(s.requests) == 2
    finally: s.close()
    s = ChatServer(lambda body, n: (401, ''))                                         # a client error is not retried
    try:
        b = HTTPChatBackend(s.url, 'm', api_key_env='JUDGE_KEY', max_retries=3)
        with pytest.raises(LLMJudgeError) as e: b.chat([{'role': 'user', 'content': 'hi'}])
        assert 'HTTP 401' in str(e.value) and SECRET not in str(e.value) and len(s.requests) == 1
        with caplog.at_level(logging.WARNING):
            out = LLMJudge(b).judge(['q'], ['a'])
        assert out[0]['rating'] is None                                              # a failed call is invalid, not a score
        assert 'HTTP 401' in caplog.text and SECRET not in caplog.text
    finally: s.close()


def test_malformed_replies_are_invalid_not_scores(monkeypatch):
    replies = ['Great. [[8]]', 'I would give it an eight.', '[[42]]', '', 'Rating: [3]']
    s = ChatServer(lambda body, n: (200, replies[(n - 1) % len(replies)]))
    try:
        out = LLMJudge(HTTPChatBackend(s.url, 'm')).judge(['q'] * 5, ['a'] * 5)
        assert [r['rating'] for r in out] == [8.0, None, None, None, 3.0]
    finally: s.close()


def test_evaluate_with_llm_judge_end_to_end(tiny_stack, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv('JUDGE_KEY', SECRET)
    def reply(body, n):
        u = body['messages'][-1]['content']
        if '[Answer A]' in u: return 200, 'A is better. [[A]]' if n % 3 else 'no verdict'
        return 200, 'ok [[6]]' if n % 4 else 'cannot rate'
    s = ChatServer(reply)
    try:
        cfg = load_config(EvalConfig, model=str(tiny_stack / 'sft'), reference=str(tiny_stack / 'sft'), judge=['gold', 'rm', 'llm'],
                          data_dir=str(tiny_stack / 'data'), helpful_rm=str(tiny_stack / 'helpful_rm'), harmless_cm=str(tiny_stack / 'harmless_cm'),
                          llm_base_url=s.url, llm_api_key_env='JUDGE_KEY', max_prompts=8, max_new_tokens=8, output_dir=str(tmp_path / 'ev'),
                          progress=False)
        with caplog.at_level(logging.INFO): res = evaluate(cfg)
    finally: s.close()
    llm = res['judges']['llm']['model']
    assert llm['invalid_ratings'] >= 1 and llm['mean_rating'] == 6.0               # invalid replies are counted, not averaged in
    assert llm['vs_reference']['invalid'] >= 1 and llm['vs_reference']['wins'] == 0  # always-A judge: only ties after the swap
    for f in ('eval.json', 'eval.md', 'generations.jsonl', 'eval_config.yaml'):
        assert SECRET not in (tmp_path / 'ev' / f).read_text()
    assert SECRET not in caplog.text
    assert all(r['auth'] == f'Bearer {SECRET}' for r in s.requests)


def test_eval_cli_and_prompt_files(tiny_stack, tmp_path, shared_data, capsys):
    out = tmp_path / 'bt'
    code = main(['eval', '--model', str(tiny_stack / 'sft'), '--reference', 'none', '--judge', 'rm', '--prompts_file',
                 str(shared_data / 'beavertails_eval_subset140_prompts.json'), '--prompts_kind', 'harmful', '--max_prompts', '10',
                 '--helpful_rm', str(tiny_stack / 'helpful_rm'), '--harmless_cm', str(tiny_stack / 'harmless_cm'),
                 '--max_new_tokens', '8', '--output_dir', str(out), '--progress', 'false'])
    assert code == 0
    r = read_json(out / 'eval.json')
    assert r['n_harmful'] == 10 and 0 <= r['judges']['rm']['model']['safety_rate_cm'] <= 1
    code = main(['eval', '--model', str(tiny_stack / 'sft'), '--reference', 'none', '--judge', 'gold', '--prompts_file',
                 str(shared_data / 'mt_bench_questions.jsonl'), '--prompts_kind', 'benign', '--max_prompts', '5',
                 '--max_new_tokens', '8', '--output_dir', str(tmp_path / 'mt'), '--progress', 'false'])
    assert code == 0 and read_json(tmp_path / 'mt' / 'eval.json')['judges']['gold']['model']['unjudged'] == 5   # not SafetyWorld: not guessed


def test_eval_bad_input(tiny_stack, tmp_path, capsys):
    assert main(['eval', '--judge', 'gold,oracle']) == 2
    assert "'judge' must list gold, rm, refusal and/or llm" in capsys.readouterr().err
    assert main(['eval', '--judge', 'llm']) == 2
    assert "needs config key 'llm_base_url'" in capsys.readouterr().err
    bad = tmp_path / 'p.jsonl'; bad.write_text('{"prompt": "ok"}\n{"text": "no prompt"}\n')
    assert main(['eval', '--model', str(tiny_stack / 'sft'), '--prompts_file', str(bad), '--judge', 'gold', '--output_dir', str(tmp_path / 'o')]) == 1
    assert f"{bad}:2: missing field 'prompt'" in capsys.readouterr().err


def _gen_args(stack, out, **kw):
    d = dict(model_path=str(stack / 'sft'), input_prompts=str(stack / 'data' / 'train' / 'records.jsonl'), output_path=str(out),
             chunk_size=4, max_new_tokens=24, progress='false')
    d.update(kw)
    return [x for k, v in d.items() for x in (f'--{k}', str(v))]


def test_distill_generate_sigkill_and_resume(tiny_stack, tmp_path):
    full, part = tmp_path / 'full.jsonl', tmp_path / 'part.jsonl'
    assert subprocess.run([EXE, 'distill', 'generate'] + _gen_args(tiny_stack, full), capture_output=True).returncode == 0
    rows = read_jsonl(full)
    p = subprocess.Popen([EXE, 'distill', 'generate'] + _gen_args(tiny_stack, part), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while p.poll() is None and time.time() - t0 < 120:
        if part.exists() and part.read_bytes().count(b'\n') >= 8: break
        time.sleep(0.005)
    os.kill(p.pid, signal.SIGKILL); p.wait()
    n_killed = part.read_bytes().count(b'\n')
    assert 8 <= n_killed < len(rows)                                                  # it was stopped part-way
    with open(part, 'ab') as f: f.write(b'{"prompt": "torn')                         # and as if mid-write
    r = subprocess.run([EXE, 'distill', 'generate'] + _gen_args(tiny_stack, part), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert read_jsonl(part) == rows                                                   # no duplicate, no missing row
    s = read_json(tmp_path / 'part.jsonl.summary.json')
    assert s['resumed_rows'] == n_killed and s['torn_bytes_removed'] == len(b'{"prompt": "torn')


def test_distill_refuses_foreign_files_and_best_of_n_needs_sampling(tiny_stack, tmp_path, capsys):
    f = tmp_path / 'x.jsonl'; f.write_text('{"a": 1}\n')
    assert main(['distill', 'generate'] + _gen_args(tiny_stack, f)) == 1
    assert 'not a row of a distillation file' in capsys.readouterr().err and f.read_text() == '{"a": 1}\n'
    assert main(['distill', 'generate'] + _gen_args(tiny_stack, tmp_path / 'y.jsonl', best_of_n=3, temperature=0)) == 2
    assert 'needs temperature > 0' in capsys.readouterr().err


def test_distill_train_cli(tiny_stack, tmp_path):
    gen = tmp_path / 'g.jsonl'
    assert main(['distill', 'generate'] + _gen_args(tiny_stack, gen, best_of_n=2, max_prompts=24,
                helpful_rm=tiny_stack / 'helpful_rm', harmless_cm=tiny_stack / 'harmless_cm')) == 0
    rows = read_jsonl(gen)
    assert len(rows) == 24 and all(r['candidates'] == 2 and 'safety' in r for r in rows)
    assert main(['distill', 'train', '--input_path', str(gen), '--data_dir', str(tiny_stack / 'data'), '--output_dir', str(tmp_path / 'st'),
                 '--max_steps', '4', '--batch_size', '4', '--eval_max_prompts', '4', '--eval_max_new_tokens', '4', '--progress', 'false']) == 0
    m = read_json(tmp_path / 'st' / 'sft_metrics.json')
    assert m['steps'] == 4 and m['gold_eval']['n_harmful'] + m['gold_eval']['n_benign'] == 4
    from transformers import AutoModelForCausalLM
    assert AutoModelForCausalLM.from_pretrained(tmp_path / 'st').config.num_hidden_layers == 2


def test_local_hf_model_as_the_llm_judge(tiny_stack, tmp_path):
    "A local causal LM judges through the same interface; the tiny model never writes a rating, so all are invalid."
    from safe_mm_dpo.eval import HFChatBackend, LLMJudge
    backend = HFChatBackend(str(tiny_stack / 'sft'), max_new_tokens=12)
    reply = backend.chat([{'role': 'system', 'content': 'You are a judge.'}, {'role': 'user', 'content': 'Rate this answer.'}])
    assert isinstance(reply, str)
    cfg = load_config(EvalConfig, model=str(tiny_stack / 'sft'), reference=str(tiny_stack / 'sft'), judge=['llm'], llm_backend='hf',
                      llm_model=str(tiny_stack / 'sft'), data_dir=str(tiny_stack / 'data'), max_prompts=4, max_new_tokens=8,
                      output_dir=str(tmp_path / 'ev'), progress=False)
    res = evaluate(cfg)
    llm = res['judges']['llm']['model']
    assert llm['invalid_ratings'] == 4 and math.isnan(llm['mean_rating'])     # no reply had a [[rating]]: none became a score
    assert llm['vs_reference']['invalid'] == 4 and llm['vs_reference']['wins'] + llm['vs_reference']['ties'] == 0
    assert (tmp_path / 'ev' / 'eval.json').exists()


def test_local_hf_judge_ratings_and_verdicts_are_parsed(tiny_stack, tmp_path, monkeypatch):
    "The local-HF judge path parses what a model writes: replies fixed at the generation step give the ratings and verdicts they state."
    import safe_mm_dpo.eval as ev
    calls, real = [], ev.generate
    def fake_generate(model, tok, prompts, *a, **kw):            # what the judge model "writes", by the kind of request
        msgs = prompts[0]
        if not (isinstance(msgs, list) and msgs[0].get('role') == 'system'): return real(model, tok, prompts, *a, **kw)   # the policy's answers
        calls.append(msgs)
        if '[Answer A]' in msgs[-1]['content']:                  # pairwise: A first, then B in the swapped order → a consistent win
            n = sum('[Answer A]' in c[-1]['content'] for c in calls)
            return [['Both are short. [[A]]' if n % 2 else 'On reflection [[B]] is better.']]
        return [['The answer is relevant. Rating: [[7]]' if len(calls) % 3 else 'I would say 9 out of 10.']]   # every 3rd: no [[n]]
    monkeypatch.setattr(ev, 'generate', fake_generate)
    cfg = load_config(EvalConfig, model=str(tiny_stack / 'sft'), reference=str(tiny_stack / 'sft'), judge=['llm'], llm_backend='hf',
                      llm_model=str(tiny_stack / 'sft'), data_dir=str(tiny_stack / 'data'), max_prompts=4, max_new_tokens=8,
                      output_dir=str(tmp_path / 'ev'), progress=False)
    res = evaluate(cfg)
    llm = res['judges']['llm']['model']
    assert llm['vs_reference']['wins'] == 4 and llm['vs_reference']['invalid'] == 0
    rated = [c for c in calls if '[Answer A]' not in c[-1]['content']]
    assert len(rated) >= 4 and llm['invalid_ratings'] >= 1 and llm['mean_rating'] == 7.0   # only [[7]] parses; "9 out of 10" does not
